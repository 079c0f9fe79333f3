// Package statedir is what a host agent keeps on its machine across
// restarts (--state-dir): the lease of its registration, so that the next
// agent for the host resumes it and peers see no change; and a lock, one
// per host name, so that only one agent uses that record at a time, which
// is what makes resuming the lease safe (while the lock is free, no live
// process renews the lease).
//
// Files, per host name: <host>.lock (flock(2); it holds the pid of its
// holder, for the error message of the next one) and <host>.lease (the
// lease, written atomically with mode 0600). Several host names (test
// machines running several simulated hosts) share one directory.
//
// It imports no uspace package. Tests: statedir_test.go; the restarts in
// integration/hostagent, integration/cluster and integration/realdp.
package statedir

// Package volumes is the host agent's volume reconcile: one volume intent
// (hosts/<h>/volumes/<v>) -> the SPDK bdev and vhost-user controller it
// uses (adopted when made by hand, else created and owned), SPDK's socket
// made visible in the volume's root, the block device node Kata resolves,
// and the volume's status. Watch holds an idle connection to SPDK: its
// loss and return, and a drift check while it lives, queue the volumes
// whose SPDK objects changed.
//
// Ownership (ownership.go): what the agent creates is recorded in etcd
// first (statuswriter.Writer.Written), recognised later by what SPDK shows
// (a bdev's UUID, a controller's socket file), and only then deleted.
// Files (files.go) are made and removed only inside the configured roots,
// through os.Root.
//
// It imports agent/spdk, agent/statuswriter, schema and store; agent/host
// wires it (constructs it, feeds it keys, runs Watch in its errgroup). Its
// tests: files_test.go here; the agent's in integration/hostagent,
// integration/volume (the real docker CLI) and integration/realdp (the
// real SPDK 24.09).
package volumes

// Command uspace-cni-installer installs the `userspace` CNI plugin on a
// host from a container (the Kubernetes DaemonSet's init container): it
// copies the plugin into the host's CNI bin directory, copies the etcd
// credentials it was given into the host's /etc/uspace/etcd/, and writes
// /etc/uspace/uspace.conf, the host-wide defaults of the plugin's `uspace`
// section (etcd endpoints and credentials, this host's name), naming the
// credentials by the paths the host sees. Every file is replaced atomically,
// so a plugin running during an upgrade sees the old file or the new one.
//
// Configuration is the one every uspace binary reads: --etcd-* flags or the
// USPACE_ETCD_* environment, --host or USPACE_HOST (Kubernetes:
// spec.nodeName). USPACE_ETCD_PASSWORD (from a secretKeyRef) is written to a
// 0600 file, never into uspace.conf.
//
// A main package beside the Dockerfile that uses it (one of
// ARCHITECTURE.md's deliberate exceptions): it imports cni, schema and
// store, never an agent package, store/embedetcd or integration.
//
// Tests: integration/deployments builds the images and runs the installer.
package main

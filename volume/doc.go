// Package volume is uspace's Docker volume driver, a drop-in for
// vhostuser-docker-volume: the same options (type, device, path), the same
// device nodes for Kata (<root>/block/devices/<device>, major 241 blk / 242
// scsi), but every volume is an intent in etcd under
// /uspace/v1/hosts/<host>/volumes/<name> and the host agent makes SPDK and
// the vhost-user directory match it. The driver keeps nothing locally: the
// minor, the mount IDs and the options all live in the intent, so a restart
// forgets nothing and never hands a minor out twice.
//
// Files: driver.go (the Driver, its requests' bounds and reads),
// handlers.go (the Docker plugin protocol handlers), txn.go (the guarded
// writes of intents: create with minor allocation, mount-ID updates,
// remove; all through store.Update/UpdateUnderPrefix), wait.go (waiting for
// the host agent's status), alloc.go and options.go (minors, options).
//
// Imports: schema and store only among uspace packages; never agent, cni,
// or etcd's server (make lint checks the uspace-volume binary for it).
//
// Tests: the *_test.go files here (driver_test.go against a real embedded
// etcd); the end-to-end scenarios with a host agent, the Docker CLI and
// real SPDK are in integration/volume and integration/realdp.
package volume

// Command uspace-volume is the Docker volume plugin for vhost-user block and
// scsi devices, a drop-in for vhostuser-docker-volume: it serves Docker's
// volume plugin protocol on /run/docker/plugins/<name>.sock and keeps every
// volume as an intent in etcd, which the host agent turns into SPDK
// controllers, sockets and device nodes.
//
// Flags may be written Go-style with one dash (-path, -name, -version), as
// the seed's were, or with two; -p is short for -path.
//
// Imports: volume, schema and store; never the etcd server, which make lint
// checks.
//
// Tests: main_test.go; the driver end to end in integration/volume.
package main

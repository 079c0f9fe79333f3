// Command userspace is the uspace CNI plugin (CNI type "userspace"). It
// accepts the upstream userspace CNI network config, writes intents to
// etcd and waits for the uspace host agent; the logic lives in package cni.
//
// Imports: cni (and through it schema, store/lite and store/etcdconf);
// no etcd, gRPC or protobuf package, which make lint checks. Tests:
// integration/cni runs this binary.
package main

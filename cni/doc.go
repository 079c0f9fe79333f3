// Package cni is the `userspace` CNI plugin. It accepts the upstream
// userspace CNI network configuration unchanged, validates it, writes the
// host-side intent, the container-side intent and the container meta in one
// etcd transaction, and waits for the host agent to report that revision as
// applied. It never talks to VPP.
//
// Files: plugin.go (verbs' set-up, etcd errors as CNI errors, by
// store.Classify), add.go, del.go, check.go, gc.go, status.go (one CNI verb
// each), config.go and uspaceconf.go (the network config and the `uspace`
// section; every problem of a config in one error, multierror's list),
// args.go (CNI_ARGS), intents.go (config to intents), txn.go (the guarded
// transactions), result.go.
//
// Imports: schema, store/lite (its etcd client) and store/etcdconf only
// among uspace packages; never store, agent, volume, or any etcd, gRPC or
// protobuf package (make lint checks the userspace binary).
//
// Tests: the *_test.go files here; the plugin run as a binary against a
// real etcd and host agent is tested in integration/cni.
package cni

// Package schema defines uspace's v1 intents and statuses, the etcd key
// layout that holds them, and the validation every writer runs before it
// writes. It does no I/O: writers, agents and tools all share these rules.
//
// Imports: no uspace package and nothing that does I/O (no etcd client).
//
// Tests: the *_test.go files here.
package schema

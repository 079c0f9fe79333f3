package store

import (
	"context"

	"github.com/uspace-io/uspace/store/etcdconf"
)

// Config says how to reach etcd and who to be there (etcdconf.Config, which
// the CNI plugin's lite client shares).
type Config = etcdconf.Config

// Environment variables read by Config.BindFlags and Config.WithEnv.
const (
	EnvEndpoints    = etcdconf.EnvEndpoints
	EnvCACert       = etcdconf.EnvCACert
	EnvCert         = etcdconf.EnvCert
	EnvKey          = etcdconf.EnvKey
	EnvUser         = etcdconf.EnvUser
	EnvPasswordFile = etcdconf.EnvPasswordFile
	EnvPassword     = etcdconf.EnvPassword
)

// DiagnoseTLS says why etcd refuses cfg's TLS connection (etcdconf.DiagnoseTLS).
func DiagnoseTLS(ctx context.Context, cfg Config) error { return etcdconf.DiagnoseTLS(ctx, cfg) }

package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/uspace-io/uspace/store"
)

// The embedded etcd has neither TLS nor auth: it refuses to serve anything
// but loopback, and says so before starting.
func TestEmbeddedEtcdRefusesMoreThanLoopback(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range []struct {
		etcd store.Config
		want string
	}{
		{store.Config{Endpoints: []string{"http://10.1.2.3:2379"}}, "loopback only"},
		{store.Config{Endpoints: []string{"https://127.0.0.1:2379"}}, "loopback only"},
		{store.Config{Endpoints: []string{"0.0.0.0:2379"}}, "loopback only"},
		{store.Config{Endpoints: []string{"127.0.0.1:2379"}, CACert: "/ca.pem"}, "no --etcd-cacert"},
		{store.Config{}, "no --etcd-endpoints"},
	} {
		e := embeddedConfig{Dir: t.TempDir()}
		_, err := startEmbedded(context.Background(), &e, &c.etcd, log)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error saying %q", c.etcd, err, c.want)
		}
	}
}

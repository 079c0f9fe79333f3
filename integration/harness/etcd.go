package harness

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/etcd/tests/v3/framework/integration"

	"github.com/uspace-io/uspace/store"
	"github.com/uspace-io/uspace/store/embedetcd"
)

// Etcd is a real etcd for a test: Endpoints for processes, Store for the
// test's own reads and writes.
type Etcd struct {
	Endpoints []string
	Store     *store.Client
	// Cluster is set when the etcd is a tests/v3 multi-member cluster.
	Cluster *integration.Cluster
	// Embedded is set for a single embedded member.
	Embedded *embedetcd.Etcd
}

// StartEtcd runs a single-node embedded etcd on free loopback ports.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := embedetcd.Start(ctx, embedetcd.Config{
		Dir:       t.TempDir(),
		ClientURL: "http://127.0.0.1:0",
		PeerURL:   "http://127.0.0.1:0",
	})
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return &Etcd{Endpoints: e.Endpoints(), Embedded: e, Store: connect(t, e.Endpoints())}
}

// StartCluster runs a tests/v3 integration cluster of size members.
// The framework's goroutine-leak detection is off: it skips a test outright
// when goroutines run before it starts, and this package keeps one for the
// life of the test process (the spawner in proc.go).
func StartCluster(t *testing.T, size int) *Etcd {
	t.Helper()
	integration.BeforeTest(t, integration.WithoutGoLeakDetection())
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: size, UseBridge: true})
	t.Cleanup(func() { clus.Terminate(t) })
	var eps []string
	for _, m := range clus.Members {
		eps = append(eps, m.GRPCURL)
	}
	return &Etcd{Endpoints: eps, Cluster: clus, Store: connect(t, eps)}
}

func connect(t testing.TB, eps []string) *store.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := store.Connect(ctx, store.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("connect to etcd %v: %v", eps, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

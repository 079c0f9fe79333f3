package lite

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/etcd/tests/v3/framework/integration"

	"github.com/uspace-io/uspace/store/etcdconf"
)

// On a three-member cluster reached over unix sockets (as etcd's own
// integration framework serves it): a read sent to a follower while the
// leader is gone is refused as unavailable until a new leader is elected,
// and is sent again until then, as etcd's client/v3 does, instead of
// failing the caller at once.
func TestReadRidesOutLeaderLoss(t *testing.T) {
	integration.BeforeTest(t)
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 3})
	defer clus.Terminate(t)
	leader := clus.WaitLeader(t)
	f := (leader + 1) % 3
	c := connect(t, etcdconf.Config{Endpoints: []string{clus.Members[f].GRPCURL}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Txn(ctx, nil, []Op{Put("k", []byte("v"))}, nil); err != nil {
		t.Fatalf("put over %s: %v", clus.Members[f].GRPCURL, err)
	}
	clus.Members[leader].Stop(t)
	kv, _, err := c.Get(ctx, "k")
	if err != nil || kv == nil || string(kv.Value) != "v" {
		t.Fatalf("get after the leader stopped: %v %v", kv, err)
	}
	r, err := c.Txn(ctx, nil, []Op{Get("k")}, nil)
	if err != nil || len(r.Results) != 1 || len(r.Results[0].KVs) != 1 {
		t.Fatalf("read-only transaction after the leader stopped: %+v %v", r, err)
	}
}

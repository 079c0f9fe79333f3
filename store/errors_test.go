package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/tests/v3/framework/integration"

	"github.com/uspace-io/uspace/store/etcdconf"
	"github.com/uspace-io/uspace/store/lite"
)

// driverErr stands for a dataplane driver's connection error, which says
// it is transient itself (vpp.ErrNotConnected, spdk.ErrConnection).
type driverErr struct{}

func (driverErr) Error() string   { return "dataplane not connected" }
func (driverErr) Transient() bool { return true }

// Classify answers the same for what each caller meets: etcd without a
// leader (an error the client turns into rpctypes.EtcdError, which the
// former IsUnavailable missed, so CNI called it internal), a refused
// identity, a closed client, a refused connection, a driver's own
// transient error, and anything it does not know.
func TestClassify(t *testing.T) {
	integration.BeforeTest(t)
	ctx := context.Background()

	t.Run("no leader is transient", func(t *testing.T) {
		clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 3})
		defer clus.Terminate(t)
		// A leader without quorum stays leader; a follower left alone
		// gives up on it after an election timeout. A write, which the
		// client does not retry, shows etcd's answer (a read is retried
		// until its deadline).
		f := (clus.WaitLeader(t) + 1) % 3
		c := New(clus.Client(f))
		for i := range 3 {
			if i != f {
				clus.Members[i].Stop(t)
			}
		}
		var err error
		eventually(t, "the follower knows it has no leader", func() bool {
			rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), 2*time.Second)
			defer cancel()
			_, err = c.Apply(rctx, Op{Key: "x/a", Value: []byte("v")})
			return err != nil && !errors.Is(err, context.DeadlineExceeded)
		})
		if got := Classify(err); got != Transient {
			t.Fatalf("Classify(%v) = %v, want transient", err, got)
		}
	})

	t.Run("refused identity is terminal", func(t *testing.T) {
		clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 1})
		defer clus.Terminate(t)
		admin := clus.Client(0)
		if _, err := admin.UserAdd(ctx, "root", "pw"); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.UserGrantRole(ctx, "root", "root"); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.AuthEnable(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := New(admin).Get(ctx, "x")
		if err == nil || Classify(err) != Terminal || !IsDenied(err) {
			t.Fatalf("Classify(%v) = %v, want terminal (denied)", err, Classify(err))
		}
		// The plugin's client (store/lite) meets the same refusal as an
		// error of its own; wrapped as the plugin wraps it.
		lc, err := lite.Connect(ctx, etcdconf.Config{Endpoints: []string{clus.Members[0].GRPCURL}})
		if err != nil {
			t.Fatal(err)
		}
		defer lc.Close()
		_, _, err = lc.Get(ctx, "x")
		err = fmt.Errorf("read x: %w", err)
		if !lite.IsDenied(err) || Classify(err) != Terminal || !IsDenied(err) {
			t.Fatalf("Classify(%v) = %v, want terminal (denied)", err, Classify(err))
		}
	})

	t.Run("a closed client ends a watch as terminal", func(t *testing.T) {
		clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 1})
		defer clus.Terminate(t)
		cli, err := integration.NewClientV3(clus.Members[0])
		if err != nil {
			t.Fatal(err)
		}
		c := New(cli)
		synced := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- c.ListWatch(ctx, "x/", func(ev Event) error {
				if ev.Type == Sync {
					close(synced)
				}
				return nil
			})
		}()
		<-synced
		cli.Close()
		select {
		case err = <-done:
		case <-time.After(eventTimeout):
			t.Fatal("ListWatch goes on after its client was closed")
		}
		if !errors.Is(err, ErrClosed) || Classify(err) != Terminal {
			t.Fatalf("ListWatch returned %v (%v), want terminal, naming the closed client", err, Classify(err))
		}
	})

	t.Run("other errors", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, refused := net.Dial("tcp", addr)
		for _, tc := range []struct {
			err  error
			want Class
		}{
			{fmt.Errorf("dial: %w", refused), Transient},
			{fmt.Errorf("apply spec: %w", driverErr{}), Transient},
			{errors.Join(errors.New("vpp: create memif: retval -1"), driverErr{}), Transient},
			{fmt.Errorf("call: %w", context.DeadlineExceeded), Transient},
			{errors.New("vpp: create memif: retval -1"), Unclassified},
			{nil, Unclassified},
		} {
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		}
	})
}

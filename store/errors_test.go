package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/tests/v3/framework/integration"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
			// client/v3's form of a watch etcd cancelled after creating it.
			{fmt.Errorf("watch: %w", status.Error(codes.FailedPrecondition, rpctypes.ErrGRPCPermissionDenied.Error())), Terminal},
			{fmt.Errorf("watch: %w", status.Error(codes.FailedPrecondition, rpctypes.ErrGRPCCompacted.Error())), Unclassified},
			{nil, Unclassified},
		} {
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		}
	})
}

// A watch etcd refuses to this identity is Terminal and denied, though
// client/v3 hands the refusal back as the cancel reason's plain text.
func TestClassifyRefusedWatch(t *testing.T) {
	integration.BeforeTest(t)
	ctx := context.Background()
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: 1})
	defer clus.Terminate(t)
	admin := clus.Client(0)
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.UserAdd(ctx, "reader", "pw"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "a-reader"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "a-reader", "a/", clientv3.GetPrefixRangeEnd("a/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := admin.UserGrantRole(ctx, "reader", "a-reader"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	cli, err := integration.NewClientV3(clus.Members[0])
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cli, err = clientv3.New(clientv3.Config{Endpoints: cli.Endpoints(), Username: "reader", Password: "pw", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// Reading its own prefix works: the identity is good.
	if _, err := New(cli).Get(ctx, "a/x"); err != nil {
		t.Fatalf("reader reads a/x: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, ok := <-cli.Watch(wctx, "b/", clientv3.WithPrefix())
	if !ok || resp.Err() == nil {
		t.Fatalf("watch of b/ by a reader of a/ not refused (%v, %v)", ok, resp.Err())
	}
	err = fmt.Errorf("watching %q: %w", "b/", resp.Err())
	if Classify(err) != Terminal || !IsDenied(err) {
		t.Fatalf("Classify(%v) = %v, want terminal (denied)", err, Classify(err))
	}
	if IsRefusedRequest(err) {
		t.Errorf("IsRefusedRequest(%v): a refused identity is not a refused request", err)
	}
}

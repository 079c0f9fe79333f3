package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/uspace-io/uspace/store/embedetcd"
)

// startEmbedded runs a real etcd in the test process on free ports.
func startEmbedded(t *testing.T, dir string) *embedetcd.Etcd {
	t.Helper()
	e, err := embedetcd.Start(context.Background(), embedetcd.Config{Dir: dir, ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Against a real etcd: a TLS mismatch names the handshake, the password
// file is read, a wrong password is refused without being echoed.
func TestConnectToEmbedded(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	defer e.Close()
	ctx := context.Background()

	tlsToPlain := strings.Replace(e.Endpoints()[0], "http://", "https://", 1)
	_, err := Connect(ctx, Config{Endpoints: []string{tlsToPlain}, DialTimeout: 500 * time.Millisecond})
	if err == nil || !strings.HasPrefix(err.Error(), "etcd at "+tlsToPlain+" unreachable within 500ms: ") || !strings.Contains(err.Error(), "handshake") {
		t.Fatalf("TLS to a plaintext server: %v", err)
	}

	admin, err := Connect(ctx, Config{Endpoints: e.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	const password = "correct-horse"
	if _, err := admin.Etcd().UserAdd(ctx, "root", password); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Etcd().UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Etcd().AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(good, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("wrong-staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Authentication is bcrypt at etcd's cost: seconds under the race
	// detector on a loaded machine, which is not what this test is about.
	const slow = 30 * time.Second
	c, err := Connect(ctx, Config{Endpoints: e.Endpoints(), Username: "root", PasswordFile: good, DialTimeout: slow})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Apply(ctx, Op{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}

	_, err = Connect(ctx, Config{Endpoints: e.Endpoints(), Username: "root", PasswordFile: bad, DialTimeout: slow})
	if !errors.Is(err, rpctypes.ErrAuthFailed) || strings.Contains(err.Error(), "wrong-staple") || !strings.Contains(err.Error(), `as "root"`) {
		t.Fatalf("wrong password: %v", err)
	}

	if _, err := admin.Get(ctx, "k"); !errors.Is(err, rpctypes.ErrUserEmpty) {
		t.Fatalf("anonymous read with auth on: %v", err)
	}
}

// Connect refuses a bad configuration at once (etcdconf's rules, tested
// there one by one) and an unreachable endpoint within the dial timeout.
func TestConnectErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"user without password", Config{Username: "u"}, `etcd user "u" given without a password`},
		{"cert without key", Config{Cert: "/c.pem"}, `etcd TLS: client certificate ("/c.pem") and key ("") must be given together`},
	} {
		start := time.Now()
		c, err := Connect(ctx, tc.cfg)
		if err == nil {
			c.Close()
			t.Fatalf("%s: connected", tc.name)
		}
		if !strings.Contains(err.Error(), tc.want) || time.Since(start) > time.Second {
			t.Fatalf("%s: error %q after %v, want it to contain %q at once", tc.name, err, time.Since(start), tc.want)
		}
	}

	t.Run("unreachable endpoint fails within the dial timeout", func(t *testing.T) {
		start := time.Now()
		c, err := Connect(ctx, Config{Endpoints: []string{"127.0.0.1:1"}, DialTimeout: 500 * time.Millisecond})
		elapsed := time.Since(start)
		if err == nil {
			c.Close()
			t.Fatal("connected to a closed port")
		}
		if !strings.HasPrefix(err.Error(), "etcd at 127.0.0.1:1 unreachable within 500ms: ") || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("error %q", err)
		}
		if elapsed > 2*time.Second {
			t.Fatalf("took %v with a 500ms dial timeout", elapsed)
		}
	})
}

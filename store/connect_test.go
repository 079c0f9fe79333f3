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

package harness

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/store"
)

// EnableAuth gives e one identity, role's user with a fresh password
// (in a 0600 file, whose path it returns), and a root user, then turns
// auth on. It returns the same etcd as root: e's own client can do
// nothing more once auth is on.
func (e *Etcd) EnableAuth(t testing.TB, role rbac.Role) (root *Etcd, passwordFile string) {
	t.Helper()
	ctx := context.Background()
	pw, err := rbac.GeneratePassword()
	if err != nil {
		t.Fatal(err)
	}
	passwordFile = filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(passwordFile, []byte(pw), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.EnsureIdentity(ctx, e.Store, role, rbac.UserSpec{Password: pw}); err != nil {
		t.Fatal(err)
	}
	rootPW, err := rbac.GeneratePassword()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.EnsureRoot(ctx, e.Store, rootPW); err != nil {
		t.Fatal(err)
	}
	if err := rbac.EnableAuth(ctx, e.Store); err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints, Username: rbac.RootUser, Password: rootPW, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return &Etcd{Endpoints: e.Endpoints, Store: store.New(cli)}, passwordFile
}

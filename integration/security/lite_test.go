package security_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/uspace-io/uspace/rbac"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store/lite"
)

// The CNI plugin's client (store/lite) on etcd with TLS, client-certificate
// auth and auth on, both ways a host identity logs in: by password (with
// the anonymous certificate --client-cert-auth asks for) and by a
// certificate whose Common Name is the user, the way etcd's JSON gateway
// cannot serve. Its own scope can be written, read and watched; host ab's
// is refused; a client without a certificate or trusting another CA is
// refused at the TLS handshake, saying so, with nothing sent.
func TestLiteClientCredentials(t *testing.T) {
	t.Parallel()
	sc := newSecretScan(t)
	e := startSecureEtcd(t, sc)
	e.enableAuth()
	a := e.addIdentity(rbac.HostRole(hostA))
	e.addIdentity(rbac.HostRole(hostB))
	bKey := schema.InterfaceKey(hostB, "c1", "eth0")
	seeded := seed(t, e, bKey)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, login := range logins {
		t.Run(login.name, func(t *testing.T) {
			cfg := e.passwordConfig(a.Name, a.PasswordFile)
			if login.byCert {
				cfg = e.certConfig(a.Cert, a.Key)
			}
			c, err := lite.Connect(ctx, cfg)
			if err != nil {
				sc.addErr(err)
				t.Fatalf("connect: %v", err)
			}
			defer c.Close()
			key := schema.InterfaceKey(hostA, "lite-"+strings.ReplaceAll(login.name, " ", "-"), "eth0")
			r, err := c.Txn(ctx, []lite.Cmp{lite.ModRevisionIs(key, 0)}, []lite.Op{lite.Put(key, []byte(`{}`))}, nil)
			allowed(t, sc, "transaction writing a's intent", err)
			if err == nil && !r.Succeeded {
				t.Fatalf("create of %s did not succeed: %+v", key, r)
			}
			go func() {
				time.Sleep(100 * time.Millisecond)
				_, _ = c.Txn(ctx, nil, []lite.Op{lite.Put(key, []byte(`{"v":2}`))}, nil)
			}()
			kv, err := c.WaitFor(ctx, key, lite.State{Revision: r.Revision, KV: &lite.KV{Value: []byte(`{}`)}},
				func(kv *lite.KV) (bool, error) { return kv != nil && string(kv.Value) == `{"v":2}`, nil })
			allowed(t, sc, "watch of a's intent", err)
			if kv == nil {
				t.Errorf("watch saw nothing")
			}
			_, err = c.Txn(ctx, nil, []lite.Op{lite.Delete(key)}, nil)
			allowed(t, sc, "delete of a's intent", err)

			_, err = c.Txn(ctx, nil, []lite.Op{lite.Put(bKey, []byte(`{}`))}, nil)
			refused(t, sc, "write of ab's intent", err)
			if !lite.IsDenied(err) {
				t.Errorf("write of ab's intent: not IsDenied: %v", err)
			}
			_, _, err = c.Get(ctx, bKey)
			refused(t, sc, "read of ab's intent", err)
			_, err = c.WaitFor(ctx, bKey, lite.State{Revision: r.Revision}, func(*lite.KV) (bool, error) { return false, nil })
			refused(t, sc, "watch of ab's intent", err)
		})
	}
	untouched(t, e, seeded)

	for _, tc := range []struct {
		name string
		edit func(c *struct{ ca, cert, key string })
		want string
	}{
		{"no client certificate", func(c *struct{ ca, cert, key string }) { c.cert, c.key = "", "" }, "certificate required"},
		{"another CA", func(c *struct{ ca, cert, key string }) { c.ca = e.RootCert }, "x509"},
	} {
		f := struct{ ca, cert, key string }{e.CA, a.Cert, a.Key}
		tc.edit(&f)
		cfg := e.certConfig(f.cert, f.key)
		cfg.CACert = f.ca
		c, err := lite.Connect(ctx, cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, err = c.Txn(ctx, nil, []lite.Op{lite.Put(schema.InterfaceKey(hostA, "c9", "eth0"), []byte(`{}`))}, nil)
		c.Close()
		sc.addErr(err)
		if err == nil || !lite.NotSent(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (not sent: %v), want it refused at the handshake saying %q", tc.name, err, lite.NotSent(err), tc.want)
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/uspace-io/uspace/cni"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// Names of the credential files under <conf-dir>/etcd/. Fixed names, so
// a re-install replaces rather than accumulates them.
const (
	credDir      = "etcd"
	caFile       = "ca.pem"
	certFile     = "cert.pem"
	keyFile      = "key.pem"
	passwordFile = "password"
	confFile     = "uspace.conf"
	pluginName   = "userspace"
)

type options struct {
	plugin      string
	cniBinDir   string
	confDir     string
	hostConfDir string
	host        string
	addTimeout  time.Duration
	delTimeout  time.Duration
	etcd        store.Config
}

func main() {
	var o options
	fs := pflag.NewFlagSet("uspace-cni-installer", pflag.ContinueOnError)
	fs.StringVar(&o.plugin, "plugin", "/opt/uspace/bin/userspace", "the CNI plugin binary to install")
	fs.StringVar(&o.cniBinDir, "cni-bin-dir", "/host/opt/cni/bin", "the host's CNI bin directory, as mounted here")
	fs.StringVar(&o.confDir, "conf-dir", "/host/etc/uspace", "the host's /etc/uspace, as mounted here: uspace.conf and etcd/ go there")
	fs.StringVar(&o.hostConfDir, "host-conf-dir", cniDefaultConfDir(), "the same directory as the host sees it (uspace.conf names the credentials by these paths)")
	fs.StringVar(&o.host, "host", os.Getenv(cni.EnvHost), "this host's name in etcd (env USPACE_HOST; Kubernetes: spec.nodeName); empty: the plugin uses the host name")
	fs.DurationVar(&o.addTimeout, "add-timeout", 0, "uspace.addTimeout for every network (0: the plugin's default)")
	fs.DurationVar(&o.delTimeout, "del-timeout", 0, "uspace.delTimeout for every network (0: the plugin's default)")
	o.etcd.BindFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: uspace-cni-installer [flags]\n\n"+
			"Installs the userspace CNI plugin, the etcd credentials and %s on a host.\n\nFlags:\n%s",
			cni.DefaultConfigFile, fs.FlagUsages())
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "uspace-cni-installer: unexpected arguments %v\n", fs.Args())
		os.Exit(2)
	}
	if err := install(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "uspace-cni-installer:", err)
		os.Exit(1)
	}
}

func cniDefaultConfDir() string { return filepath.Dir(cni.DefaultConfigFile) }

func install(o options, out io.Writer) error {
	if o.host != "" {
		if err := schema.ValidateHost("--host", o.host); err != nil {
			return err
		}
	}
	if !filepath.IsAbs(o.hostConfDir) {
		return fmt.Errorf("--host-conf-dir %q: must be an absolute path", o.hostConfDir)
	}
	if len(o.etcd.Endpoints) == 0 {
		return errors.New("no etcd endpoints: set --etcd-endpoints or USPACE_ETCD_ENDPOINTS")
	}
	if (o.etcd.Cert == "") != (o.etcd.Key == "") {
		return fmt.Errorf("etcd client certificate %q and key %q must be given together", o.etcd.Cert, o.etcd.Key)
	}
	if o.etcd.Password != "" && o.etcd.PasswordFile != "" {
		return fmt.Errorf("etcd password given both in %s and as file %s: set only one", store.EnvPassword, o.etcd.PasswordFile)
	}

	// The plugin first: a uspace.conf naming credentials is useless
	// without it, the other way round the plugin still runs with the old.
	if err := copyFile(o.plugin, filepath.Join(o.cniBinDir, pluginName), 0o755); err != nil {
		return fmt.Errorf("installing the plugin: %w", err)
	}
	fmt.Fprintf(out, "installed %s\n", filepath.Join(o.cniBinDir, pluginName))

	conf := cni.USpaceConf{Host: o.host, AddTimeout: cni.Duration(o.addTimeout), DelTimeout: cni.Duration(o.delTimeout)}
	conf.Etcd.Endpoints = o.etcd.Endpoints
	conf.Etcd.DialTimeout = o.etcd.DialTimeout
	conf.Etcd.Username = o.etcd.Username

	dir := filepath.Join(o.confDir, credDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	hostPath := func(name string) string { return filepath.Join(o.hostConfDir, credDir, name) }
	creds := []struct {
		src, name string
		mode      os.FileMode
		field     *string
	}{
		{o.etcd.CACert, caFile, 0o644, &conf.Etcd.CACert},
		{o.etcd.Cert, certFile, 0o644, &conf.Etcd.Cert},
		{o.etcd.Key, keyFile, 0o600, &conf.Etcd.Key},
		{o.etcd.PasswordFile, passwordFile, 0o600, &conf.Etcd.PasswordFile},
	}
	for _, c := range creds {
		dst := filepath.Join(dir, c.name)
		switch {
		case c.src != "":
			if err := copyFile(c.src, dst, c.mode); err != nil {
				return fmt.Errorf("installing etcd credential: %w", err)
			}
			*c.field = hostPath(c.name)
		case c.name == passwordFile && o.etcd.Password != "":
			if err := writeFile(dst, []byte(o.etcd.Password+"\n"), 0o600); err != nil {
				return fmt.Errorf("installing etcd password: %w", err)
			}
			*c.field = hostPath(c.name)
		default:
			// Not configured (any more): a stale credential must not linger.
			if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			continue
		}
		fmt.Fprintf(out, "installed %s (as %s on the host)\n", dst, *c.field)
	}

	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	confPath := filepath.Join(o.confDir, confFile)
	if err := writeFile(confPath, data, 0o644); err != nil {
		return err
	}
	// Read it back the way the plugin does, so a file the plugin would
	// refuse fails the install instead of every later CNI ADD.
	if _, err := (cni.USpaceConf{}).Resolve(cni.Environment{
		Getenv: func(k string) string {
			if k == cni.EnvConfig {
				return confPath
			}
			return ""
		},
		ReadFile: os.ReadFile,
		Hostname: func() (string, error) { return "installer-check", nil },
	}); err != nil {
		return fmt.Errorf("the written %s does not load: %w", confPath, err)
	}
	fmt.Fprintf(out, "wrote %s (%s on the host)\n", confPath, filepath.Join(o.hostConfDir, confFile))
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeFile(dst, data, mode)
}

// writeFile replaces dst atomically with data and mode; it leaves dst alone
// when the content and mode are already right.
func writeFile(dst string, data []byte, mode os.FileMode) error {
	if cur, err := os.ReadFile(dst); err == nil && bytes.Equal(cur, data) {
		if fi, err := os.Stat(dst); err == nil && fi.Mode().Perm() == mode {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store/etcdconf"
)

// Environment and files that give defaults to the `uspace` section.
const (
	// EnvConfig overrides the path of the host-wide defaults file.
	EnvConfig = "USPACE_CONFIG"
	// EnvHost names this host in etcd (Kubernetes: the node name).
	EnvHost = "USPACE_HOST"
	// DefaultConfigFile holds host-wide defaults, same shape as the
	// `uspace` section.
	DefaultConfigFile = "/etc/uspace/uspace.conf"
)

// Built-in defaults.
const (
	DefaultAddTimeout = 10 * time.Second
	DefaultDelTimeout = 5 * time.Second
)

// USpaceConf is the `uspace` section of the network config, and the shape
// of /etc/uspace/uspace.conf.
//
//	"uspace": {
//	  "etcd": {"endpoints": ["https://10.0.0.1:2379"], "caCert": "...", "cert": "...", "key": "...",
//	           "username": "uspace-host-node1", "passwordFile": "/etc/uspace/etcd-password", "dialTimeout": "3s"},
//	  "host": "node1", "addTimeout": "10s", "delTimeout": "5s"
//	}
type USpaceConf struct {
	Etcd EtcdConf `json:"etcd"`
	// Host is this host's name in etcd; default USPACE_HOST, then the
	// kernel host name.
	Host string `json:"host,omitempty"`
	// AddTimeout bounds a whole ADD: etcd, IPAM, and waiting for the agent.
	AddTimeout Duration `json:"addTimeout,omitempty"`
	// DelTimeout bounds how long DEL waits for the agent to report removal.
	DelTimeout Duration `json:"delTimeout,omitempty"`
	// VNI makes the network span hosts: its bridge domain is joined by
	// VXLAN tunnels of this VNI to every other host with members of the
	// network (hosts whose agents run with --underlay-ip and --uplink).
	// 0: the VNI of the network's Network object in etcd, if any. A
	// network's own setting, so never taken from the defaults file.
	VNI uint32 `json:"vni,omitempty"`
	// MemifSocket is where a memif's socket lives: "abstract" (the
	// default) an abstract unix socket in the container's network
	// namespace, which needs no shared directory and which only that
	// namespace's processes reach; "file" a socket file in sharedDir,
	// bind-mounted into the container (upstream's way, for VPPs that cannot
	// open a socket in another namespace). vhost-user always uses a file.
	MemifSocket string `json:"memifSocket,omitempty"`
}

// Values of uspace.memifSocket.
const (
	MemifSocketAbstract = "abstract"
	MemifSocketFile     = "file"
)

// EtcdConf is etcdconf.Config with a dialTimeout that may be written as a
// duration string ("3s") as well as etcdconf.Config's nanoseconds.
type EtcdConf struct {
	etcdconf.Config
}

// UnmarshalJSON decodes etcdconf.Config's fields and a dialTimeout in either
// form.
func (e *EtcdConf) UnmarshalJSON(b []byte) error {
	var aux struct {
		etcdconf.Config
		// Shallower than the embedded field, so it takes "dialTimeout".
		DialTimeout json.RawMessage `json:"dialTimeout"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	d, err := parseDuration("uspace.etcd.dialTimeout", aux.DialTimeout)
	if err != nil {
		return err
	}
	e.Config = aux.Config
	e.Config.DialTimeout = time.Duration(d)
	return nil
}

// MarshalJSON writes the form UnmarshalJSON reads (the password never).
func (e EtcdConf) MarshalJSON() ([]byte, error) {
	aux := struct {
		etcdconf.Config
		DialTimeout string `json:"dialTimeout,omitempty"`
	}{Config: e.Config}
	if e.DialTimeout != 0 {
		aux.DialTimeout = e.DialTimeout.String()
	}
	return json.Marshal(aux)
}

// UnmarshalJSON decodes the section, naming the field of a bad duration.
func (u *USpaceConf) UnmarshalJSON(b []byte) error {
	type plain USpaceConf
	var aux struct {
		plain
		AddTimeout json.RawMessage `json:"addTimeout"`
		DelTimeout json.RawMessage `json:"delTimeout"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	add, err := parseDuration("uspace.addTimeout", aux.AddTimeout)
	if err != nil {
		return err
	}
	del, err := parseDuration("uspace.delTimeout", aux.DelTimeout)
	if err != nil {
		return err
	}
	*u = USpaceConf(aux.plain)
	u.AddTimeout, u.DelTimeout = add, del
	return nil
}

// Duration is a time.Duration written as a Go duration string ("10s") or
// as a number of nanoseconds (etcdconf.Config's JSON form).
type Duration time.Duration

// durationError names the field whose duration did not parse.
type durationError struct{ field, value string }

func (e *durationError) Error() string {
	return fmt.Sprintf("%s %s: must be a duration like \"10s\"", e.field, e.value)
}

func parseDuration(field string, raw json.RawMessage) (Duration, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return 0, &durationError{field, s}
		}
		v, err := time.ParseDuration(str)
		if err != nil {
			return 0, &durationError{field, s}
		}
		return Duration(v), nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, &durationError{field, s}
	}
	return Duration(n), nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (u *USpaceConf) validate() []string {
	var p []string
	if u.Host != "" {
		if err := schema.ValidateHost("uspace.host", u.Host); err != nil {
			p = append(p, err.Error())
		}
	}
	if u.VNI != 0 {
		if err := schema.ValidateVNI("uspace.vni", u.VNI); err != nil {
			p = append(p, err.Error())
		}
	}
	switch u.MemifSocket {
	case "", MemifSocketAbstract, MemifSocketFile:
	default:
		p = append(p, fieldProblem("uspace.memifSocket", u.MemifSocket, "must be %q (the default: a socket in the container's network namespace) or %q (a socket file in sharedDir)",
			MemifSocketAbstract, MemifSocketFile))
	}
	if u.AddTimeout < 0 {
		p = append(p, fieldProblem("uspace.addTimeout", time.Duration(u.AddTimeout).String(), "must not be negative"))
	}
	if u.DelTimeout < 0 {
		p = append(p, fieldProblem("uspace.delTimeout", time.Duration(u.DelTimeout).String(), "must not be negative"))
	}
	if u.Etcd.DialTimeout < 0 {
		p = append(p, fieldProblem("uspace.etcd.dialTimeout", u.Etcd.DialTimeout.String(), "must not be negative"))
	}
	for i, ep := range u.Etcd.Endpoints {
		if strings.TrimSpace(ep) == "" {
			p = append(p, fieldProblem(fmt.Sprintf("uspace.etcd.endpoints[%d]", i), ep, "must not be empty"))
		}
	}
	if (u.Etcd.Cert == "") != (u.Etcd.Key == "") {
		p = append(p, fieldProblem("uspace.etcd.cert", u.Etcd.Cert, "cert and key must be given together (key %q)", u.Etcd.Key))
	}
	return p
}

// Environment is what Defaults reads; tests replace it.
type Environment struct {
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
	Hostname func() (string, error)
}

// OSEnvironment is the real process environment.
func OSEnvironment() Environment {
	return Environment{Getenv: os.Getenv, ReadFile: os.ReadFile, Hostname: os.Hostname}
}

// Resolve fills every empty field of the network config's section, in this
// order: the network config, the environment (USPACE_HOST, USPACE_ETCD_*),
// the defaults file (USPACE_CONFIG or /etc/uspace/uspace.conf; a missing
// file is fine), built-in defaults. The result is validated.
func (u USpaceConf) Resolve(env Environment) (USpaceConf, error) {
	path := env.Getenv(EnvConfig)
	explicit := path != ""
	if !explicit {
		path = DefaultConfigFile
	}
	var file USpaceConf
	data, err := env.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &file); err != nil {
			return u, configErr([]string{fmt.Sprintf("uspace defaults file %s: %s", path, jsonProblem(err))})
		}
		if p := file.validate(); len(p) > 0 {
			return u, configErr([]string{fmt.Sprintf("uspace defaults file %s: %s", path, strings.Join(p, "; "))})
		}
		if file.VNI != 0 {
			return u, configErr([]string{fmt.Sprintf("uspace defaults file %s: vni %d: a VNI belongs to one network; set uspace.vni in that network's config", path, file.VNI)})
		}
	case errors.Is(err, fs.ErrNotExist) && !explicit:
	default:
		return u, configErr([]string{fmt.Sprintf("uspace defaults file %s (%s): %v", path, EnvConfig, err)})
	}

	// Network config first; environment next (store's own env names).
	u.Etcd.Config = u.Etcd.Config.WithEnvFrom(env.Getenv)
	if u.Host == "" {
		u.Host = env.Getenv(EnvHost)
	}
	// Then the file.
	fillEtcd(&u.Etcd.Config, file.Etcd.Config)
	if u.Host == "" {
		u.Host = file.Host
	}
	if u.AddTimeout == 0 {
		u.AddTimeout = file.AddTimeout
	}
	if u.DelTimeout == 0 {
		u.DelTimeout = file.DelTimeout
	}
	if u.MemifSocket == "" {
		u.MemifSocket = file.MemifSocket
	}
	// Built-in defaults.
	if u.Host == "" {
		h, err := env.Hostname()
		if err != nil {
			return u, configErr([]string{fmt.Sprintf("uspace.host: not set, %s not set, and the host name is unknown: %v", EnvHost, err)})
		}
		u.Host = h
	}
	if u.AddTimeout == 0 {
		u.AddTimeout = Duration(DefaultAddTimeout)
	}
	if u.DelTimeout == 0 {
		u.DelTimeout = Duration(DefaultDelTimeout)
	}
	if p := u.validate(); len(p) > 0 {
		return u, configErr(p)
	}
	return u, nil
}

// fillEtcd fills c's empty fields from the defaults file's. A password
// already given (the environment's) keeps the file's passwordFile out:
// Connect refuses both, and the host-wide file must not make a
// process's own password unusable.
func fillEtcd(c *etcdconf.Config, from etcdconf.Config) {
	if len(c.Endpoints) == 0 {
		c.Endpoints = from.Endpoints
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = from.DialTimeout
	}
	fill := func(field *string, v string) {
		if *field == "" {
			*field = v
		}
	}
	fill(&c.CACert, from.CACert)
	fill(&c.Cert, from.Cert)
	fill(&c.Key, from.Key)
	fill(&c.Username, from.Username)
	if c.Password == "" {
		fill(&c.PasswordFile, from.PasswordFile)
	}
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return typeProblem(te)
	}
	var de *durationError
	if errors.As(err, &de) {
		return de.Error()
	}
	return err.Error()
}

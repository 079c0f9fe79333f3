package etcdconf

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Environment variables read by BindFlags and WithEnv. Every binary uses the
// same names so one environment file configures a whole host.
const (
	EnvEndpoints    = "USPACE_ETCD_ENDPOINTS"
	EnvCACert       = "USPACE_ETCD_CACERT"
	EnvCert         = "USPACE_ETCD_CERT"
	EnvKey          = "USPACE_ETCD_KEY"
	EnvUser         = "USPACE_ETCD_USER"
	EnvPasswordFile = "USPACE_ETCD_PASSWORD_FILE"
	// EnvPassword exists because some launchers (Kubernetes secretKeyRef)
	// hand secrets over as env; there is deliberately no flag, since a flag
	// would show in ps.
	EnvPassword = "USPACE_ETCD_PASSWORD"
)

// Defaults for what a Config leaves empty.
const (
	DefaultEndpoint    = "127.0.0.1:2379"
	DefaultDialTimeout = 5 * time.Second
	// passwordFileMax bounds what is read from a misconfigured path (a
	// device, a large file) before deciding it cannot be a password.
	passwordFileMax = 4096
)

// Config says how to reach etcd and who to be there. The JSON form lets the
// CNI plugin carry it in its network config (as a named field: Config has
// String and GoString methods that would be promoted by anonymous
// embedding). The password itself is never serialised.
type Config struct {
	Endpoints    []string      `json:"endpoints,omitempty"`
	DialTimeout  time.Duration `json:"dialTimeout,omitempty"`
	CACert       string        `json:"caCert,omitempty"`
	Cert         string        `json:"cert,omitempty"`
	Key          string        `json:"key,omitempty"`
	Username     string        `json:"username,omitempty"`
	PasswordFile string        `json:"passwordFile,omitempty"`
	Password     string        `json:"-"`
}

// BindFlags registers the --etcd-* flags on fs with defaults taken from the
// USPACE_ETCD_* environment, and takes the password from USPACE_ETCD_PASSWORD.
func (c *Config) BindFlags(fs *pflag.FlagSet) { c.BindFlagsTo(fs, DefaultEndpoint) }

// BindFlagsTo is BindFlags with endpoint, not DefaultEndpoint, as the
// endpoint when neither flag nor environment names one.
func (c *Config) BindFlagsTo(fs *pflag.FlagSet, endpoint string) {
	endpoints := []string{endpoint}
	if env := splitList(os.Getenv(EnvEndpoints)); len(env) > 0 {
		endpoints = env
	}
	fs.StringSliceVar(&c.Endpoints, "etcd-endpoints", endpoints, "etcd endpoints, comma separated (env "+EnvEndpoints+")")
	fs.DurationVar(&c.DialTimeout, "etcd-dial-timeout", DefaultDialTimeout, "how long to wait for etcd to answer before giving up")
	fs.StringVar(&c.CACert, "etcd-cacert", os.Getenv(EnvCACert), "CA bundle that signed the etcd server certificates (env "+EnvCACert+")")
	fs.StringVar(&c.Cert, "etcd-cert", os.Getenv(EnvCert), "client certificate for etcd (env "+EnvCert+")")
	fs.StringVar(&c.Key, "etcd-key", os.Getenv(EnvKey), "client certificate key for etcd (env "+EnvKey+")")
	fs.StringVar(&c.Username, "etcd-user", os.Getenv(EnvUser), "etcd user name (env "+EnvUser+")")
	fs.StringVar(&c.PasswordFile, "etcd-password-file", os.Getenv(EnvPasswordFile),
		"file holding the etcd password, mode 0600 or stricter (env "+EnvPasswordFile+"; or the password itself in "+EnvPassword+")")
	c.Password = os.Getenv(EnvPassword)
}

// WithEnv returns c with every empty field filled from the USPACE_ETCD_*
// environment, for callers that have no command line (the CNI plugin).
func (c Config) WithEnv() Config { return c.WithEnvFrom(os.Getenv) }

// WithEnvFrom is WithEnv reading the environment through getenv (tests,
// and callers that carry their own environment). Every empty field is
// filled from its own variable, the password from USPACE_ETCD_PASSWORD
// too, whatever PasswordFile says: the rule of BindFlags, so a password
// file named by the caller (a flag, the CNI network config) together with
// a password in the environment is refused by Connect ("set only one")
// rather than one of them being picked silently.
func (c Config) WithEnvFrom(getenv func(string) string) Config {
	if len(c.Endpoints) == 0 {
		c.Endpoints = splitList(getenv(EnvEndpoints))
	}
	fill := func(field *string, env string) {
		if *field == "" {
			*field = getenv(env)
		}
	}
	fill(&c.CACert, EnvCACert)
	fill(&c.Cert, EnvCert)
	fill(&c.Key, EnvKey)
	fill(&c.Username, EnvUser)
	fill(&c.PasswordFile, EnvPasswordFile)
	fill(&c.Password, EnvPassword)
	return c
}

// String keeps the password out of logs that print a Config with %v or %+v.
func (c Config) String() string {
	password := ""
	if c.Password != "" {
		password = "[redacted]"
	}
	return fmt.Sprintf("{Endpoints:%v DialTimeout:%v CACert:%q Cert:%q Key:%q Username:%q PasswordFile:%q Password:%s}",
		c.Endpoints, c.DialTimeout, c.CACert, c.Cert, c.Key, c.Username, c.PasswordFile, password)
}

// GoString does the same for %#v.
func (c Config) GoString() string { return "store.Config" + c.String() }

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

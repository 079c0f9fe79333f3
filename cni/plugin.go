package cni

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/uspace-io/uspace/store/lite"
)

// About is printed by the plugin when run without CNI_COMMAND.
const About = "uspace userspace CNI plugin: memif/vhost-user interfaces for VPP, through etcd intents and the uspace host agent"

// ErrPluginNotAvailable is the CNI 1.1 STATUS error code for "the plugin
// cannot serve ADD now" (not defined as a constant in cni v1.3.0).
const ErrPluginNotAvailable uint = 50

// SupportedVersions are the CNI spec versions this plugin speaks. 0.1.0 and
// 0.2.0 are left out: their results cannot carry interfaces.
var SupportedVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// VersionInfo is what VERSION reports.
func VersionInfo() version.PluginInfo { return version.PluginSupports(SupportedVersions...) }

// Funcs are the CNI verbs, for skel.PluginMainFuncs.
func Funcs() skel.CNIFuncs {
	p := newPlugin()
	return skel.CNIFuncs{Add: p.cmdAdd, Del: p.cmdDel, Check: p.cmdCheck, GC: p.cmdGC, Status: p.cmdStatus}
}

// plugin carries what the verbs read from the process, so tests can
// replace it.
type plugin struct {
	env    Environment
	stderr io.Writer
	now    func() time.Time
	// cniPath is CNI_PATH, where IPAM plugins are found.
	cniPath func() string
}

func newPlugin() *plugin {
	return &plugin{
		env:     OSEnvironment(),
		stderr:  os.Stderr,
		now:     time.Now,
		cniPath: func() string { return os.Getenv("CNI_PATH") },
	}
}

// invocation is one verb's parsed input.
type invocation struct {
	args *skel.CmdArgs
	conf *NetConf
	us   USpaceConf
	att  Attachment
	log  *slog.Logger
	// closeLog closes the log file.
	closeLog func()
	// deadline is when an ADD must have ended, rolled back or not.
	deadline time.Time
}

// setup parses the config (strictly for ADD and CHECK; DEL, GC and STATUS
// only need it decodable, so a config that could never be added can still
// be deleted), sets up logging and resolves the uspace section.
func (p *plugin) setup(verb string, args *skel.CmdArgs, strict bool) (*invocation, error) {
	var (
		conf *NetConf
		err  error
	)
	if strict {
		conf, err = ParseConfig(args.StdinData)
	} else {
		conf, err = decodeNetConf(args.StdinData)
		if err == nil {
			if prob := conf.USpace.validate(); len(prob) > 0 {
				err = configErr(prob)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	for _, w := range conf.Warnings {
		fmt.Fprintln(p.stderr, w)
	}
	log, closeLog := p.logger(conf)
	us, err := conf.USpace.Resolve(p.env)
	if err != nil {
		closeLog()
		return nil, err
	}
	inv := &invocation{
		args: args,
		conf: conf,
		us:   us,
		att: Attachment{
			Host:        us.Host,
			ContainerID: args.ContainerID,
			IfName:      args.IfName,
			Netns:       args.Netns,
			Pod:         ParseArgs(args.Args),
		},
		closeLog: closeLog,
	}
	inv.log = log.With("verb", verb, "network", conf.Name, "host", us.Host)
	if args.ContainerID != "" {
		inv.log = inv.log.With("container", args.ContainerID, "ifname", args.IfName)
	}
	return inv, nil
}

// logger honours logFile and logLevel as upstream: a file that cannot be
// opened is a note on stderr and logging goes to stderr.
func (p *plugin) logger(conf *NetConf) (*slog.Logger, func()) {
	var level slog.Level
	switch conf.LogLevel {
	case "panic", "error":
		level = slog.LevelError
	case "info":
		level = slog.LevelInfo
	case "debug", "verbose":
		level = slog.LevelDebug
	default:
		level = slog.LevelWarn
	}
	var w io.Writer = p.stderr
	closeFn := func() {}
	if conf.LogFile != "" {
		f, err := os.OpenFile(conf.LogFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintf(p.stderr, "Userspace-CNI logging: cannot open %s: %v\n", conf.LogFile, err)
		} else {
			w = f
			closeFn = func() { f.Close() }
		}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), closeFn
}

// connect sets up the etcd client with a dial timeout within the time
// left; with a user it logs in, and failing then is the common "etcd
// down" case: nothing has been done yet. Without one the first request
// meets an etcd that is down.
func (inv *invocation) connect(ctx context.Context) (*lite.Client, error) {
	cfg := inv.us.Etcd.Config
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); cfg.DialTimeout <= 0 || cfg.DialTimeout > left {
			cfg.DialTimeout = left
		}
	}
	inv.log.Debug("connecting to etcd", "endpoints", cfg.Endpoints, "user", cfg.Username)
	st, err := lite.Connect(ctx, cfg)
	if err != nil {
		msg := err.Error()
		if !strings.Contains(msg, "unreachable") {
			msg = "etcd unreachable or refused the connection: " + msg
		}
		return nil, types.NewError(types.ErrTryAgainLater, msg, "")
	}
	return st, nil
}

// etcdErr classifies an error of an etcd call made after connecting.
func etcdErr(what string, err error) error {
	var te *types.Error
	if errors.As(err, &te) {
		return te
	}
	if lite.IsUnavailable(err) {
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("etcd unreachable while %s: %v", what, err), "")
	}
	return types.NewError(types.ErrInternal, fmt.Sprintf("etcd: %s: %v", what, err), "")
}

package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/hashicorp/go-multierror"

	"github.com/uspace-io/uspace/schema"
)

// Engines, as upstream names them.
const (
	EngineVPP     = "vpp"
	EngineOVSDPDK = "ovs-dpdk"
)

// DefaultSharedDir is where socket files live when the config names no
// sharedDir. The container sees the same directory at the same path.
const DefaultSharedDir = "/var/run/vpp/cni/shared"

// NetConf is the upstream userspace CNI network configuration plus the
// `uspace` section. It is decoded with encoding/json, so keys match in any
// case (as upstream) and unknown keys are ignored.
type NetConf struct {
	types.PluginConf

	Host      UserSpaceConf `json:"host"`
	Container UserSpaceConf `json:"container"`
	SharedDir string        `json:"sharedDir"`

	// LogFile, LogLevel and Kubeconfig are read leniently: a problem with
	// them is a warning on stderr, as upstream, never an error. Kept raw so
	// a wrong type is a warning too.
	RawLogFile    json.RawMessage `json:"logFile,omitempty"`
	RawLogLevel   json.RawMessage `json:"logLevel,omitempty"`
	RawKubeconfig json.RawMessage `json:"kubeconfig,omitempty"`

	// USpace is the section for what upstream did not have: etcd, host name,
	// timeouts. Empty fields are filled from /etc/uspace/uspace.conf and
	// the environment (see Defaults).
	USpace USpaceConf `json:"uspace"`

	// RuntimeConfig carries the `mac` and `CNIDeviceInfoFile` capabilities
	// when the runtime passes them: ADD writes the interface's device-info
	// (package deviceinfo) at CNIDeviceInfoFile, DEL removes it.
	RuntimeConfig struct {
		MAC               string `json:"mac,omitempty"`
		CNIDeviceInfoFile string `json:"CNIDeviceInfoFile,omitempty"`
	} `json:"runtimeConfig"`

	// Derived by ParseConfig.
	LogFile    string `json:"-"`
	LogLevel   string `json:"-"`
	Kubeconfig string `json:"-"`
	// Warnings are the lenient-field problems, already printed to stderr by
	// the plugin; kept for tests and logs.
	Warnings []string `json:"-"`
}

// UserSpaceConf is the `host` or `container` section.
type UserSpaceConf struct {
	Engine  string     `json:"engine"`
	IfType  string     `json:"iftype"`
	NetType string     `json:"netType"`
	Memif   MemifConf  `json:"memif"`
	Vhost   VhostConf  `json:"vhost"`
	Bridge  BridgeConf `json:"bridge"`
}

type MemifConf struct {
	Role       string `json:"role"`
	Mode       string `json:"mode"`
	Socketfile string `json:"socketfile"`
}

type VhostConf struct {
	Mode       string `json:"mode"`
	Group      string `json:"group"`
	Socketfile string `json:"socketfile"`
}

// BridgeConf names the VPP bridge domain: `bridgeName` (HEAD, a decimal
// uint32 string) wins over `bridgeId` (seed era, an int) when both are set.
type BridgeConf struct {
	BridgeName string `json:"bridgeName"`
	BridgeID   *int64 `json:"bridgeId"`
	VlanID     *int64 `json:"vlanId"`
}

// Log levels upstream accepts.
var logLevels = []string{"panic", "error", "warning", "info", "debug", "verbose"}

// configErr is the CNI error for a config that cannot work. Its message
// names every offending field (see invalidConfig).
func configErr(problems []string) *types.Error {
	var errs *multierror.Error
	for _, p := range problems {
		errs = multierror.Append(errs, errors.New(p))
	}
	return invalidConfig(errs)
}

// invalidConfig is the CNI error for every problem a validation found:
// one alone on the line, several in multierror's list, so a user fixes
// them all in one go.
func invalidConfig(errs *multierror.Error) *types.Error {
	errs.ErrorFormat = problemList
	return types.NewError(types.ErrInvalidNetworkConfig, "invalid userspace network config: "+errs.Error(), "")
}

func problemList(es []error) string {
	if len(es) == 1 {
		return es[0].Error()
	}
	return strings.TrimSuffix(multierror.ListFormatFunc(es), "\n\n")
}

// fieldProblem formats one rejected field.
func fieldProblem(field, value, format string, a ...any) string {
	return fmt.Sprintf("%s %q: %s", field, value, fmt.Sprintf(format, a...))
}

// decodeErr turns an encoding/json error into a CNI error naming the field.
func decodeErr(err error) *types.Error {
	var te *json.UnmarshalTypeError
	var de *durationError
	switch {
	case errors.As(err, &te):
		return types.NewError(types.ErrInvalidNetworkConfig, "invalid userspace network config: "+typeProblem(te), "")
	case errors.As(err, &de):
		return types.NewError(types.ErrInvalidNetworkConfig, "invalid userspace network config: "+de.Error(), "")
	}
	return types.NewError(types.ErrDecodingFailure, "failed to load netconf: "+err.Error(), "")
}

// typeProblem says which field had the wrong JSON type and what it needs.
func typeProblem(te *json.UnmarshalTypeError) string {
	// Embedded structs (store.Config, decoding helpers) show up in the
	// path under their Go names; users never wrote those.
	var segs []string
	for _, s := range strings.Split(te.Field, ".") {
		if s != "" && s != "plain" && s != "Config" {
			segs = append(segs, s)
		}
	}
	field := strings.Join(segs, ".")
	if field == "" {
		field = "(top level)"
	}
	return fmt.Sprintf("field %s: got a JSON %s, must be %s", field, te.Value, typeWord(te.Type))
}

func typeWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return typeWord(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(typeWord(t.Elem()), "a "), "an ") + "s"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

// decodeNetConf decodes stdin without judging the values; DEL uses it alone
// so a config that could never be added can still be deleted.
func decodeNetConf(data []byte) (*NetConf, error) {
	conf := &NetConf{}
	if err := json.Unmarshal(data, conf); err != nil {
		return nil, decodeErr(err)
	}
	conf.lenientFields()
	conf.SharedDir = normalizeSharedDir(conf.SharedDir)
	return conf, nil
}

// normalizeSharedDir defaults an empty sharedDir and cleans an absolute
// one: upstream joined file names onto it, so configs and NADs written
// "/var/run/vpp/cni/shared/" (or with "//" or "/./") worked there and must
// here. A relative path or one with ".." is left as written, for
// validation to reject naming the field: cleaning could silently move the
// sockets somewhere the writer did not mean.
func normalizeSharedDir(dir string) string {
	switch {
	case dir == "":
		return DefaultSharedDir
	case !filepath.IsAbs(dir) || slices.Contains(strings.Split(dir, "/"), ".."):
		return dir
	}
	return filepath.Clean(dir)
}

// ParseConfig decodes and validates a network config. Everything that can
// never work is rejected here, before IPAM runs or anything is written.
// Warnings (log file, log level, kubeconfig) are returned in conf.Warnings.
func ParseConfig(data []byte) (*NetConf, error) {
	conf, err := decodeNetConf(data)
	if err != nil {
		return nil, err
	}
	if errs := conf.validate(); errs.ErrorOrNil() != nil {
		return nil, invalidConfig(errs)
	}
	return conf, nil
}

// lenientFields reads logFile, logLevel and kubeconfig; problems become
// warnings.
func (c *NetConf) lenientFields() {
	str := func(field string, raw json.RawMessage) string {
		if len(raw) == 0 || string(raw) == "null" {
			return ""
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			c.Warnings = append(c.Warnings, fmt.Sprintf("Userspace-CNI: %s is not a string (%s), ignored", field, raw))
			return ""
		}
		return s
	}
	c.LogFile = str("logFile", c.RawLogFile)
	c.LogLevel = strings.ToLower(str("logLevel", c.RawLogLevel))
	c.Kubeconfig = str("kubeconfig", c.RawKubeconfig)
	if c.LogLevel != "" && !contains(logLevels, c.LogLevel) {
		c.Warnings = append(c.Warnings, fmt.Sprintf("Userspace-CNI logging: logLevel %q unknown (one of %s), using warning",
			c.LogLevel, strings.Join(logLevels, ", ")))
		c.LogLevel = ""
	}
	if c.LogLevel == "" {
		c.LogLevel = "warning"
	}
	if c.Kubeconfig != "" {
		if _, err := os.Stat(c.Kubeconfig); err != nil {
			c.Warnings = append(c.Warnings, fmt.Sprintf("Userspace-CNI: kubeconfig %s unusable (%v); uspace does not need it, pod identity comes from CNI_ARGS", c.Kubeconfig, err))
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// validate returns every problem, each naming its field (nil: none).
func (c *NetConf) validate() *multierror.Error {
	var errs *multierror.Error
	add := func(problems ...string) {
		for _, s := range problems {
			errs = multierror.Append(errs, errors.New(s))
		}
	}

	if c.Name != "" {
		errs = multierror.Append(errs, schema.ValidateNetworkName("name", c.Name))
	}
	errs = multierror.Append(errs, schema.ValidateDir("sharedDir", c.SharedDir))

	h := &c.Host
	switch h.Engine {
	case EngineVPP:
	case EngineOVSDPDK:
		add(fieldProblem("host.engine", h.Engine, "not supported by uspace (only %q; uspace drives VPP)", EngineVPP))
	case "":
		add(fieldProblem("host.engine", h.Engine, "required: must be %q", EngineVPP))
	default:
		add(fieldProblem("host.engine", h.Engine, "unknown engine, must be %q", EngineVPP))
	}
	switch ct := &c.Container; ct.Engine {
	case "", EngineVPP:
	case EngineOVSDPDK:
		add(fieldProblem("container.engine", ct.Engine, "not supported by uspace (only %q)", EngineVPP))
	default:
		add(fieldProblem("container.engine", ct.Engine, "unknown engine, must be %q", EngineVPP))
	}

	switch schema.IfType(h.IfType) {
	case schema.IfTypeMemif, schema.IfTypeVhostUser:
	case "":
		add(fieldProblem("host.iftype", h.IfType, "required: must be %q or %q", schema.IfTypeMemif, schema.IfTypeVhostUser))
	default:
		add(fieldProblem("host.iftype", h.IfType, "unknown interface type, must be %q or %q", schema.IfTypeMemif, schema.IfTypeVhostUser))
	}
	if ct := c.Container.IfType; ct != "" && ct != h.IfType {
		add(fieldProblem("container.iftype", ct, "must equal host.iftype %q: the two ends of one interface share a type", h.IfType))
	}

	switch schema.NetType(h.NetType) {
	case "", schema.NetTypeInterface:
	case schema.NetTypeBridge:
		if _, prob := c.bridgeDomain(); prob != "" {
			add(prob)
		}
	default:
		add(fieldProblem("host.netType", h.NetType, "must be %q or %q", schema.NetTypeBridge, schema.NetTypeInterface))
	}
	switch ct := c.Container.NetType; schema.NetType(ct) {
	case "", schema.NetTypeInterface:
	case schema.NetTypeBridge:
		c.Warnings = append(c.Warnings, `Userspace-CNI: container.netType "bridge": uspace configures the container side as an interface carrying the IPAM addresses`)
	default:
		add(fieldProblem("container.netType", ct, "must be %q or %q", schema.NetTypeInterface, schema.NetTypeBridge))
	}

	switch schema.IfType(h.IfType) {
	case schema.IfTypeMemif:
		add(c.validateMemif()...)
	case schema.IfTypeVhostUser:
		add(c.validateVhost()...)
	}

	if mac := c.RuntimeConfig.MAC; mac != "" {
		errs = multierror.Append(errs, schema.ValidateMAC("runtimeConfig.mac", mac))
	}
	if f := c.RuntimeConfig.CNIDeviceInfoFile; f != "" {
		errs = multierror.Append(errs, schema.ValidateDir("runtimeConfig.CNIDeviceInfoFile", f))
	}
	add(c.USpace.validate()...)
	if c.USpace.MemifSocket == MemifSocketAbstract && schema.IfType(h.IfType) == schema.IfTypeVhostUser {
		add(fieldProblem("uspace.memifSocket", c.USpace.MemifSocket, "applies to memif only: a vhost-user socket is always a file in sharedDir (QEMU and Kata open files)"))
	}
	if v := c.USpace.VNI; v != 0 && schema.NetType(h.NetType) != schema.NetTypeBridge {
		add(fieldProblem("uspace.vni", fmt.Sprint(v), "only a network of host.netType %q can span hosts", schema.NetTypeBridge))
	}
	return errs
}

// abstractMemif says the attachment's memif socket is an abstract socket
// in the container's netns (uspace.memifSocket).
func (c *NetConf) abstractMemif() bool {
	return schema.IfType(c.Host.IfType) == schema.IfTypeMemif && c.USpace.MemifSocket != MemifSocketFile
}

func (c *NetConf) validateMemif() []string {
	var p []string
	h, ct := &c.Host.Memif, &c.Container.Memif
	switch schema.MemifRole(h.Role) {
	case schema.MemifMaster, schema.MemifSlave:
	default:
		p = append(p, fieldProblem("host.memif.role", h.Role, "must be %q or %q", schema.MemifMaster, schema.MemifSlave))
	}
	switch schema.MemifRole(ct.Role) {
	case "":
	case schema.MemifMaster, schema.MemifSlave:
		if ct.Role == h.Role {
			p = append(p, fieldProblem("container.memif.role", ct.Role,
				"equals host.memif.role: a memif pair needs one master and one slave (omit it to get the opposite of the host)"))
		}
	default:
		p = append(p, fieldProblem("container.memif.role", ct.Role, "must be %q or %q", schema.MemifMaster, schema.MemifSlave))
	}
	if why := memifModeProblem(h.Mode); why != "" {
		p = append(p, fieldProblem("host.memif.mode", h.Mode, "%s", why))
	}
	if why := memifModeProblem(ct.Mode); why != "" {
		p = append(p, fieldProblem("container.memif.mode", ct.Mode, "%s", why))
	} else if ct.Mode != "" && schema.MemifMode(ct.Mode) != c.hostMemifMode() {
		p = append(p, fieldProblem("container.memif.mode", ct.Mode, "differs from the host's mode %q: memif refuses to connect ends of different modes", c.hostMemifMode()))
	}
	p = append(p, validSocketfile("host.memif.socketfile", h.Socketfile)...)
	if ct.Socketfile != "" && ct.Socketfile != h.Socketfile {
		p = append(p, fieldProblem("container.memif.socketfile", ct.Socketfile, "differs from host.memif.socketfile %q: both ends use the host's socket (omit it)", h.Socketfile))
	}
	return p
}

func (c *NetConf) validateVhost() []string {
	var p []string
	h, ct := &c.Host.Vhost, &c.Container.Vhost
	switch schema.VhostMode(h.Mode) {
	case "", schema.VhostClient, schema.VhostServer:
	default:
		p = append(p, fieldProblem("host.vhost.mode", h.Mode, "must be %q or %q", schema.VhostClient, schema.VhostServer))
	}
	switch schema.VhostMode(ct.Mode) {
	case "":
	case schema.VhostClient, schema.VhostServer:
		if schema.VhostMode(ct.Mode) == c.hostVhostMode() {
			p = append(p, fieldProblem("container.vhost.mode", ct.Mode,
				"equals the host's mode: a vhost-user pair needs one client and one server (omit it to get the opposite of the host)"))
		}
	default:
		p = append(p, fieldProblem("container.vhost.mode", ct.Mode, "must be %q or %q", schema.VhostClient, schema.VhostServer))
	}
	p = append(p, validSocketfile("host.vhost.socketfile", h.Socketfile)...)
	if ct.Socketfile != "" && ct.Socketfile != h.Socketfile {
		p = append(p, fieldProblem("container.vhost.socketfile", ct.Socketfile, "differs from host.vhost.socketfile %q: both ends use the host's socket (omit it)", h.Socketfile))
	}
	return p
}

// memifModeProblem says why a memif mode cannot be used, "" when it can.
func memifModeProblem(m string) string {
	switch schema.MemifMode(m) {
	case "", schema.MemifEthernet, schema.MemifIP:
		return ""
	case schema.MemifInjectPunt:
		return fmt.Sprintf("is not supported: VPP 25.02 crashes creating an inject-punt memif (use %q or %q)", schema.MemifEthernet, schema.MemifIP)
	}
	return fmt.Sprintf("must be %q (default) or %q", schema.MemifEthernet, schema.MemifIP)
}

// validSocketfile accepts a bare file name: the directory is sharedDir.
func validSocketfile(field, f string) []string {
	switch {
	case f == "":
		return nil
	case strings.ContainsRune(f, '/'):
		return []string{fieldProblem(field, f, "must be a file name without a directory (the directory is sharedDir)")}
	case f == "." || f == "..":
		return []string{fieldProblem(field, f, "must be a file name")}
	case strings.ContainsRune(f, 0):
		return []string{fieldProblem(field, f, "must not contain NUL")}
	}
	return nil
}

// bridgeDomain resolves the host bridge: bridgeName (decimal uint32) wins
// over bridgeId. It returns a problem naming the field when neither gives a
// usable bridge-domain id (VPP's bridge domain 0 cannot be created).
func (c *NetConf) bridgeDomain() (uint32, string) {
	b := &c.Host.Bridge
	if b.BridgeName != "" {
		id, err := strconv.ParseUint(b.BridgeName, 10, 32)
		if err != nil {
			return 0, fieldProblem("host.bridge.bridgeName", b.BridgeName, "VPP bridgeName must be a bridge-domain id, a decimal number from 1 to %d", uint32(math.MaxUint32))
		}
		if id == 0 {
			return 0, fieldProblem("host.bridge.bridgeName", b.BridgeName, "bridge domain 0 is reserved in VPP, use 1 or more")
		}
		return uint32(id), ""
	}
	if b.BridgeID != nil {
		id := *b.BridgeID
		if id < 1 || id > math.MaxUint32 {
			return 0, fieldProblem("host.bridge.bridgeId", strconv.FormatInt(id, 10), "must be a bridge-domain id from 1 to %d", uint32(math.MaxUint32))
		}
		return uint32(id), ""
	}
	return 0, fieldProblem("host.bridge.bridgeName", "", `netType "bridge" needs host.bridge.bridgeName (or the older bridgeId)`)
}

// hostNetType applies upstream seed's default: no netType means the
// interface is created and attached to nothing.
func (c *NetConf) hostNetType() schema.NetType {
	if c.Host.NetType == "" {
		return schema.NetTypeInterface
	}
	return schema.NetType(c.Host.NetType)
}

func (c *NetConf) hostMemifMode() schema.MemifMode {
	if c.Host.Memif.Mode == "" {
		return schema.MemifEthernet
	}
	return schema.MemifMode(c.Host.Memif.Mode)
}

// hostVhostMode follows upstream: "client" is client, anything else is a
// server (OVS dpdkvhostuser).
func (c *NetConf) hostVhostMode() schema.VhostMode {
	if c.Host.Vhost.Mode == string(schema.VhostClient) {
		return schema.VhostClient
	}
	return schema.VhostServer
}

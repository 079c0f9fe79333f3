package schema

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
)

// FieldError names the field that was rejected and why, so a CNI error or a
// Docker error can tell the user exactly what to fix.
type FieldError struct {
	Field  string
	Value  string
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Field, e.Value, e.Reason)
}

func fieldErr(field, value, format string, a ...any) error {
	return &FieldError{Field: field, Value: value, Reason: fmt.Sprintf(format, a...)}
}

const (
	// MaxNameLen bounds every name that becomes a key segment.
	MaxNameLen = 253
	// IfNameSize is Linux's IFNAMSIZ less the terminating NUL.
	IfNameSize = 15
	// MaxSocketPath is sizeof(sun_path) less the terminating NUL.
	MaxSocketPath = 107
	MinMTU        = 68
	MaxMTU        = 9216
)

// nameRule is a name alphabet: a first character, then more characters
// (at least min in all), the last one possibly narrower. Checked byte by
// byte rather than with a regexp: agents validate every key they receive,
// and a resync receives tens of thousands.
type nameRule struct {
	pattern           string // the same rule as a regexp, for messages
	first, rest, last func(byte) bool
	min               int
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func alnumDash(c byte) bool { return alnum(c) || c == '_' || c == '.' || c == '-' }

func ifChar(c byte) bool { return alnumDash(c) || c == '@' || c == '+' }

func (r nameRule) match(v string) bool {
	if len(v) < r.min || !r.first(v[0]) {
		return false
	}
	for i := 1; i < len(v); i++ {
		if !r.rest(v[i]) {
			return false
		}
	}
	return r.last == nil || r.last(v[len(v)-1])
}

var (
	// Container IDs follow the CNI spec's rule (also what skel enforces).
	containerIDRule = nameRule{pattern: `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, first: alnum, rest: alnumDash, min: 1}
	// Hosts and networks: DNS-label-like names, as Kubernetes node names.
	hostRule = nameRule{pattern: `^[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$`, first: alnum, rest: alnumDash, last: alnum, min: 1}
	// Docker's volume name rule (daemon/names): two characters at least.
	volumeRule = nameRule{pattern: `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`, first: alnum, rest: alnumDash, min: 2}
	// Interface names: a key-safe subset of what Linux accepts.
	ifNameRule = nameRule{pattern: `^[a-zA-Z0-9_.@+-]+$`, first: ifChar, rest: ifChar, min: 1}
)

func validateName(field, v string, rule nameRule, max int) error {
	switch {
	case v == "":
		return fieldErr(field, v, "must not be empty")
	case len(v) > max:
		return fieldErr(field, v, "longer than %d characters", max)
	case v == "." || v == ".." || strings.Contains(v, ".."):
		return fieldErr(field, v, "must not contain \"..\"")
	case !rule.match(v):
		return fieldErr(field, v, "must match %s", rule.pattern)
	}
	return nil
}

func ValidateHost(field, v string) error { return validateName(field, v, hostRule, MaxNameLen) }

func ValidateContainerID(field, v string) error {
	return validateName(field, v, containerIDRule, MaxNameLen)
}

func ValidateNetworkName(field, v string) error { return validateName(field, v, hostRule, MaxNameLen) }

func ValidateVolumeName(field, v string) error { return validateName(field, v, volumeRule, MaxNameLen) }

// ValidateIfName applies Linux's IFNAMSIZ rule on top of the key alphabet.
func ValidateIfName(field, v string) error { return validateName(field, v, ifNameRule, IfNameSize) }

// ValidateSocketPath accepts an absolute, clean path that fits in sun_path
// and, when root is set, lies inside root.
func ValidateSocketPath(field, p, root string) error {
	if err := ValidateDir(field, p); err != nil {
		return err
	}
	if len(p) > MaxSocketPath {
		return fieldErr(field, p, "is %d bytes, a unix socket path holds at most %d", len(p), MaxSocketPath)
	}
	if root != "" {
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			return fieldErr(field, p, "must lie inside %s", root)
		}
	}
	return nil
}

// AbstractSocketPrefix marks a MemifSpec.SocketPath that names an abstract
// unix socket ("@name", as ss and libmemif write one).
const AbstractSocketPrefix = "@"

// MaxVPPSocketFilename is what VPP 25.02 keeps of a memif socket filename
// (its API field is 108 bytes, NUL included; longer ones are cut there,
// measured): an abstract socket's "abstract:<name>,netns_name=<netns>"
// must fit, or VPP would open a socket no one named.
const MaxVPPSocketFilename = 107

// vppAbstractOverhead is what "abstract:" and ",netns_name=" add.
const vppAbstractOverhead = len("abstract:") + len(",netns_name=")

// Abstract socket names: the container ID alphabet (VPP's filename syntax
// makes ',' a separator, so it must never occur).
var abstractRule = nameRule{pattern: `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, first: alnum, rest: alnumDash, min: 1}

// AbstractSocketOwnerPrefix starts every abstract socket name uspace gives
// (the CNI plugin's default names): the host and container agents own, and
// may unregister unasked, only such abstract sockets.
const AbstractSocketOwnerPrefix = "uspace-"

// AbstractSocketName is the name of an abstract socket path ("@name").
func AbstractSocketName(p string) (string, bool) { return strings.CutPrefix(p, AbstractSocketPrefix) }

// ValidateMemifSocket accepts a memif's socket: a socket file path (under
// root when root is set), or an abstract socket "@name" with, on the host
// side, the network namespace path it lives in. sockField and netnsField
// name the two fields.
func ValidateMemifSocket(sockField, netnsField, socket, netns, root string) error {
	name, abstract := AbstractSocketName(socket)
	if !abstract {
		if netns != "" {
			return fieldErr(netnsField, netns, "is set only for an abstract socket (\"@name\"), not for socket file %s", socket)
		}
		return ValidateSocketPath(sockField, socket, root)
	}
	if err := validateName(sockField, name, abstractRule, MaxNameLen); err != nil {
		return err
	}
	if netns != "" {
		if err := ValidateDir(netnsField, netns); err != nil {
			return err
		}
		if strings.Contains(netns, ",") {
			return fieldErr(netnsField, netns, "must not contain ',' (VPP reads it as a separator)")
		}
	}
	if n := vppAbstractOverhead + len(name) + len(netns); n > MaxVPPSocketFilename {
		return fieldErr(sockField, socket, "with netns %s makes a VPP socket filename of %d bytes, VPP keeps %d; use a shorter netns path or socket files (uspace.memifSocket \"file\")",
			netns, n, MaxVPPSocketFilename)
	}
	return nil
}

// ValidateDir accepts an absolute, clean path without "..".
func ValidateDir(field, p string) error {
	switch {
	case p == "":
		return fieldErr(field, p, "must not be empty")
	case !filepath.IsAbs(p):
		return fieldErr(field, p, "must be an absolute path")
	case strings.Contains(p, ".."):
		return fieldErr(field, p, "must not contain \"..\"")
	case filepath.Clean(p) != p:
		return fieldErr(field, p, "must be a clean path (no // or trailing /)")
	}
	return nil
}

// ValidateMTU accepts 0 (dataplane default) or a value VPP can program.
func ValidateMTU(field string, mtu uint32) error {
	if mtu != 0 && (mtu < MinMTU || mtu > MaxMTU) {
		return fieldErr(field, fmt.Sprint(mtu), "must be 0 (default) or between %d and %d", MinMTU, MaxMTU)
	}
	return nil
}

func ValidateMAC(field, mac string) error {
	if mac == "" {
		return nil
	}
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return fieldErr(field, mac, "must be an Ethernet MAC address like 02:fe:12:34:56:78")
	}
	return nil
}

// ValidateCIDR accepts an address with its prefix length, e.g. 10.1.1.2/24.
func ValidateCIDR(field, v string) error {
	if _, err := netip.ParsePrefix(v); err != nil {
		return fieldErr(field, v, "must be an address with prefix length (e.g. 10.1.1.2/24)")
	}
	return nil
}

func ValidateIP(field, v string) error {
	if _, err := netip.ParseAddr(v); err != nil {
		return fieldErr(field, v, "must be an IP address")
	}
	return nil
}

func oneOf[T ~string](field string, v T, allowed ...T) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fieldErr(field, string(v), "must be one of %v", allowed)
}

// MaxVNI is the largest VXLAN network identifier (24 bits).
const MaxVNI = 1<<24 - 1

// ValidateVNI accepts a VXLAN network identifier from 1 to MaxVNI (0 means
// "none" throughout the schema).
func ValidateVNI(field string, vni uint32) error {
	if vni == 0 || vni > MaxVNI {
		return fieldErr(field, fmt.Sprint(vni), "must be a VXLAN network identifier from 1 to %d", MaxVNI)
	}
	return nil
}

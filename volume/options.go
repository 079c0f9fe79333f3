package volume

import (
	"fmt"
	"math"
	"math/bits"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/uspace-io/uspace/schema"
)

// Options accepted by Create, i.e. `docker volume create -o <name>=<value>`.
// type, device and path are vhostuser-docker-volume's own; size, blocksize
// and bdev are new.
const (
	// OptType is the vhost-user device type: blk (default) or scsi; the
	// seed also accepted BLK and SCSI, so case does not matter.
	OptType = "type"
	// OptDevice names the device: socket, device node and SPDK controller
	// all carry it. Default: the volume name.
	OptDevice = "device"
	// OptPath is another vhost-user root for this volume (default: the
	// driver's -path). It must already hold block/sockets/ and
	// block/devices/, as the seed required.
	OptPath = "path"
	// OptSize asks the host agent to create a malloc bdev of that size:
	// bytes, or a number with a binary unit (K/KB/KiB, M/MB/MiB, G/GB/GiB,
	// T/TB/TiB; every unit is a power of 1024, as Docker's own sizes).
	OptSize = "size"
	// OptBlockSize is the malloc bdev's block size in bytes (a multiple of
	// 512, default DefaultBlockSize). Only with OptSize.
	OptBlockSize = "blocksize"
	// OptBdev names the SPDK bdev behind the controller. With OptSize the
	// agent creates it under this name (default MallocBdevName(device)) and
	// deletes it with the volume; without OptSize it must already exist in
	// SPDK and is never deleted by uspace. Without both, the volume adopts
	// the existing controller named by OptDevice with whatever it serves.
	OptBdev = "bdev"
)

// DefaultBlockSize is the malloc bdev block size when only size is given;
// the same as the seed's `rpc.py bdev_malloc_create 64 4096`.
const DefaultBlockSize = 4096

// DefaultRoot is the vhost-user root of the seed and of Kata
// (vhost_user_store_path).
const DefaultRoot = "/var/run/kata-containers/vhost-user"

// knownOptions lists every accepted option, in the order error messages
// name them.
var knownOptions = []string{OptType, OptDevice, OptPath, OptSize, OptBlockSize, OptBdev}

// MallocBdevName is the bdev the host agent creates for a volume whose
// device is device when -o size is given without -o bdev. The prefix keeps
// uspace-made bdevs apart from hand-made ones such as the seed's Malloc0.
func MallocBdevName(device string) string { return "Malloc-" + device }

// optErr is a Docker-visible rejection naming the option: `invalid option
// size "12x": ...`.
func optErr(opt, value, format string, a ...any) error {
	return &schema.FieldError{Field: "option " + opt, Value: value, Reason: fmt.Sprintf(format, a...)}
}

// NewVolume turns a Create request into a validated volume intent for host:
// options parsed and defaulted, every field checked by schema before
// anything is written. Minor, Mounts and CreatedAt are left for the
// driver's transaction to fill. root is the driver's default vhost-user
// root, used when -o path is not given.
func NewVolume(host, name, root string, opts map[string]string) (*schema.Volume, error) {
	if err := schema.ValidateVolumeName("volume name", name); err != nil {
		return nil, err
	}
	var unknown []string
	for k, v := range opts {
		if !slices.Contains(knownOptions, k) {
			unknown = append(unknown, k)
			continue
		}
		if v == "" {
			return nil, optErr(k, v, "must not be empty")
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("unknown option %s (accepted options: %s)", quoteAll(unknown), strings.Join(knownOptions, ", "))
	}

	v := &schema.Volume{Host: host, Name: name, Type: schema.VolumeBlk, Device: name, Root: root}
	if t, ok := opts[OptType]; ok {
		switch strings.ToLower(t) {
		case string(schema.VolumeBlk):
			v.Type = schema.VolumeBlk
		case string(schema.VolumeSCSI):
			v.Type = schema.VolumeSCSI
		default:
			return nil, optErr(OptType, t, "must be blk or scsi")
		}
	}
	if d, ok := opts[OptDevice]; ok {
		if err := schema.ValidateVolumeName("option device", d); err != nil {
			return nil, err
		}
		v.Device = d
	}
	if p, ok := opts[OptPath]; ok {
		r, err := cleanRoot("option path", p)
		if err != nil {
			return nil, err
		}
		v.Root = r
	}

	if err := parseMalloc(v, opts); err != nil {
		return nil, err
	}
	// Without size or bdev, Bdev stays empty: the volume adopts the
	// controller named by device as it is, with whatever it serves (the
	// seed's flow: controller and bdev made by hand with rpc.py).
	if b, ok := opts[OptBdev]; ok {
		if err := schema.ValidateVolumeName("option bdev", b); err != nil {
			return nil, err
		}
		v.Bdev = b
	}

	// SPDK creates the socket; it must fit in sun_path. Say so in terms of
	// the options the user can change.
	if sock := v.SocketPath(); len(sock) > schema.MaxSocketPath {
		return nil, optErr(OptDevice, v.Device, "the vhost-user socket %s would be %d bytes, a unix socket path holds at most %d: use a shorter device name or path",
			sock, len(sock), schema.MaxSocketPath)
	}
	if err := v.Validate(); err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	return v, nil
}

// parseMalloc sets v's malloc bdev from -o size and -o blocksize.
func parseMalloc(v *schema.Volume, opts map[string]string) error {
	sizeOpt, hasSize := opts[OptSize]
	bsOpt, hasBS := opts[OptBlockSize]
	if hasBS && !hasSize {
		return optErr(OptBlockSize, bsOpt, "only applies together with -o size (the host agent then creates a malloc bdev)")
	}
	if hasSize {
		size, err := ParseSize(sizeOpt)
		if err != nil {
			return optErr(OptSize, sizeOpt, "%v", err)
		}
		bs := uint64(DefaultBlockSize)
		if hasBS {
			if bs, err = strconv.ParseUint(bsOpt, 10, 32); err != nil {
				return optErr(OptBlockSize, bsOpt, "must be a number of bytes")
			}
			if bs == 0 || bs%512 != 0 {
				return optErr(OptBlockSize, bsOpt, "must be a non-zero multiple of 512")
			}
		}
		if size%bs != 0 {
			return optErr(OptSize, sizeOpt, "%d bytes is not a multiple of the block size %d", size, bs)
		}
		v.Malloc = &schema.MallocSpec{SizeBytes: size, BlockSize: uint32(bs)}
		v.Bdev = MallocBdevName(v.Device)
	}
	return nil
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// cleanRoot accepts an absolute vhost-user root, with or without trailing
// slash (the seed's README passes `-p /var/run/kata-containers/vhost-user/`),
// and returns it clean.
func cleanRoot(field, p string) (string, error) {
	if strings.Contains(p, "..") {
		return "", &schema.FieldError{Field: field, Value: p, Reason: "must not contain \"..\""}
	}
	if !filepath.IsAbs(p) {
		return "", &schema.FieldError{Field: field, Value: p, Reason: "must be an absolute path"}
	}
	c := filepath.Clean(p)
	if err := schema.ValidateDir(field, c); err != nil {
		return "", err
	}
	return c, nil
}

// CleanRoot is cleanRoot for the driver's own -path flag.
func CleanRoot(p string) (string, error) { return cleanRoot("path", p) }

// ParseSize reads a size in bytes: a decimal integer optionally followed by
// a unit, B or a binary multiple (K, KB, KiB, M, MB, MiB, G, GB, GiB, T, TB,
// TiB, any case; all powers of 1024 as in Docker's RAMInBytes).
func ParseSize(s string) (uint64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("must be a number of bytes, optionally with a unit (KiB, MiB, GiB, TiB)")
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("number too large")
	}
	unit := strings.ToLower(strings.TrimSpace(s[i:]))
	var shift uint
	switch unit {
	case "", "b":
	case "k", "kb", "kib":
		shift = 10
	case "m", "mb", "mib":
		shift = 20
	case "g", "gb", "gib":
		shift = 30
	case "t", "tb", "tib":
		shift = 40
	default:
		return 0, fmt.Errorf("unknown unit %q (use B, KiB, MiB, GiB or TiB)", s[i:])
	}
	if n == 0 {
		return 0, fmt.Errorf("must be more than 0 bytes")
	}
	if bits.LeadingZeros64(n) < int(shift) || n<<shift > math.MaxInt64 {
		return 0, fmt.Errorf("too large")
	}
	return n << shift, nil
}

// SameSpec reports whether two intents ask for the same device: what a
// repeated Create must match to be a no-op. Minor, mounts and timestamps
// are the driver's, not the user's, and are ignored.
func SameSpec(a, b *schema.Volume) bool {
	if a.Host != b.Host || a.Name != b.Name || a.Type != b.Type || a.Device != b.Device || a.Root != b.Root || a.Bdev != b.Bdev {
		return false
	}
	if (a.Malloc == nil) != (b.Malloc == nil) {
		return false
	}
	return a.Malloc == nil || *a.Malloc == *b.Malloc
}

// describeSpec is how errors show a volume's options.
func describeSpec(v *schema.Volume) string {
	s := fmt.Sprintf("type=%s device=%s path=%s", v.Type, v.Device, v.Root)
	if v.Bdev != "" {
		s += " bdev=" + v.Bdev
	}
	if v.Malloc != nil {
		s += fmt.Sprintf(" size=%d blocksize=%d", v.Malloc.SizeBytes, v.Malloc.BlockSize)
	}
	return s
}

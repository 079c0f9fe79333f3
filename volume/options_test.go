package volume

import (
	"strings"
	"testing"

	"github.com/uspace-io/uspace/schema"
)

const testRoot = "/var/run/kata-containers/vhost-user"

func TestNewVolumeDefaultsAndOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		vol  string
		opts map[string]string
		want schema.Volume
	}{
		// Without size or bdev the volume adopts the controller made by
		// hand, whatever it serves: no bdev named.
		{"defaults as the seed", "vhostblk0", nil,
			schema.Volume{Type: "blk", Device: "vhostblk0", Root: testRoot}},
		{"seed example", "volume0", map[string]string{"device": "vhostblk0", "type": "blk"},
			schema.Volume{Type: "blk", Device: "vhostblk0", Root: testRoot}},
		{"seed full expansion", "vhostblk0", map[string]string{"type": "blk", "device": "vhostblk0", "path": testRoot},
			schema.Volume{Type: "blk", Device: "vhostblk0", Root: testRoot}},
		{"upper-case type as the seed", "v1", map[string]string{"type": "SCSI"},
			schema.Volume{Type: "scsi", Device: "v1", Root: testRoot}},
		{"other root, trailing slash", "v1", map[string]string{"path": "/srv/vhost/"},
			schema.Volume{Type: "blk", Device: "v1", Root: "/srv/vhost"}},
		{"existing bdev by name", "volume0", map[string]string{"device": "vhostblk0", "bdev": "Malloc0"},
			schema.Volume{Type: "blk", Device: "vhostblk0", Root: testRoot, Bdev: "Malloc0"}},
		{"size only", "volume0", map[string]string{"device": "vhostblk0", "size": "64MiB"},
			schema.Volume{Type: "blk", Device: "vhostblk0", Root: testRoot, Bdev: "Malloc-vhostblk0",
				Malloc: &schema.MallocSpec{SizeBytes: 64 << 20, BlockSize: 4096}}},
		{"size, blocksize and bdev", "volume0", map[string]string{"size": "1048576", "blocksize": "512", "bdev": "mine"},
			schema.Volume{Type: "blk", Device: "volume0", Root: testRoot, Bdev: "mine",
				Malloc: &schema.MallocSpec{SizeBytes: 1 << 20, BlockSize: 512}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVolume("node1", tc.vol, testRoot, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Host, tc.want.Name = "node1", tc.vol
			if !SameSpec(v, &tc.want) {
				t.Fatalf("got %s, want %s", describeSpec(v), describeSpec(&tc.want))
			}
		})
	}
}

func TestNewVolumeRejects(t *testing.T) {
	long := strings.Repeat("d", 100)
	for _, tc := range []struct {
		name, vol string
		opts      map[string]string
		want      string
	}{
		{"unknown option", "v1", map[string]string{"devcie": "x", "type": "blk"}, `unknown option "devcie" (accepted options: type, device, path, size, blocksize, bdev)`},
		{"unknown options", "v1", map[string]string{"b": "x", "a": "y"}, `unknown option "a", "b"`},
		{"bad type", "v1", map[string]string{"type": "nvme"}, `invalid option type "nvme": must be blk or scsi`},
		{"empty value", "v1", map[string]string{"device": ""}, `invalid option device "": must not be empty`},
		{"slash in device", "v1", map[string]string{"device": "a/b"}, `invalid option device "a/b": must match`},
		{"dotdot device", "v1", map[string]string{"device": "a..b"}, `invalid option device "a..b": must not contain ".."`},
		{"relative path", "v1", map[string]string{"path": "vhost"}, `invalid option path "vhost": must be an absolute path`},
		{"dotdot path", "v1", map[string]string{"path": "/a/../b"}, `invalid option path "/a/../b": must not contain ".."`},
		{"bad volume name", "a/b", nil, `invalid volume name "a/b"`},
		{"one-char volume name", "a", nil, `invalid volume name "a"`},
		{"dotdot volume name", "a..b", nil, `invalid volume name "a..b": must not contain ".."`},
		{"socket path too long", "v1", map[string]string{"device": long}, `invalid option device "` + long + `": the vhost-user socket /var/run/kata-containers/vhost-user/block/sockets/` + long + ` would be 150 bytes, a unix socket path holds at most 107`},
		{"blocksize alone", "v1", map[string]string{"blocksize": "512"}, `invalid option blocksize "512": only applies together with -o size`},
		{"bad size", "v1", map[string]string{"size": "12x"}, `invalid option size "12x": unknown unit "x"`},
		{"zero size", "v1", map[string]string{"size": "0"}, `invalid option size "0": must be more than 0 bytes`},
		{"negative size", "v1", map[string]string{"size": "-1"}, `invalid option size "-1": must be a number`},
		{"size not a multiple", "v1", map[string]string{"size": "1000"}, `invalid option size "1000": 1000 bytes is not a multiple of the block size 4096`},
		{"blocksize not x512", "v1", map[string]string{"size": "1MiB", "blocksize": "1000"}, `invalid option blocksize "1000": must be a non-zero multiple of 512`},
		{"blocksize not a number", "v1", map[string]string{"size": "1MiB", "blocksize": "4k"}, `invalid option blocksize "4k": must be a number of bytes`},
		{"bad bdev", "v1", map[string]string{"bdev": "x y"}, `invalid option bdev "x y"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVolume("node1", tc.vol, testRoot, tc.opts)
			if err == nil {
				t.Fatalf("accepted: %s", describeSpec(v))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"512": 512, "512B": 512, "4k": 4096, "4KB": 4096, "4KiB": 4096, "64M": 64 << 20, "64MiB": 64 << 20,
		"1g": 1 << 30, "2GiB": 2 << 30, "1TiB": 1 << 40, "3 MiB": 3 << 20,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5GiB", "1PiB", "0", "0KiB", "99999999999999999999", "16777216TiB", "-5"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestSameSpec(t *testing.T) {
	a, err := NewVolume("node1", "volume0", testRoot, map[string]string{"device": "vhostblk0", "size": "64MiB"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewVolume("node1", "volume0", testRoot, map[string]string{"device": "vhostblk0", "size": "65536KiB", "blocksize": "4096", "type": "BLK"})
	b.Minor, b.Mounts = 7, []string{"x"}
	if !SameSpec(a, b) {
		t.Fatal("equivalent options differ")
	}
	for _, opts := range []map[string]string{
		{"device": "vhostblk0"},
		{"device": "vhostblk0", "size": "64MiB", "blocksize": "512"},
		{"device": "vhostblk0", "size": "64MiB", "type": "scsi"},
		{"device": "vhostblk1", "size": "64MiB"},
		{"device": "vhostblk0", "size": "64MiB", "path": "/srv"},
		{"device": "vhostblk0", "size": "64MiB", "bdev": "other"},
	} {
		c, err := NewVolume("node1", "volume0", testRoot, opts)
		if err != nil {
			t.Fatal(err)
		}
		if SameSpec(a, c) {
			t.Errorf("%v: same as %s", opts, describeSpec(a))
		}
	}
}

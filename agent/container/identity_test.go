package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uspace-io/uspace/schema"
)

const dockerFull = "4f1e5a7c0d3b2a19e8f76c5b4a3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"

func fakeProc(t *testing.T, file, content string) string {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "self", file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestMatch(t *testing.T) {
	metas := []schema.ContainerMeta{
		{Container: dockerFull, PodNamespace: "ns", PodName: "a"},
		{Container: "4f1e5a7c0d3bXX", PodNamespace: "ns", PodName: "b"},
		{Container: "cnitool-1a2b-one"},
		{Container: "cnitool-1a2b-two"},
	}
	cases := []struct {
		name    string
		id      Identity
		want    string
		wantErr string
	}{
		{"explicit", Identity{ContainerID: "given"}, "given", ""},
		{"pod", Identity{PodNamespace: "ns", PodName: "b"}, "4f1e5a7c0d3bXX", ""},
		{"pod missing", Identity{PodNamespace: "ns", PodName: "zz"}, "", "no matching container"},
		{"cgroup v1", Identity{ProcRoot: fakeProc(t, "cgroup", "12:pids:/docker/"+dockerFull+"\n")}, dockerFull, ""},
		{"cgroup v2 systemd", Identity{ProcRoot: fakeProc(t, "cgroup", "0::/system.slice/docker-"+dockerFull+".scope\n")}, dockerFull, ""},
		{"mountinfo", Identity{ProcRoot: fakeProc(t, "mountinfo",
			"1 2 0:1 /var/lib/docker/containers/"+dockerFull+"/hostname /etc/hostname rw - ext4 /dev/vda rw\n")}, dockerFull, ""},
		{"hostname prefix", Identity{ProcRoot: t.TempDir(), Hostname: "cnitool-1a2b-o"}, "cnitool-1a2b-one", ""},
		{"hostname ambiguous", Identity{ProcRoot: t.TempDir(), Hostname: "cnitool-1a2b"}, "", "cnitool-1a2b-one, cnitool-1a2b-two"},
		{"nothing to go by", Identity{ProcRoot: t.TempDir()}, "", "give --container-id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.id.match(metas)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("match = %q, %v; want error containing %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("match = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

package container

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uspace-io/uspace/schema"
)

const dockerFull = "4f1e5a7c0d3b2a19e8f76c5b4a3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"

func fakeProc(t *testing.T, fileContent ...string) string {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(fileContent); i += 2 {
		if err := os.WriteFile(filepath.Join(root, "self", fileContent[i]), []byte(fileContent[i+1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// The app container of the seed's docker-run flow (--net=container:<sandbox>)
// on cgroup v1: its cgroup names itself, its hostname, hosts and
// resolv.conf are the sandbox's, and the CNI ADD used the sandbox's ID.
const appFull = "aa1e5a7c0d3b2a19e8f76c5b4a3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"

func sandboxMounts(id string) string {
	return "1 2 0:1 /var/lib/docker/containers/" + id + "/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda rw\n" +
		"3 2 0:1 /var/lib/docker/containers/" + id + "/hostname /etc/hostname rw - ext4 /dev/vda rw\n"
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
		{"explicit", Identity{ContainerID: "cnitool-1a2b-two"}, "cnitool-1a2b-two", ""},
		{"explicit without intents", Identity{ContainerID: "given", ProcRoot: t.TempDir()}, "", "tried --container-id given"},
		{"CNI_CONTAINERID", Identity{CNIContainerID: "cnitool-1a2b-one", ProcRoot: t.TempDir()}, "cnitool-1a2b-one", ""},
		{"net=container on cgroup v1: the sandbox from mountinfo", Identity{ProcRoot: fakeProc(t,
			"cgroup", "12:pids:/docker/"+appFull+"\n", "mountinfo", sandboxMounts(dockerFull))}, dockerFull, ""},
		{"net=container, no mountinfo: the sandbox's hostname", Identity{Hostname: dockerFull[:12], ProcRoot: fakeProc(t,
			"cgroup", "12:pids:/docker/"+appFull+"\n")}, "", "matches 2 containers"},
		{"own ID without intents falls through to the hostname", Identity{Hostname: "cnitool-1a2b-o", ProcRoot: fakeProc(t,
			"cgroup", "12:pids:/docker/"+appFull+"\n")}, "cnitool-1a2b-one", ""},
		{"nothing matches: every attempt named", Identity{Hostname: "zzz", PodNamespace: "ns", PodName: "q", ProcRoot: fakeProc(t,
			"cgroup", "12:pids:/docker/"+appFull+"\n")}, "", "tried pod ns/q; docker container " + appFull + "; hostname zzz"},
		{"pod", Identity{PodNamespace: "ns", PodName: "b"}, "4f1e5a7c0d3bXX", ""},
		{"pod missing", Identity{PodNamespace: "ns", PodName: "zz", ProcRoot: t.TempDir()}, "", "no container with intents on this host matches"},
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
			got, _, err := match(c.id.sources(), metas, slog.New(slog.DiscardHandler))
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

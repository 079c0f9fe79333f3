package container

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// Identity is how a container agent finds out which container it serves
// when it is not told.
type Identity struct {
	ContainerID  string // given: used as is
	PodNamespace string // Kubernetes downward API
	PodName      string
	ProcRoot     string // "/proc" (tests use a fake tree)
	Hostname     string // Docker sets it to the container ID's first 12 characters
}

// errNoMatch means no container meta matches yet: the CNI ADD may come
// later, so the agent keeps watching.
var errNoMatch = errors.New("no matching container")

var dockerIDRe = regexp.MustCompile(`[0-9a-f]{64}`)

// dockerID reads the 64-hex Docker container ID from /proc/self/cgroup
// (cgroup v1, and v2 with the systemd driver) or /proc/self/mountinfo
// (cgroup v2 with the cgroupfs driver: /var/lib/docker/containers/<id>/...).
func dockerID(procRoot string) string {
	for _, f := range []string{"self/cgroup", "self/mountinfo"} {
		file, err := os.Open(filepath.Join(procRoot, f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			line := sc.Text()
			if f == "self/mountinfo" && !strings.Contains(line, "/containers/") {
				continue
			}
			if id := dockerIDRe.FindString(line); id != "" {
				file.Close()
				return id
			}
		}
		file.Close()
	}
	return ""
}

// match picks the container among metas by the first identity source that
// applies. Ambiguity is an error that lists the candidates.
func (id Identity) match(metas []schema.ContainerMeta) (string, error) {
	if id.ContainerID != "" {
		return id.ContainerID, nil
	}
	var (
		by    string
		match func(m schema.ContainerMeta) bool
	)
	switch d := dockerID(id.ProcRoot); {
	case id.PodNamespace != "" && id.PodName != "":
		by = fmt.Sprintf("pod %s/%s", id.PodNamespace, id.PodName)
		match = func(m schema.ContainerMeta) bool {
			return m.PodNamespace == id.PodNamespace && m.PodName == id.PodName
		}
	case d != "":
		by = "docker container " + d
		match = func(m schema.ContainerMeta) bool { return m.Container == d }
	case id.Hostname != "":
		by = "hostname " + id.Hostname
		match = func(m schema.ContainerMeta) bool { return strings.HasPrefix(m.Container, id.Hostname) }
	default:
		return "", errors.New("cannot tell which container this is: give --container-id, or POD_NAMESPACE and POD_NAME")
	}
	var found []string
	for _, m := range metas {
		if match(m) {
			found = append(found, m.Container)
		}
	}
	slices.Sort(found)
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w for %s", errNoMatch, by)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s matches %d containers, give --container-id: %s", by, len(found), strings.Join(found, ", "))
}

// Discover resolves the container ID, watching the host's container meta
// keys until one matches when none does yet.
func (id Identity) Discover(ctx context.Context, st *store.Client, host string) (string, error) {
	if id.ContainerID != "" {
		return id.ContainerID, nil
	}
	metas := map[string]schema.ContainerMeta{}
	var result string
	stop := errors.New("found")
	err := st.ListWatch(ctx, schema.ContainersPrefix(host), func(ev store.Event) error {
		switch ev.Type {
		case store.Sync:
			clear(metas)
			for _, kv := range ev.Snapshot {
				addMeta(metas, kv)
			}
		case store.Put:
			addMeta(metas, ev.KV)
		case store.Delete:
			delete(metas, ev.KV.Key)
		default:
			return nil
		}
		c, err := id.match(slices.Collect(maps.Values(metas)))
		if errors.Is(err, errNoMatch) {
			return nil
		}
		if err != nil {
			return err
		}
		result = c
		return stop
	})
	if errors.Is(err, stop) {
		return result, nil
	}
	return "", fmt.Errorf("discover container identity on host %s: %w", host, err)
}

func addMeta(metas map[string]schema.ContainerMeta, kv store.KV) {
	k, err := schema.ParseKey(kv.Key)
	if err != nil || k.Kind != schema.KindContainerMetaKey {
		return
	}
	if m, err := schema.DecodeAs[schema.ContainerMeta](kv.Value); err == nil {
		metas[kv.Key] = *m
	}
}

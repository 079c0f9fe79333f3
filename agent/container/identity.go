package container

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// Identity is how a container agent finds out which container it serves.
// Every source that applies is tried, in the order of sources(); the first
// that matches exactly one container's meta wins.
type Identity struct {
	ContainerID string // given (--container-id): used as is
	// CNIContainerID is CNI_CONTAINERID when the launcher passed it on: in
	// the docker-run flow it is the sandbox's ID, which the CNI ADD used.
	CNIContainerID string
	PodNamespace   string // Kubernetes downward API
	PodName        string
	ProcRoot       string // "/proc" (tests use a fake tree)
	// Hostname is Docker's: the container ID's first 12 characters, and
	// with --net=container:<sandbox> the sandbox's.
	Hostname string
	// Endpoint: etcd is reached through the host agent's endpoint in this
	// container's network namespace, which shows this container's meta
	// alone; the one meta it shows is this container's.
	Endpoint bool
}

// NoMatchReport is how long an agent waits for a container meta to match
// before it says, at warning level, which identities it tried. It keeps
// waiting after that: the CNI ADD may come later.
const NoMatchReport = 30 * time.Second

var dockerIDRe = regexp.MustCompile(`[0-9a-f]{64}`)

// dockerIDs reads every 64-hex Docker container ID in /proc/self/cgroup
// (cgroup v1, and v2 with the systemd driver) and /proc/self/mountinfo
// (the /var/lib/docker/containers/<id>/ files bind-mounted into the
// container). In an app container started with --net=container:<sandbox>
// the cgroup names the app container, while hostname, hosts and
// resolv.conf come from the sandbox, whose ID is the one the CNI ADD used.
func dockerIDs(procRoot string) []string {
	var ids []string
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
			for _, id := range dockerIDRe.FindAllString(line, -1) {
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
		file.Close()
	}
	return ids
}

// source is one way of recognising this container among the metas.
type source struct {
	by    string // for logs and errors, e.g. "docker container <id>"
	match func(m schema.ContainerMeta) bool
	// unique: more than one match is ambiguous (prefixes, pods); an exact
	// ID matches at most one meta anyway.
	unique bool
}

func exactID(by, id string) source {
	return source{by: by + " " + id, match: func(m schema.ContainerMeta) bool { return m.Container == id }}
}

// sources lists what this container can be recognised by, most specific
// first.
func (id Identity) sources() []source {
	var srcs []source
	if id.ContainerID != "" {
		srcs = append(srcs, exactID("--container-id", id.ContainerID))
	}
	if id.CNIContainerID != "" {
		srcs = append(srcs, exactID("CNI_CONTAINERID", id.CNIContainerID))
	}
	if id.PodNamespace != "" && id.PodName != "" {
		srcs = append(srcs, source{by: fmt.Sprintf("pod %s/%s", id.PodNamespace, id.PodName), unique: true,
			match: func(m schema.ContainerMeta) bool { return m.PodNamespace == id.PodNamespace && m.PodName == id.PodName }})
	}
	for _, d := range dockerIDs(cmp.Or(id.ProcRoot, "/proc")) {
		srcs = append(srcs, exactID("docker container", d))
	}
	if id.Hostname != "" {
		srcs = append(srcs, source{by: "hostname " + id.Hostname + " (as a container ID prefix)", unique: true,
			match: func(m schema.ContainerMeta) bool { return strings.HasPrefix(m.Container, id.Hostname) }})
	}
	if id.Endpoint {
		srcs = append(srcs, source{by: "the etcd endpoint of this network namespace", unique: true,
			match: func(schema.ContainerMeta) bool { return true }})
	}
	return srcs
}

// errNoMatch means no container meta matches yet: the CNI ADD may come
// later.
var errNoMatch = errors.New("no container with intents on this host matches")

// match picks the container among metas by the first source that matches
// any. Ambiguity is an error that lists the candidates.
func match(srcs []source, metas []schema.ContainerMeta, log *slog.Logger) (string, string, error) {
	if len(srcs) == 0 {
		return "", "", errors.New("cannot tell which container this is: give --container-id, or POD_NAMESPACE and POD_NAME")
	}
	for _, s := range srcs {
		var found []string
		for _, m := range metas {
			if s.match(m) {
				found = append(found, m.Container)
			}
		}
		slices.Sort(found)
		log.Debug("identity attempt", "by", s.by, "matches", len(found))
		switch {
		case len(found) == 1:
			return found[0], s.by, nil
		case len(found) > 1 && s.unique:
			return "", "", fmt.Errorf("%s matches %d containers, give --container-id: %s", s.by, len(found), strings.Join(found, ", "))
		}
	}
	return "", "", fmt.Errorf("%w: tried %s", errNoMatch, describe(srcs))
}

func describe(srcs []source) string {
	by := make([]string, len(srcs))
	for i, s := range srcs {
		by[i] = s.by
	}
	return strings.Join(by, "; ")
}

// Discover resolves the container ID among the host's container metas.
// With once it decides on the metas there are now; otherwise it watches
// them until one matches, saying after NoMatchReport which identities it
// tried.
func (id Identity) Discover(ctx context.Context, st *store.Client, host string, once bool, log *slog.Logger) (string, error) {
	if id.ContainerID != "" {
		// Given: the agent may start before the CNI ADD, and watches that
		// container's prefix until its intents come.
		log.Info("container identified", "container", id.ContainerID, "by", "--container-id")
		return id.ContainerID, nil
	}
	srcs := id.sources()
	var (
		mu      sync.Mutex
		lastErr error = fmt.Errorf("%w: tried %s", errNoMatch, describe(srcs))
		wg      sync.WaitGroup
	)
	dctx, cancel := context.WithCancel(ctx)
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(NoMatchReport)
		defer t.Stop()
		for {
			select {
			case <-dctx.Done():
				return
			case <-t.C:
				mu.Lock()
				err := lastErr
				mu.Unlock()
				log.Warn("no intents for this container yet; waiting for a CNI ADD", "host", host, "err", err)
			}
		}
	}()

	metas := map[string]schema.ContainerMeta{}
	var result string
	stop := errors.New("found")
	err := st.ListWatch(dctx, schema.ContainersPrefix(host), func(ev store.Event) error {
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
		c, by, err := match(srcs, slices.Collect(maps.Values(metas)), log)
		if errors.Is(err, errNoMatch) && !once {
			mu.Lock()
			lastErr = err
			mu.Unlock()
			return nil
		}
		if err != nil {
			return err
		}
		log.Info("container identified", "container", c, "by", by)
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

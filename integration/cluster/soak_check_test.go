package cluster_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/schema"
)

// check asserts every invariant after a step: the model in etcd and IPAM,
// every agent converged to it and every dataplane holding exactly it,
// nothing else on disk, the resources bounded; on the real dataplanes
// also that live containers reach each other.
func (s *soak) check() {
	s.checkModel()
	s.res.check()
	if s.cfg.real {
		s.traffic()
	}
}

// checkModel is check without the resources and the traffic.
func (s *soak) checkModel() {
	for _, sh := range s.hosts {
		s.checkIntents(sh)
		_, s.res.states[sh.h.Name] = convergedState(s.t, s.e, sh.h)
		for _, l := range sh.live() {
			s.res.states[l.id] = convergedContainerState(s.t, s.e, l.c, l.id)
		}
		s.checkFiles(sh)
		s.checks += 4 + len(sh.live())
	}
}

// checkIntents asserts that etcd holds exactly the modelled intents of
// sh and IPAM one address per attachment.
func (s *soak) checkIntents(sh *soakHost) {
	t, h := s.t, sh.h
	var wantIfs, wantCtr, wantMeta, wantVols []string
	metas := map[string]bool{}
	for k := range sh.atts {
		wantIfs = append(wantIfs, schema.InterfaceKey(h.Name, k[0], k[1]))
		wantCtr = append(wantCtr, schema.ContainerInterfaceKey(h.Name, k[0], k[1]))
		if !metas[k[0]] {
			metas[k[0]] = true
			wantMeta = append(wantMeta, schema.ContainerMetaKey(h.Name, k[0]))
		}
	}
	for k := range sh.direct {
		wantIfs = append(wantIfs, k)
	}
	for v := range sh.volumes {
		wantVols = append(wantVols, schema.VolumeKey(h.Name, v))
	}
	got := keysByKind(t, s.e, h.Name)
	for _, c := range []struct {
		what      string
		got, want []string
	}{{"interface intents", got[schema.KindInterfaceKey], wantIfs}, {"container interface intents", got[schema.KindContainerInterfaceKey], wantCtr},
		{"container metas", got[schema.KindContainerMetaKey], wantMeta}, {"volume intents", got[schema.KindVolumeKey], wantVols}} {
		sort.Strings(c.got)
		sort.Strings(c.want)
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: etcd holds %s %v, want %v", h.Name, c.what, c.got, c.want)
		}
	}
	for n, c := range sh.nets {
		want := 0
		for _, a := range sh.atts {
			if a.net == n {
				want++
			}
		}
		if got := c.reservations(); len(got) != want {
			t.Errorf("%s: IPAM holds %d addresses in %s for %d attachments: %v", h.Name, len(got), c.network, want, got)
		}
	}
}

// checkFiles asserts that sh's disk holds exactly the socket files of the
// interfaces whose VPP side listens (memif master, vhost-user server) and
// the device nodes and vhost sockets of the modelled volumes.
func (s *soak) checkFiles(sh *soakHost) {
	t, h := s.t, sh.h
	var sockets []string
	for _, kv := range list(t, s.e, schema.InterfacesPrefix(h.Name)) {
		hi, err := schema.DecodeAs[schema.HostInterface](kv.Value)
		switch {
		case err != nil:
		case hi.Memif != nil && hi.Memif.Netns != "":
			// An abstract socket in the container's netns: no file.
		case hi.Memif != nil && hi.Memif.Role == schema.MemifMaster:
			sockets = append(sockets, hi.Memif.SocketPath)
		case hi.Vhost != nil && hi.Vhost.Mode == schema.VhostServer:
			sockets = append(sockets, hi.Vhost.SocketPath)
		}
	}
	var devices []string
	for v := range sh.volumes {
		devices = append(devices, v)
	}
	for _, c := range []struct {
		dir  string
		want []string
	}{
		{h.SharedDir, sockets},
		{filepath.Join(h.VolumeRoot, "block", "devices"), joinAll(h.VolumeRoot, "block/devices", devices)},
		{filepath.Join(h.VolumeRoot, "block", "sockets"), joinAll(h.VolumeRoot, "block/sockets", devices)},
	} {
		got := filesUnder(t, c.dir)
		want := slices.Sorted(slices.Values(c.want))
		if !slices.Equal(got, want) {
			t.Errorf("%s: files under %s: %v, want %v", h.Name, c.dir, got, want)
		}
	}
}

// joinAll is filepath.Join(root, sub, name) of every name.
func joinAll(root, sub string, names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, filepath.Join(root, sub, n))
	}
	return out
}

// filesUnder lists, sorted, everything under dir that is not a directory.
func filesUnder(t interface{ Errorf(string, ...any) }, dir string) []string {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Errorf("walk %s: %v", dir, err)
	}
	slices.Sort(out)
	return out
}

// drainedStatuses waits, bounded, until no host holds a status of a
// container interface any more (the app containers' agents remove theirs,
// the host agents those of containers that are gone) and no host is a
// member of a network.
func (s *soak) drainedStatuses() {
	deadline := time.Now().Add(harness.WaitTimeout)
	for _, prefix := range []string{schema.StatusPrefix(), schema.MembersPrefix()} {
		for {
			var left []string
			for _, k := range keysOf(list(s.t, s.e, prefix)) {
				if pk, err := schema.ParseKey(k); err != nil || pk.Kind == schema.KindContainerInterfaceKey || pk.Kind == schema.KindMemberKey {
					left = append(left, k)
				}
			}
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				s.t.Errorf("left after the drain: %v", left)
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

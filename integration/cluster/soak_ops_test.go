package cluster_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	plugin "github.com/docker/go-plugins-helpers/volume"

	"github.com/uspace-io/uspace/schema"
)

// What the soak does to the cluster; each applies its change to the model.

// add attaches one container to a network of sh: the host's app container
// to a network it is not on yet, a new container with a VPP and an agent
// of its own (one at a time per host), or a new container that is only a
// network namespace.
func (s *soak) add(sh *soakHost) string {
	s.t.Helper()
	net := s.rng.IntN(len(sh.nets))
	switch r := s.rng.IntN(6); {
	case r < 2:
		for n := range sh.nets {
			if _, ok := sh.atts[[2]string{sh.app.id, appIf(n)}]; !ok {
				s.attachApp(sh, n)
				s.stats["add"]++
				return fmt.Sprintf("ADD %s/%s on %s, network %s", sh.app.id, appIf(n), sh.h.Name, sh.nets[n].network)
			}
		}
	case r < 3 && sh.guest == nil:
		id := s.next("guest-")
		a := &soakAtt{netns: newNS(s.t), net: net}
		s.attach(sh, id, "net1", a)
		sh.guest = s.startCtr(sh, id, a.netns)
		s.stats["add-live"]++
		return fmt.Sprintf("ADD %s/net1 on %s, network %s, and its VPP and agent started", id, sh.h.Name, sh.nets[net].network)
	}
	id := s.next("ctr-")
	s.attach(sh, id, "net1", &soakAtt{netns: newNS(s.t), net: net, ownNS: true})
	s.stats["add"]++
	return fmt.Sprintf("ADD %s/net1 on %s, network %s", id, sh.h.Name, sh.nets[net].network)
}

// appIf is the interface of an app container on network n.
func appIf(n int) string { return fmt.Sprintf("net%d", n+1) }

// attachApp adds sh's app container to network n.
func (s *soak) attachApp(sh *soakHost, n int) {
	s.attach(sh, sh.app.id, appIf(n), &soakAtt{netns: sh.app.netns, net: n})
}

// attach runs the CNI ADD of a and records it.
func (s *soak) attach(sh *soakHost, id, ifname string, a *soakAtt) {
	s.t.Helper()
	res, err := sh.nets[a.net].addIf(bg(), id, a.netns.Path(), ifname)
	if err != nil {
		s.t.Fatal(err)
	}
	if len(res.IPs) > 0 {
		a.ip = res.IPs[0].Address.IP.String()
	}
	sh.atts[[2]string{id, ifname}] = a
}

// one is an attachment: its host, container, interface and model entry.
type one struct {
	sh         *soakHost
	id, ifname string
	a          *soakAtt
}

// newOnes makes n attachments of new containers on random hosts and
// networks.
func (s *soak) newOnes(n int, prefix string) []one {
	var ones []one
	for range n {
		sh := s.host()
		ones = append(ones, one{sh, s.next(prefix), "net1", &soakAtt{netns: newNS(s.t), net: s.rng.IntN(len(sh.nets)), ownNS: true}})
	}
	return ones
}

// addAll runs the ADDs of ones concurrently and records them.
func (s *soak) addAll(ones []one) {
	s.t.Helper()
	for i, err := range parallel(len(ones), func(i int) error {
		o := ones[i]
		res, err := o.sh.nets[o.a.net].addIf(bg(), o.id, o.a.netns.Path(), o.ifname)
		if err == nil && len(res.IPs) > 0 {
			ones[i].a.ip = res.IPs[0].Address.IP.String()
		}
		return err
	}) {
		if err != nil {
			s.t.Fatal(err)
		}
		ones[i].sh.atts[[2]string{ones[i].id, ones[i].ifname}] = ones[i].a
	}
}

// delAll runs the DELs of ones concurrently and forgets them.
func (s *soak) delAll(ones []one) {
	s.t.Helper()
	for i, err := range parallel(len(ones), func(i int) error {
		o := ones[i]
		return o.sh.nets[o.a.net].delIf(bg(), o.id, o.a.netns.Path(), o.ifname)
	}) {
		if err != nil {
			s.t.Fatal(err)
		}
		s.forget(ones[i].sh, [2]string{ones[i].id, ones[i].ifname})
	}
}

// burst runs several ADDs on random hosts concurrently.
func (s *soak) burst() string {
	ones := s.newOnes(2+s.rng.IntN(5), "burst-")
	s.addAll(ones)
	s.stats["burst"]++
	return fmt.Sprintf("%d concurrent ADDs", len(ones))
}

// churn runs several ADD+DEL cycles of new containers concurrently: the
// ADDs, then the DELs.
func (s *soak) churn() string {
	ones := s.newOnes(4+s.rng.IntN(9), "churn-")
	s.addAll(ones)
	s.delAll(ones)
	s.stats["churn"]++
	return fmt.Sprintf("%d concurrent ADD+DEL cycles", len(ones))
}

// attachments lists every attachment of the model in a stable order.
func (s *soak) attachments() []one {
	var all []one
	for _, sh := range s.hosts {
		keys := slices.SortedFunc(func(yield func([2]string) bool) {
			for k := range sh.atts {
				if !yield(k) {
					return
				}
			}
		}, func(a, b [2]string) int { return strings.Compare(a[0]+"/"+a[1], b[0]+"/"+b[1]) })
		for _, k := range keys {
			all = append(all, one{sh, k[0], k[1], sh.atts[k]})
		}
	}
	return all
}

// del detaches a random attachment. A container with a VPP of its own
// goes with its last attachment, in either order: stopped first and DELed
// after (as Kubernetes and Docker do it), or DELed while it still runs.
func (s *soak) del() string {
	all := s.attachments()
	if len(all) == 0 {
		return s.add(s.host())
	}
	o := all[s.rng.IntN(len(all))]
	sh, a, id, ifname := o.sh, o.a, o.id, o.ifname
	guest := sh.guest != nil && sh.guest.id == id
	stopFirst := guest && s.rng.IntN(2) == 0
	if stopFirst {
		s.stopCtr(sh.guest)
	}
	if err := sh.nets[a.net].delIf(bg(), id, a.netns.Path(), ifname); err != nil {
		s.t.Fatal(err)
	}
	s.forget(sh, [2]string{id, ifname})
	s.stats["del"]++
	switch {
	case stopFirst:
		sh.guest = nil
		return fmt.Sprintf("%s stopped, then DEL %s/%s on %s", id, id, ifname, sh.h.Name)
	case guest:
		s.stopCtr(sh.guest)
		sh.guest = nil
		return fmt.Sprintf("DEL %s/%s on %s, then %s stopped", id, ifname, sh.h.Name, id)
	}
	return fmt.Sprintf("DEL %s/%s on %s", id, ifname, sh.h.Name)
}

// delBurst detaches several containers that are only network namespaces,
// concurrently.
func (s *soak) delBurst() string {
	var plain []one
	for _, o := range s.attachments() {
		if o.a.ownNS {
			plain = append(plain, o)
		}
	}
	if len(plain) < 2 {
		return s.del()
	}
	s.rng.Shuffle(len(plain), func(i, j int) { plain[i], plain[j] = plain[j], plain[i] })
	plain = plain[:min(len(plain), 2+s.rng.IntN(5))]
	s.delAll(plain)
	s.stats["del-burst"]++
	return fmt.Sprintf("%d concurrent DELs", len(plain))
}

// forget drops a DELed attachment from the model: one ADD/DEL cycle more.
func (s *soak) forget(sh *soakHost, k [2]string) {
	if a := sh.atts[k]; a.ownNS {
		releaseNS(a.netns)
	}
	delete(sh.atts, k)
	s.cycles++
}

// directChange adds or removes host interface intents written directly.
func (s *soak) directChange(sh *soakHost) string {
	objs, dels := s.directEdits(sh)
	s.apply(objs, dels)
	s.stats["direct"]++
	return fmt.Sprintf("direct intents on %s: %d put, %d deleted", sh.h.Name, len(objs), len(dels))
}

func (s *soak) apply(objs map[string]schema.Object, dels []string) {
	if len(objs) > 0 {
		s.e.Put(s.t, objs)
	}
	if len(dels) > 0 {
		s.e.Delete(s.t, dels...)
	}
}

// directEdits picks changes to sh's direct intents and applies them to the
// model: a few new ones, some deleted, one moved to another bridge domain.
func (s *soak) directEdits(sh *soakHost) (map[string]schema.Object, []string) {
	objs := map[string]schema.Object{}
	var dels []string
	bridges := []uint32{0, 4, 5}
	n := 1 + s.rng.IntN(3)
	if len(sh.direct) >= 15 {
		n = 0
	}
	for range n {
		c := s.next("d")
		var hi *schema.HostInterface
		if s.rng.IntN(2) == 0 {
			hi = memifIntent(sh.h, c, "net0", bridges[s.rng.IntN(3)])
		} else {
			hi = vhostIntent(sh.h, c, "net0", bridges[s.rng.IntN(3)])
		}
		k := ifKey(sh.h, c, "net0")
		objs[k], sh.direct[k] = hi, hi
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range sh.direct {
			if _, fresh := objs[k]; !fresh && !yield(k) {
				return
			}
		}
	}) {
		switch s.rng.IntN(4) {
		case 0:
			dels = append(dels, k)
			delete(sh.direct, k)
		case 1:
			moved := *sh.direct[k]
			moved.Bridge = bridges[s.rng.IntN(3)]
			moved.NetType = schema.NetTypeBridge
			if moved.Bridge == 0 {
				moved.NetType = schema.NetTypeInterface
			}
			objs[k], sh.direct[k] = &moved, &moved
		}
	}
	return objs, dels
}

// volumeCreate creates and mounts a volume through the driver.
func (s *soak) volumeCreate(sh *soakHost) string {
	typ := []string{"blk", "scsi"}[s.rng.IntN(2)]
	name := s.createVolume(sh, typ)
	s.stats["volume+"]++
	return fmt.Sprintf("volume %s (%s) created and mounted on %s", name, typ, sh.h.Name)
}

func (s *soak) createVolume(sh *soakHost, typ string) string {
	name := s.next("sv")
	if err := sh.vols.Create(&plugin.CreateRequest{Name: name, Options: map[string]string{"type": typ, "size": "1M"}}); err != nil {
		s.t.Fatalf("volume create %s on %s: %v", name, sh.h.Name, err)
	}
	id := s.next("mount-")
	resp, err := sh.vols.Mount(&plugin.MountRequest{Name: name, ID: id})
	if err != nil {
		s.t.Fatalf("volume mount %s on %s: %v", name, sh.h.Name, err)
	}
	if !strings.HasPrefix(resp.Mountpoint, sh.h.VolumeRoot+"/block/devices/") {
		s.t.Errorf("volume %s mountpoint %s", name, resp.Mountpoint)
	}
	sh.volumes[name] = id
	s.res.dirty[sh] = true
	return name
}

// volumeRemove unmounts and removes a random volume.
func (s *soak) volumeRemove() string {
	var all [][2]string
	for i, sh := range s.hosts {
		for v := range sh.volumes {
			all = append(all, [2]string{strconv.Itoa(i), v})
		}
	}
	if len(all) == 0 {
		return s.volumeCreate(s.host())
	}
	slices.SortFunc(all, func(a, b [2]string) int { return strings.Compare(a[0]+a[1], b[0]+b[1]) })
	pick := all[s.rng.IntN(len(all))]
	i, _ := strconv.Atoi(pick[0])
	s.removeVolume(s.hosts[i], pick[1])
	s.stats["volume-"]++
	return fmt.Sprintf("volume %s unmounted and removed on %s", pick[1], s.hosts[i].h.Name)
}

func (s *soak) removeVolume(sh *soakHost, name string) {
	s.t.Helper()
	if err := sh.vols.Unmount(&plugin.UnmountRequest{Name: name, ID: sh.volumes[name]}); err != nil {
		s.t.Fatalf("volume unmount %s on %s: %v", name, sh.h.Name, err)
	}
	if err := sh.vols.Remove(&plugin.RemoveRequest{Name: name}); err != nil {
		s.t.Fatalf("volume remove %s on %s: %v", name, sh.h.Name, err)
	}
	delete(sh.volumes, name)
	s.res.dirty[sh] = true
}

// warmUp does one of everything on every host and undoes it, before the
// baselines are taken: what VPP and SPDK allocate once, at their first
// memif, bridge domain, tunnel or volume, is not growth of the soak.
func (s *soak) warmUp() {
	for _, sh := range s.hosts {
		for n := range sh.nets {
			s.attach(sh, s.next("warm-"), "net1", &soakAtt{netns: newNS(s.t), net: n, ownNS: true})
			s.attachApp(sh, n)
		}
		objs := map[string]schema.Object{}
		for _, hi := range []*schema.HostInterface{memifIntent(sh.h, s.next("warm-"), "net0", 5), vhostIntent(sh.h, s.next("warm-"), "net0", 5)} {
			k := ifKey(sh.h, hi.Container, "net0")
			objs[k], sh.direct[k] = hi, hi
		}
		s.apply(objs, nil)
		s.createVolume(sh, "blk")
		s.createVolume(sh, "scsi")
	}
	s.checkModel()
	s.t.Logf("soak: warm-up: %s", s.drain())
	s.checkModel()
	s.cycles = 0
}

// drain removes everything the soak made: every attachment (and so every
// container with a VPP of its own but the app containers), every volume,
// every direct intent.
func (s *soak) drain() string {
	n := 0
	for _, o := range s.attachments() {
		if err := o.sh.nets[o.a.net].delIf(bg(), o.id, o.a.netns.Path(), o.ifname); err != nil {
			s.t.Fatal(err)
		}
		s.forget(o.sh, [2]string{o.id, o.ifname})
		n++
	}
	vols, direct := 0, 0
	for _, sh := range s.hosts {
		s.res.dirty[sh] = true
		if sh.guest != nil {
			s.stopCtr(sh.guest)
			sh.guest = nil
		}
		for _, v := range slices.Sorted(func(yield func(string) bool) {
			for v := range sh.volumes {
				if !yield(v) {
					return
				}
			}
		}) {
			s.removeVolume(sh, v)
			vols++
		}
		var dels []string
		for k := range sh.direct {
			dels = append(dels, k)
		}
		clear(sh.direct)
		s.apply(nil, dels)
		direct += len(dels)
	}
	return fmt.Sprintf("drain: %d DELs, %d volumes removed, %d direct intents deleted", n, vols, direct)
}

package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	plugin "github.com/docker/go-plugins-helpers/volume"

	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/integration/spdksim"
	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/volume"
)

// soakStepLimit bounds one step of the soak: a step that takes longer has
// hung, and the soak dies with every goroutine's stack.
const soakStepLimit = 5 * time.Minute

// soakHost is one host of the soak with everything the soak does to it
// and the state it expects there.
type soakHost struct {
	h    *harness.Host
	link *etcdLink // nil: the agent reaches etcd directly
	// nets are the CNI networks of the host: different bridge domains
	// and subnets (one VPP cannot hold two interfaces in one subnet).
	nets []*cniHost
	vols *volume.Driver
	// app is a container with its own container agent; its interfaces
	// come and go through CNI like every other attachment.
	app      *harness.Container
	appID    string
	appNetns string

	// The model: what must exist, and nothing else.
	atts    map[[2]string]soakAtt // by {container, ifname}
	direct  map[string]*schema.HostInterface
	volumes map[string]string // name -> mount ID
}

type soakAtt struct {
	netns string
	net   int
}

type soak struct {
	t     *testing.T
	e     *harness.Etcd
	rng   *rand.Rand
	hosts []*soakHost
	seq   int
	stats map[string]int
}

// TestSoak loops random CNI ADD/DEL (single and in bursts), direct intent
// changes, volume create+mount and unmount+remove, and faults (agents
// killed mid-reconcile, a host partitioned while its intents change, etcd
// members and the leader stopped, compaction, VPP and SPDK restarted
// empty, a container agent killed) over 3 hosts for USPACE_SOAK_DURATION,
// and after every step checks every invariant: etcd holds exactly the
// modelled intents, every agent applied them at their latest revision, and
// every VPP and SPDK holds exactly those objects. USPACE_SOAK_SEED repeats
// a sequence.
func TestSoak(t *testing.T) {
	durEnv := os.Getenv("USPACE_SOAK_DURATION")
	if durEnv == "" {
		t.Skip("soak mode: set USPACE_SOAK_DURATION (make soak DURATION=10m)")
	}
	dur, err := time.ParseDuration(durEnv)
	if err != nil {
		t.Fatalf("USPACE_SOAK_DURATION=%q: %v", durEnv, err)
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("USPACE_SOAK_SEED"); v != "" {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("USPACE_SOAK_SEED=%q: %v", v, err)
		}
	}
	t.Logf("soak: %v with seed %d (USPACE_SOAK_SEED=%d repeats it)", dur, seed, seed)

	e := startCluster(t)
	s := &soak{t: t, e: e, rng: rand.New(rand.NewPCG(seed, seed>>1|1)), stats: map[string]int{}}
	ctx, cancel := context.WithCancel(bg())
	defer cancel()
	for i, name := range []string{"node1", "node2", "node3"} {
		sh := &soakHost{atts: map[[2]string]soakAtt{}, direct: map[string]*schema.HostInterface{}, volumes: map[string]string{}}
		if name == "node2" {
			sh.h, sh.link = startLinkedHost(t, e, name)
		} else {
			sh.h = e.StartHost(t, name)
		}
		// The plugin and the driver reach etcd directly: a partition
		// cuts the agent only.
		sh.nets = []*cniHost{
			newCNIHost(t, sh.h, i+1, e.Endpoints),
			newCNINetwork(t, sh.h, "memif-net-b", 6, fmt.Sprintf("10.57.%d", i+1), e.Endpoints),
		}
		if err := volume.PrepareRoot(sh.h.VolumeRoot); err != nil {
			t.Fatal(err)
		}
		sh.vols, err = volume.New(ctx, e.Store, volume.Config{Host: name, Root: sh.h.VolumeRoot,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		sh.appID = "app-" + name
		sh.appNetns = newNS(t).Path()
		sh.app = e.StartContainer(t, name, sh.h.SharedDir, []string{"--container-id", sh.appID})
		s.hosts = append(s.hosts, sh)
	}

	start := time.Now()
	deadline := start.Add(dur)
	for step := 1; time.Now().Before(deadline); step++ {
		watchdog := time.AfterFunc(soakStepLimit, func() {
			panic(fmt.Sprintf("soak: step %d hung for %v (seed %d)", step, soakStepLimit, seed))
		})
		what := s.step()
		s.check()
		watchdog.Stop()
		t.Logf("soak: step %d (%v): %s", step, time.Since(start).Round(time.Second), what)
		if t.Failed() {
			t.Fatalf("soak: invariants broken after step %d (seed %d)", step, seed)
		}
	}
	var kinds []string
	for k, n := range s.stats {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	t.Logf("soak: done after %v: %s", time.Since(start).Round(time.Second), strings.Join(kinds, " "))
}

func (s *soak) host() *soakHost { return s.hosts[s.rng.IntN(len(s.hosts))] }

func (s *soak) next(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%d", prefix, s.seq)
}

// soakMaxAttachments and soakMaxVolumes keep the model from growing
// without bound: above them ADD turns into DEL, create into remove.
const (
	soakMaxAttachments = 40
	soakMaxVolumes     = 12
)

// step does one random thing and says what.
func (s *soak) step() string {
	atts, vols := 0, 0
	for _, sh := range s.hosts {
		atts += len(sh.atts)
		vols += len(sh.volumes)
	}
	switch r := s.rng.IntN(100); {
	case r < 30 && atts >= soakMaxAttachments:
		return s.del()
	case r < 20:
		return s.add(s.host())
	case r < 30:
		return s.burst()
	case r < 48:
		return s.del()
	case r < 58:
		return s.directChange(s.host())
	case r < 68 && vols >= soakMaxVolumes:
		return s.volumeRemove()
	case r < 68:
		return s.volumeCreate(s.host())
	case r < 76:
		return s.volumeRemove()
	default:
		return s.fault()
	}
}

// add attaches a new container to a random network, or the host's app
// container to a network it is not on yet.
func (s *soak) add(sh *soakHost) string {
	s.t.Helper()
	id, ifname, a := s.next("ctr-"), "net1", soakAtt{net: s.rng.IntN(len(sh.nets))}
	if s.rng.IntN(3) == 0 {
		for n := range sh.nets {
			k := [2]string{sh.appID, fmt.Sprintf("net%d", n+1)}
			if _, ok := sh.atts[k]; !ok {
				id, ifname, a = k[0], k[1], soakAtt{netns: sh.appNetns, net: n}
				break
			}
		}
	}
	if a.netns == "" {
		a.netns = newNS(s.t).Path()
	}
	if _, err := sh.nets[a.net].addIf(bg(), id, a.netns, ifname); err != nil {
		s.t.Fatal(err)
	}
	sh.atts[[2]string{id, ifname}] = a
	s.stats["add"]++
	return fmt.Sprintf("ADD %s/%s on %s, network %s", id, ifname, sh.h.Name, sh.nets[a.net].network)
}

// burst runs several ADDs on random hosts concurrently.
func (s *soak) burst() string {
	type one struct {
		sh *soakHost
		id string
		a  soakAtt
	}
	var ones []one
	for range 2 + s.rng.IntN(5) {
		sh := s.host()
		ones = append(ones, one{sh, s.next("burst-"), soakAtt{newNS(s.t).Path(), s.rng.IntN(len(sh.nets))}})
	}
	for i, err := range parallel(len(ones), func(i int) error {
		_, err := ones[i].sh.nets[ones[i].a.net].add(bg(), ones[i].id, ones[i].a.netns)
		return err
	}) {
		if err != nil {
			s.t.Fatal(err)
		}
		ones[i].sh.atts[[2]string{ones[i].id, "net1"}] = ones[i].a
	}
	s.stats["burst"]++
	return fmt.Sprintf("%d concurrent ADDs", len(ones))
}

// del detaches a random attachment.
func (s *soak) del() string {
	var all [][3]string
	for i, sh := range s.hosts {
		for k := range sh.atts {
			all = append(all, [3]string{strconv.Itoa(i), k[0], k[1]})
		}
	}
	if len(all) == 0 {
		return s.add(s.host())
	}
	slices.SortFunc(all, func(a, b [3]string) int { return strings.Compare(strings.Join(a[:], "/"), strings.Join(b[:], "/")) })
	pick := all[s.rng.IntN(len(all))]
	i, _ := strconv.Atoi(pick[0])
	sh := s.hosts[i]
	k := [2]string{pick[1], pick[2]}
	if err := sh.nets[sh.atts[k].net].delIf(bg(), k[0], sh.atts[k].netns, k[1]); err != nil {
		s.t.Fatal(err)
	}
	delete(sh.atts, k)
	s.stats["del"]++
	return fmt.Sprintf("DEL %s/%s on %s", k[0], k[1], sh.h.Name)
}

// directChange adds or removes host interface intents written directly.
func (s *soak) directChange(sh *soakHost) string {
	objs, dels := s.directEdits(sh)
	if len(objs) > 0 {
		s.e.Put(s.t, objs)
	}
	if len(dels) > 0 {
		s.e.Delete(s.t, dels...)
	}
	s.stats["direct"]++
	return fmt.Sprintf("direct intents on %s: %d put, %d deleted", sh.h.Name, len(objs), len(dels))
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
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range sh.direct {
			if _, fresh := objs[k]; !fresh && !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
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
	name := s.next("sv")
	typ := []string{"blk", "scsi"}[s.rng.IntN(2)]
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
	s.stats["volume+"]++
	return fmt.Sprintf("volume %s (%s) created and mounted on %s", name, typ, sh.h.Name)
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
	sh, name := s.hosts[i], pick[1]
	if err := sh.vols.Unmount(&plugin.UnmountRequest{Name: name, ID: sh.volumes[name]}); err != nil {
		s.t.Fatalf("volume unmount %s on %s: %v", name, sh.h.Name, err)
	}
	if err := sh.vols.Remove(&plugin.RemoveRequest{Name: name}); err != nil {
		s.t.Fatalf("volume remove %s on %s: %v", name, sh.h.Name, err)
	}
	delete(sh.volumes, name)
	s.stats["volume-"]++
	return fmt.Sprintf("volume %s unmounted and removed on %s", name, sh.h.Name)
}

// fault injects one fault and recovers from it.
func (s *soak) fault() string {
	t := s.t
	sh := s.host()
	switch s.rng.IntN(8) {
	case 0: // host agent killed mid-reconcile
		if err := sh.h.VPP.SetLatency("", 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		objs, dels := s.directEdits(sh)
		if len(objs) > 0 {
			s.e.Put(t, objs)
		}
		if len(dels) > 0 {
			s.e.Delete(t, dels...)
		}
		sh.h.Agent.Kill()
		sh.h.VPP.ClearFaults()
		sh.h.RestartAgent(t)
		s.stats["kill-host-agent"]++
		return "host agent of " + sh.h.Name + " killed mid-reconcile and restarted"
	case 1: // partition while intents change
		sh = s.hosts[1]
		sh.link.Cut()
		objs, dels := s.directEdits(sh)
		if len(objs) > 0 {
			s.e.Put(t, objs)
		}
		if len(dels) > 0 {
			s.e.Delete(t, dels...)
		}
		sh.link.Heal()
		s.stats["partition"]++
		return fmt.Sprintf("%s partitioned while %d intents changed, healed", sh.h.Name, len(objs)+len(dels))
	case 2: // a member stopped during an ADD
		i := s.rng.IntN(len(s.e.Cluster.Members))
		m := s.e.Cluster.Members[i]
		m.Stop(t)
		what := s.add(sh)
		if err := m.Restart(t); err != nil {
			t.Fatal(err)
		}
		s.e.Cluster.WaitLeader(t)
		s.stats["member-stop"]++
		return fmt.Sprintf("member %d stopped during %s, restarted", i, what)
	case 3: // the leader stopped
		lead := s.e.Cluster.WaitLeader(t)
		m := s.e.Cluster.Members[lead]
		m.Stop(t)
		s.e.Cluster.WaitLeader(t)
		if err := m.Restart(t); err != nil {
			t.Fatal(err)
		}
		s.e.Cluster.WaitLeader(t)
		s.stats["leader-stop"]++
		return fmt.Sprintf("leader %d stopped and restarted", lead)
	case 4: // compaction
		resp, err := s.e.Store.Etcd().Get(bg(), "compaction-probe")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.e.Store.Etcd().Compact(bg(), resp.Header.Revision); err != nil {
			t.Fatal(err)
		}
		s.stats["compact"]++
		return fmt.Sprintf("compacted at revision %d", resp.Header.Revision)
	case 5: // VPP restarted empty
		if err := sh.h.VPP.Restart(); err != nil {
			t.Fatal(err)
		}
		settled(t, s.e, sh.h)
		s.stats["vpp-restart"]++
		return "VPP of " + sh.h.Name + " restarted empty"
	case 6: // SPDK restarted empty
		if err := sh.h.SPDK.Restart(spdksim.RestartOptions{Downtime: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		settled(t, s.e, sh.h)
		s.stats["spdk-restart"]++
		return "SPDK of " + sh.h.Name + " restarted empty"
	default: // container agent killed
		sh.app.Agent.Kill()
		if err := sh.app.Agent.Start(); err != nil {
			t.Fatal(err)
		}
		s.stats["kill-container-agent"]++
		return "container agent of " + sh.appID + " killed and restarted"
	}
}

// check asserts every invariant: etcd holds exactly the modelled intents of
// each host, each host agent and app container agent converged to them,
// and IPAM holds one address per attachment.
func (s *soak) check() {
	t := s.t
	for _, sh := range s.hosts {
		h := sh.h
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
		var gotIfs, gotCtr, gotMeta, gotVols []string
		for _, kv := range list(t, s.e, schema.HostPrefix(h.Name)) {
			k, err := schema.ParseKey(kv.Key)
			if err != nil {
				t.Errorf("%s: key outside the layout: %s", h.Name, kv.Key)
				continue
			}
			switch k.Kind {
			case schema.KindInterfaceKey:
				gotIfs = append(gotIfs, kv.Key)
			case schema.KindContainerInterfaceKey:
				gotCtr = append(gotCtr, kv.Key)
			case schema.KindContainerMetaKey:
				gotMeta = append(gotMeta, kv.Key)
			case schema.KindVolumeKey:
				gotVols = append(gotVols, kv.Key)
			}
		}
		for _, c := range []struct {
			what      string
			got, want []string
		}{{"interface intents", gotIfs, wantIfs}, {"container interface intents", gotCtr, wantCtr},
			{"container metas", gotMeta, wantMeta}, {"volume intents", gotVols, wantVols}} {
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
		converged(t, s.e, h)
		convergedContainer(t, s.e, sh.app, sh.appID)
	}
}

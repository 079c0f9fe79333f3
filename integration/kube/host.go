package kube

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// hostState is every change the node makes to the machine outside its
// directory, saved in <dir>/host.json before it is made, so that a run
// that died (a killed test binary leaves containerd's shims, the pods and
// their mounts behind) is undone by the next one before it starts.
type hostState struct {
	// Sysctls are the values before the node of the tunables kubelet and
	// the CNI plugins set.
	Sysctls map[string]string `json:"sysctls"`
	// Absent are host paths that did not exist before the node: what the
	// manifests' hostPath volumes, the CNI plugins and kubelet create
	// there is removed with them.
	Absent []string `json:"absent"`
	// Links are the network links the node makes (its bridges).
	Links []string `json:"links"`
	// Cgroup is the node's cgroup (kubelet's cgroupRoot), in every
	// hierarchy: its pods' processes live under it.
	Cgroup string `json:"cgroup"`
	// CNIResults tells whether /var/lib/cni/results existed before: then
	// only the node's sandboxes' entries are removed from it.
	CNIResults bool `json:"cniResults"`
	// Netns are the cni-* network namespaces in /var/run/netns before the
	// node; every other one there afterwards is its containerd's.
	Netns []string `json:"netns"`
	// NetnsMount tells whether the node made /var/run/netns a mount point.
	NetnsMount bool `json:"netnsMount"`
}

// netnsDir is containerd's (and CRI-O's) directory of the pods' network
// namespaces, where deployments/kubernetes/ looks for them.
const netnsDir = "/var/run/netns"

// tunables are the sysctls kubelet changes (kernel panics on oops and
// 10 s after a panic, overcommit, key quotas) and the bridge plugin's
// forwarding switch.
var tunables = []string{
	"kernel.panic", "kernel.panic_on_oops", "vm.overcommit_memory", "vm.panic_on_oom",
	"kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes", "net.ipv4.ip_forward",
}

// hostPaths are the machine's paths the node may create: the hostPath
// volumes of deployments/kubernetes/ (the CNI bin dir, /etc/uspace, VPP's
// socket directory and the shared socket directory under it, Kata's
// vhost-user root, the pods' network namespaces), libcni's result cache
// and host-local's default data directory (/var/lib/cni), and kubelet's
// container log links.
var hostPaths = []string{
	"/opt/cni/bin", "/etc/uspace", "/run/vpp/cni/shared", "/var/run/kata-containers/vhost-user/block", "/run/netns",
	"/var/lib/cni", "/var/log/containers", "/var/lib/kubelet",
}

const cniResultsDir = "/var/lib/cni/results"

func sysctlPath(name string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
}

// recordHost notes the machine's state before the node touches it.
func recordHost(links []string, cgroup string) (*hostState, error) {
	st := &hostState{Sysctls: map[string]string{}, Links: links, Cgroup: cgroup}
	for _, s := range tunables {
		b, err := os.ReadFile(sysctlPath(s))
		if err != nil {
			return nil, fmt.Errorf("read sysctl %s: %w", s, err)
		}
		st.Sysctls[s] = strings.TrimSpace(string(b))
	}
	for _, p := range hostPaths {
		// The outermost missing ancestor goes, with everything under it.
		var top string
		for d := p; d != "/"; d = filepath.Dir(d) {
			if _, err := os.Lstat(d); errors.Is(err, fs.ErrNotExist) {
				top = d
			}
		}
		if top != "" && !slices.Contains(st.Absent, top) {
			st.Absent = append(st.Absent, top)
		}
	}
	_, err := os.Stat(cniResultsDir)
	st.CNIResults = err == nil
	st.Netns, _ = filepath.Glob(filepath.Join(netnsDir, "cni-*"))
	mounted, err := isMountPoint(netnsDir)
	if err != nil {
		return nil, err
	}
	st.NetnsMount = !mounted
	return st, nil
}

// sharedNetnsDir makes /var/run/netns a shared mount, as `ip netns add`
// does (a mount point of its own first, where it is not): the host
// agent's pod binds it HostToContainer, and a private mount would keep
// the pods' namespaces made after that out of its view.
func sharedNetnsDir() error {
	mounted, err := isMountPoint(netnsDir)
	if err != nil {
		return err
	}
	if !mounted {
		if err := os.MkdirAll(netnsDir, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(netnsDir, netnsDir, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s onto itself: %w", netnsDir, err)
		}
	}
	if err := syscall.Mount("", netnsDir, "", syscall.MS_SHARED|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s a shared mount: %w", netnsDir, err)
	}
	return nil
}

// undoNetns removes the network namespaces the node's containerd left in
// /var/run/netns (a run that died), and the mount point the node made
// there when nothing else is left in it.
func undoNetns(st *hostState) error {
	var errs []error
	now, _ := filepath.Glob(filepath.Join(netnsDir, "cni-*"))
	for _, p := range now {
		if slices.Contains(st.Netns, p) {
			continue
		}
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if ents, err := os.ReadDir(netnsDir); st.NetnsMount && err == nil && len(ents) == 0 {
		if err := syscall.Unmount(netnsDir, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", netnsDir, err))
		}
	}
	return errors.Join(errs...)
}

func (st *hostState) save(dir string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "host.json"), b, 0o644)
}

func loadHostState(dir string) (*hostState, error) {
	b, err := os.ReadFile(filepath.Join(dir, "host.json"))
	if err != nil {
		return nil, err
	}
	var st hostState
	return &st, json.Unmarshal(b, &st)
}

// undoHost removes what the node left on the machine once its daemons are
// gone: pods' processes, shims, mounts, cgroups, links, paths, sysctls.
// It goes on after a failure and returns every error.
func undoHost(dir string, st *hostState) error {
	var errs []error
	sandboxes := sandboxIDs(dir)
	shims := shimPids(dir)
	if st.Cgroup != "" {
		errs = append(errs, killCgroup(st.Cgroup))
	}
	for _, p := range shims {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	errs = append(errs, unmountUnder(dir), undoNetns(st))
	if st.Cgroup != "" {
		errs = append(errs, removeCgroup(st.Cgroup))
	}
	for _, l := range st.Links {
		if err := exec.Command("ip", "link", "show", l).Run(); err == nil {
			if out, err := exec.Command("ip", "link", "del", l).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("delete link %s: %w: %s", l, err, out))
			}
		}
	}
	if st.CNIResults {
		for _, id := range sandboxes {
			m, _ := filepath.Glob(filepath.Join(cniResultsDir, "*-"+id+"-*"))
			for _, f := range m {
				errs = append(errs, os.Remove(f))
			}
		}
	}
	for _, p := range st.Absent {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("remove %s, made by the node: %w", p, err))
		}
	}
	for s, v := range st.Sysctls {
		if err := os.WriteFile(sysctlPath(s), []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", s, v, err))
		}
	}
	return errors.Join(errs...)
}

// sandboxIDs are the pod sandboxes containerd's CRI plugin knows in dir.
func sandboxIDs(dir string) []string {
	ents, _ := os.ReadDir(filepath.Join(dir, "var", "containerd", "io.containerd.grpc.v1.cri", "sandboxes"))
	var ids []string
	for _, e := range ents {
		ids = append(ids, e.Name())
	}
	return ids
}

// shimPids are the containerd shims of the node's containers: the parents
// of the init processes recorded in its state directory (containerd 1.6
// writes no pid file of the shim itself), checked by name.
func shimPids(dir string) []int {
	m, _ := filepath.Glob(filepath.Join(dir, "run", "containerd", "io.containerd.runtime.v2.task", "*", "*", "init.pid"))
	var pids []int
	for _, f := range m {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		ppid := parentPid(strings.TrimSpace(string(b)))
		if ppid <= 1 || slices.Contains(pids, ppid) {
			continue
		}
		if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ppid)); strings.Contains(string(cmd), "containerd-shim") {
			pids = append(pids, ppid)
		}
	}
	return pids
}

func parentPid(pid string) int {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...: comm may hold spaces, so after the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

// cgroupRoots are the mounted cgroup v1 hierarchies.
func cgroupRoots() []string {
	m, _ := filepath.Glob("/sys/fs/cgroup/*")
	var roots []string
	for _, r := range m {
		if fi, err := os.Lstat(r); err == nil && fi.IsDir() {
			roots = append(roots, r)
		}
	}
	return roots
}

// makeCgroup makes the node's cgroup in every hierarchy, with cpuset's
// CPUs and memory nodes (empty in a new cgroup v1) from the root, and a CPU
// weight of shares. Kubelet's QoS and pod cgroups go under it (its
// cgroupRoot), weighted by their CPU requests among themselves only: the
// pods get the node's weight whatever else the machine runs, as on a node
// of their own. Under kubelet's default root, a 100m pod weighs a tenth of
// any process of the machine, and on a loaded shared test machine VPP pods
// were starved for a minute at start and missed their agents' liveness
// pings.
func makeCgroup(name string, shares int) error {
	for _, root := range cgroupRoots() {
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("make cgroup %s: %w", dir, err)
		}
		var settings [][2]string
		switch filepath.Base(root) {
		case "cpuset":
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join(root, f))
				if err != nil {
					return err
				}
				settings = append(settings, [2]string{f, strings.TrimSpace(string(b))})
			}
		case "cpu":
			settings = append(settings, [2]string{"cpu.shares", strconv.Itoa(shares)})
		}
		for _, kv := range settings {
			if err := os.WriteFile(filepath.Join(dir, kv[0]), []byte(kv[1]), 0o644); err != nil {
				return fmt.Errorf("set %s of cgroup %s: %w", kv[0], dir, err)
			}
		}
	}
	return nil
}

// killCgroup kills every process in the named cgroup (the node's pods'
// tree), in every hierarchy, until none is left.
func killCgroup(name string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var left []int
		for _, root := range cgroupRoots() {
			_ = filepath.WalkDir(filepath.Join(root, name), func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.IsDir() {
					return nil
				}
				f, err := os.Open(filepath.Join(p, "cgroup.procs"))
				if err != nil {
					return nil
				}
				defer f.Close()
				sc := bufio.NewScanner(f)
				for sc.Scan() {
					if pid, err := strconv.Atoi(sc.Text()); err == nil && !slices.Contains(left, pid) {
						left = append(left, pid)
					}
				}
				return nil
			})
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v stay in cgroup %s after SIGKILL", left, name)
		}
		for _, p := range left {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// removeCgroup removes the named cgroup tree, deepest first, in every
// hierarchy (rmdir, the only way to remove a cgroup).
func removeCgroup(name string) error {
	var errs []error
	for _, root := range cgroupRoots() {
		top := filepath.Join(root, name)
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// mountPoints are the mount points of this mount namespace.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		// Octal escapes (\040 for a space) as the kernel writes them.
		p, err := strconv.Unquote(`"` + strings.ReplaceAll(fields[4], `"`, `\"`) + `"`)
		if err != nil {
			p = fields[4]
		}
		points = append(points, p)
	}
	return points, sc.Err()
}

// isMountPoint tells whether dir (symbolic links resolved: /var/run is
// /run) is a mount point.
func isMountPoint(dir string) (bool, error) {
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	points, err := mountPoints()
	return slices.Contains(points, real), err
}

// unmountUnder detaches every mount point under dir, deepest first.
func unmountUnder(dir string) error {
	all, err := mountPoints()
	if err != nil {
		return err
	}
	var points []string
	for _, p := range all {
		if strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uspace-io/uspace/integration/binaries"
	"github.com/uspace-io/uspace/integration/harness"
	"github.com/uspace-io/uspace/store"
)

// The tests below run the real uspace-agent and uspace-etcd binaries
// (integration/binaries: make's bin/, or built once here).

// agentBinary is the agent to run and the environment that lets it find
// uspace-etcd: beside it as make builds them, else on $PATH.
func agentBinary(t *testing.T) (string, []string) {
	agent, etcd := binaries.Path(t, "uspace-agent"), binaries.Path(t, etcdBinary)
	if filepath.Dir(agent) == filepath.Dir(etcd) {
		return agent, nil
	}
	return agent, []string{"PATH=" + filepath.Dir(etcd) + ":" + os.Getenv("PATH")}
}

// startAgent runs `uspace-agent host --embedded-etcd` on free loopback
// ports, without VPP or SPDK (the agent waits for them), and returns it
// with its etcd's client URL.
func startAgent(t *testing.T, agent, client string, env []string) *harness.Proc {
	t.Helper()
	dir := harness.ShortTempDir(t)
	return harness.StartProc(t, "uspace-agent host --embedded-etcd", agent, []string{"host", "--host", "h1",
		"--embedded-etcd", filepath.Join(dir, "etcd"), "--etcd-endpoints", client,
		"--embedded-etcd-peer-url", "http://" + harness.FreeAddr(t),
		"--vpp-socket", filepath.Join(dir, "vpp.sock"), "--spdk-socket", filepath.Join(dir, "spdk.sock"),
		"--state-dir", filepath.Join(dir, "state"), "--shared-dir", filepath.Join(dir, "shared"),
		"--volume-root", filepath.Join(dir, "vhost"), "--metrics-addr", "", "--container-endpoints=false",
	}, env...)
}

// startServing starts the agent and waits until it says its etcd serves and
// it registered there, returning it, its etcd's client URL and the etcd child's pid.
func startServing(t *testing.T) (*harness.Proc, string, int) {
	t.Helper()
	agent, env := agentBinary(t)
	client := "http://" + harness.FreeAddr(t)
	p := startAgent(t, agent, client, env)
	waitOutput(t, p, "embedded etcd serving", 30*time.Second)
	// Stopped while it connects, an agent exits non-zero.
	waitOutput(t, p, "registered under a new lease", 30*time.Second)
	pid := childNamed(t, p.Pid(), etcdBinary)
	return p, client, pid
}

func waitOutput(t *testing.T, p *harness.Proc, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.Output(), s) {
		if time.Now().After(deadline) || !p.Running() && !strings.Contains(p.Output(), s) {
			t.Fatalf("%s: no %q within %v:\n%s", p.Name, s, within, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procStat is the command name, state and parent of pid from
// /proc/<pid>/stat; ok is false once the process is gone.
func procStat(pid int) (comm string, state byte, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, 0, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	f := strings.Fields(s[end+1:])
	ppid, _ = strconv.Atoi(f[1])
	return s[open+1 : end], f[0][0], ppid, true
}

// childNamed is the pid of parent's child called name.
func childNamed(t *testing.T, parent int, name string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, _, ppid, ok := procStat(pid); ok && ppid == parent && comm == name {
			return pid
		}
	}
	t.Fatalf("process %d has no child %s", parent, name)
	return 0
}

func TestEmbeddedEtcdServesFromItsOwnProcess(t *testing.T) {
	p, client, pid := startServing(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := store.Connect(ctx, store.Config{Endpoints: []string{client}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rev, err := c.Apply(ctx, store.Op{Key: "/uspace/v1/networks/n1", Value: []byte(`{"mtu":1500}`), Guard: store.CreateOnly()})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := c.Get(ctx, "/uspace/v1/networks/n1")
	if err != nil || kv == nil || string(kv.Value) != `{"mtu":1500}` || kv.ModRevision != rev {
		t.Fatalf("get through the embedded etcd: %+v, %v; want the value written at %d", kv, err, rev)
	}
	if !strings.Contains(p.Output(), "pid="+strconv.Itoa(pid)) {
		t.Fatalf("the agent does not name its etcd's pid %d:\n%s", pid, p.Output())
	}
}

// Stopped as a daemon is, the agent stops its etcd and reaps it before it
// exits: nothing is left, not even a zombie.
func TestEmbeddedEtcdStopsWithTheAgent(t *testing.T) {
	p, _, pid := startServing(t)
	if err := p.Stop(15 * time.Second); err != nil {
		t.Fatalf("agent stopped with SIGTERM: %v\n%s", err, p.Output())
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !os.IsNotExist(err) {
		comm, state, ppid, _ := procStat(pid)
		t.Fatalf("after the agent's exit its etcd (pid %d) is still there: %s, state %c, parent %d", pid, comm, state, ppid)
	}
	if !strings.Contains(p.Output(), "stopping etcd") {
		t.Fatalf("etcd was not stopped gracefully:\n%s", p.Output())
	}
}

// An agent killed outright cannot stop its etcd: the etcd sees its
// lifeline close and stops by itself, gracefully (exit status 0).
func TestEmbeddedEtcdStopsWhenTheAgentIsKilled(t *testing.T) {
	// The orphaned etcd comes to this process, which can then reap it and
	// see how it ended.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	p, _, pid := startServing(t)
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var ws unix.WaitStatus
	for {
		// The agent is not ours to reap (its Proc does), its etcd is.
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			break
		} else if err != nil && !errors.Is(err, unix.ECHILD) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("etcd (pid %d) still runs 5 s after its agent was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("etcd ended with %v, want exit status 0", ws)
	}
	waitOutput(t, p, "lifeline closed", 5*time.Second)
}

// The agent without its store stops, non-zero, saying why.
func TestAgentExitsWhenEmbeddedEtcdDies(t *testing.T) {
	p, _, pid := startServing(t)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	out := harness.ExitedNonZero(t, p, 20*time.Second)
	if !strings.Contains(out, "uspace-agent: embedded etcd exited") || !strings.Contains(out, "signal: killed") {
		t.Fatalf("the agent's error does not name its etcd's exit:\n%s", out)
	}
}

// Without uspace-etcd the agent says where it looked, before starting
// anything.
func TestEmbeddedEtcdBinaryMissing(t *testing.T) {
	agent, _ := agentBinary(t)
	alone := filepath.Join(t.TempDir(), "uspace-agent")
	copyFile(t, agent, alone)
	client := harness.FreeAddr(t)
	p := startAgent(t, alone, "http://"+client, []string{"PATH=" + t.TempDir()})
	out := harness.ExitedNonZero(t, p, 20*time.Second)
	want := "no " + filepath.Join(filepath.Dir(alone), etcdBinary)
	if !strings.Contains(out, etcdBinary) || !strings.Contains(out, filepath.Join(filepath.Dir(alone), etcdBinary)) || !strings.Contains(out, "$PATH") {
		t.Fatalf("want an error naming %s and $PATH:\n%s", want, out)
	}
	if c, err := net.Dial("tcp", client); err == nil {
		c.Close()
		t.Fatalf("something serves %s", client)
	}
}

// etcd failing to start (here: its port taken) fails the agent with
// etcd's own reason.
func TestEmbeddedEtcdFailsToStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	agent, env := agentBinary(t)
	p := startAgent(t, agent, "http://"+ln.Addr().String(), env)
	out := harness.ExitedNonZero(t, p, 30*time.Second)
	if !strings.Contains(out, "address already in use") || !strings.Contains(out, "exited before it was ready") {
		t.Fatalf("want etcd's reason and the agent's:\n%s", out)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// Package endpoint serves each container on the host its own etcd
// endpoint: a listening abstract unix socket (Name) opened inside the
// container's network namespace, which only processes in that namespace
// can reach, so reaching it is the container's attestation and no
// credential is needed. It speaks etcd's v3 gRPC API (KV, Watch,
// MemberList), narrowed to the container's intents and statuses: reads of
// hosts/<h>/containers/<id>/ and status/hosts/<h>/containers/<id>/,
// writes of the latter, everything else refused as etcd refuses a role
// (PermissionDenied). Reads and writes go on to etcd as the host agent;
// watches are served from the host agent's own watch of its host (the
// hub), so etcd carries one watch per host however many containers run.
package endpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/uspace-io/uspace/schema"
	"github.com/uspace-io/uspace/store"
)

// Name is the abstract unix socket every container's endpoint listens
// on, in the container's network namespace.
const Name = "@uspace-etcd"

// URL is Name as an etcd client endpoint: client/v3 dials a Linux
// abstract socket written so.
const URL = "unix://" + Name

// Set is the host agent's endpoints, one per container meta with a
// network namespace. Its Reconcile opens and closes them; Observe feeds
// their watches.
type Set struct {
	host    string
	hub     *hub
	kv      pb.KVClient
	cluster pb.ClusterClient
	log     *slog.Logger
	// hdr is the last response header etcd sent through the set: its
	// cluster and member IDs and raft term go into the watch responses.
	hdr atomic.Pointer[pb.ResponseHeader]

	// own is the host agent's own network namespace: a meta naming it
	// gets no endpoint, or every process of the host would reach that
	// container's view.
	own nsID

	mu     sync.Mutex
	open   map[string]*endpoint // by container
	closed bool
}

// New makes the endpoints of host's containers; they reach etcd through
// cli, as its user.
func New(host string, cli *clientv3.Client, log *slog.Logger) *Set {
	conn := cli.ActiveConnection()
	// Read before any thread of the agent enters a container's namespace.
	own, _ := netnsOf("/proc/thread-self/ns/net")
	return &Set{host: host, hub: newHub(schema.ContainersPrefix(host), HistoryLimit),
		kv: pb.NewKVClient(conn), cluster: pb.NewClusterClient(conn), own: own,
		log: log.With("component", "container-endpoints"), open: map[string]*endpoint{}}
}

// nsID names a namespace as the kernel does: the device and inode of its
// nsfs file, whatever path reaches it.
type nsID struct{ dev, ino uint64 }

func netnsOf(path string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, fmt.Errorf("stat network namespace %s: %w", path, err)
	}
	return nsID{dev: st.Dev, ino: st.Ino}, nil
}

// Observe takes every event of the host agent's list-watch of its host
// prefix, in order.
func (s *Set) Observe(ev store.Event) { s.hub.observe(ev) }

// Len is how many endpoints are open.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// Reconcile opens the endpoint of the container whose meta key is key in
// the network namespace its meta records, re-opens it when that changed,
// and closes it when the meta is gone (a listening socket keeps its
// namespace alive). Other keys are ignored.
func (s *Set) Reconcile(_ context.Context, key string, desired *store.KV) error {
	k, err := schema.ParseKey(key)
	if err != nil || k.Kind != schema.KindContainerMetaKey {
		return nil
	}
	netns := ""
	if desired != nil {
		m, err := schema.DecodeAt[schema.ContainerMeta](k, desired.Value)
		if err != nil {
			s.log.Warn("container meta refused; no endpoint", "key", key, "err", err)
		} else {
			netns = m.Netns
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ep := s.open[k.Container]; ep != nil {
		if ep.netns == netns {
			return nil
		}
		delete(s.open, k.Container)
		if netns == "" {
			// The DEL that removed the meta removed the container's
			// interfaces with it: its agent hears of that before the
			// endpoint goes, so it can take them out of its VPP.
			ep.drainAndStop()
		} else {
			ep.srv.Stop()
		}
		s.log.Info("endpoint closed", "container", k.Container, "netns", ep.netns)
	}
	if netns == "" || s.closed {
		return nil
	}
	if id, err := netnsOf(netns); err == nil && id == s.own {
		s.log.Warn("container meta names the host agent's own network namespace; no endpoint", "container", k.Container, "netns", netns)
		return nil
	}
	ln, err := listenIn(netns)
	var gone ns.NSPathNotExistErr
	var notNS ns.NSPathNotNSErr
	if errors.As(err, &gone) || errors.As(err, &notNS) {
		// The container is gone and its DEL not yet made: nothing to
		// serve, and the namespace will not come back under this path.
		s.log.Info("no network namespace; no endpoint", "container", k.Container, "netns", netns, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("open the etcd endpoint of container %s: %w", k.Container, err)
	}
	ep := &endpoint{set: s, container: k.Container, view: newView(s.host, k.Container), hub: s.hub, netns: netns,
		refusedCalls:   newRefusals(s.log, k.Container, "endpoint calls refused: too many in progress", MaxRequests),
		refusedWatches: newRefusals(s.log, k.Container, "endpoint watches refused: too many open", MaxWatches)}
	ep.srv = ep.newServer()
	ln = &connLimit{Listener: ln, max: MaxConnections,
		refused: newRefusals(s.log, k.Container, "endpoint connections refused: too many open", MaxConnections)}
	pb.RegisterKVServer(ep.srv, ep)
	pb.RegisterWatchServer(ep.srv, ep)
	pb.RegisterClusterServer(ep.srv, ep)
	go func() { _ = ep.srv.Serve(ln) }()
	s.open[k.Container] = ep
	s.log.Info("endpoint open", "container", k.Container, "netns", netns, "socket", Name)
	return nil
}

// Close closes every endpoint; Reconcile opens none after.
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c, ep := range s.open {
		ep.srv.Stop()
		delete(s.open, c)
	}
}

// listenIn listens on Name inside the network namespace at netns: the
// socket is made by a thread in that namespace (WithNetNSPath locks it
// there and back) and stays there whatever thread accepts on it.
func listenIn(netns string) (net.Listener, error) {
	var ln net.Listener
	err := ns.WithNetNSPath(netns, func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("unix", Name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in network namespace %s: %w", Name, netns, err)
	}
	return ln, nil
}

// Bounds of one container's use of its endpoint, so that no container
// grows the host agent's memory without limit: an agent needs one
// connection, a watch stream and a call or two at a time, and a watch per
// prefix it follows.
const (
	// MaxConnections: connections open at once; one more is closed as it
	// is accepted.
	MaxConnections = 8
	// MaxRequests: calls in progress at once (a watch stream is one for
	// as long as it is open); one more is refused, ResourceExhausted.
	MaxRequests = 32
	// MaxWatches: watches open at once over all its streams; one more is
	// created cancelled with ErrTooManyWatches as its reason.
	MaxWatches = 64
	// DrainTimeout is how long an endpoint whose container is gone keeps
	// its open calls: its watch streams send the DEL's deletes meanwhile,
	// and their clients read them before the connections end.
	DrainTimeout = 2 * time.Second
)

// errTooManyRequests refuses a call over MaxRequests.
var errTooManyRequests = status.Errorf(codes.ResourceExhausted, "uspace endpoint: too many calls in progress on this container's endpoint (limit %d)", MaxRequests)

// ErrTooManyWatches is the cancel reason of a watch over MaxWatches.
var ErrTooManyWatches = fmt.Sprintf("uspace endpoint: too many watches open on this container's endpoint (limit %d)", MaxWatches)

// newServer is a gRPC server that refuses every service it does not
// serve (Lease, Auth, Maintenance) as etcd refuses a role, refuses calls
// over MaxRequests, and accepts the keep-alive pings etcd clients send
// (uspace's every 10 s; gRPC's own policy would end their connections for
// pinging more than every 5 min).
func (e *endpoint) newServer() *grpc.Server {
	return grpc.NewServer(
		grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error { return errDenied }),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if !e.acquire() {
				return nil, errTooManyRequests
			}
			defer e.requests.Add(-1)
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if !e.acquire() {
				return errTooManyRequests
			}
			defer e.requests.Add(-1)
			return h(srv, ss)
		}),
	)
}

// acquire counts a call in unless MaxRequests are in progress.
func (e *endpoint) acquire() bool {
	if e.requests.Add(1) > MaxRequests {
		e.requests.Add(-1)
		e.refusedCalls.note()
		return false
	}
	return true
}

// connLimit closes, as it accepts them, connections beyond max open at
// once: a gRPC server keeps every connection it accepts.
type connLimit struct {
	net.Listener
	max     int64
	open    atomic.Int64
	refused *refusals
}

func (l *connLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &countedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		c.Close()
		l.refused.note()
	}
}

type countedConn struct {
	net.Conn
	l    *connLimit
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// RefusalLogInterval is how often at most the host agent logs one
// container's refused connections, calls or watches: a container that
// keeps knocking at its bounds must not flood the host agent's log.
const RefusalLogInterval = 10 * time.Second

// refusals logs one container's refusals of one kind, the first at once
// and then at most one line per RefusalLogInterval, each with how many
// were refused since the line before.
type refusals struct {
	log   *slog.Logger
	msg   string
	every rate.Sometimes
	n     atomic.Int64
}

func newRefusals(log *slog.Logger, container, msg string, limit int) *refusals {
	return &refusals{log: log.With("container", container, "limit", limit), msg: msg, every: rate.Sometimes{Interval: RefusalLogInterval}}
}

func (r *refusals) note() {
	r.n.Add(1)
	r.every.Do(func() { r.log.Warn(r.msg, "refused", r.n.Swap(0)) })
}

// endpoint is one container's server.
type endpoint struct {
	set       *Set
	container string
	view      view
	hub       *hub
	netns     string
	srv       *grpc.Server
	// refusedCalls and refusedWatches log what the bounds refused.
	refusedCalls, refusedWatches *refusals
	requests                     atomic.Int64 // calls in progress
	watches                      atomic.Int64 // watches open over all streams
}

// drainAndStop stops accepting at once (nothing listens in the namespace
// any more) and the server after its calls end or DrainTimeout: a watch
// stream ended by the server as it sends loses what its client/v3 client
// had not handed on yet.
func (e *endpoint) drainAndStop() {
	go func() {
		done := make(chan struct{})
		go func() { e.srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(DrainTimeout):
			e.srv.Stop()
		}
	}()
}

func (e *endpoint) header(rev int64) *pb.ResponseHeader {
	h := &pb.ResponseHeader{Revision: rev}
	if last := e.set.hdr.Load(); last != nil {
		h.ClusterId, h.MemberId, h.RaftTerm = last.ClusterId, last.MemberId, last.RaftTerm
	}
	return h
}

func (e *endpoint) seen(h *pb.ResponseHeader) {
	if h != nil {
		e.set.hdr.Store(h)
	}
}

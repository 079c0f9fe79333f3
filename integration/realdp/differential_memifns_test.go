package realdp_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/memif"
)

// abstractName is an abstract socket name of this instance's own (both
// instances open theirs in one netns), written "<name>" in the answers.
func (a *vppAPI) abstractName(n string) string {
	sum := sha256.Sum256([]byte(a.dir))
	return "uspace-d" + hex.EncodeToString(sum[:4]) + n
}

// listening says whether a SOCK_SEQPACKET peer can connect to the abstract
// socket name in the network namespace at netns.
func listening(netns, name string) bool {
	ok := false
	_ = ns.WithNetNSPath(netns, func(ns.NetNS) error {
		c, err := net.Dial("unixpacket", "@"+name)
		if err == nil {
			ok = true
			c.Close()
		}
		return nil
	})
	return ok
}

// socketDump lists the registered socket filenames with id >= 30, the
// instance's abstract names written "<name>".
func socketDump(ctx context.Context, a *vppAPI) string {
	ds, err := drain(a.mem.MemifSocketFilenameDump(ctx, &memif.MemifSocketFilenameDump{}))
	if err != nil {
		return rv(err)
	}
	var out []string
	for _, d := range ds {
		if d.SocketID >= 30 && d.SocketID < 40 {
			out = append(out, fmt.Sprintf("%d %s", d.SocketID, d.SocketFilename))
		}
	}
	return strings.Join(out, "; ")
}

// memifNetnsSteps: memif sockets as abstract sockets in another network
// namespace (`abstract:<name>,netns_name=<netns>`), how uspace gives a
// container its memif with no shared directory.
var memifNetnsSteps = []step{
	{"abstract socket in a netns by path: registered as given, the master listens there", func(ctx context.Context, a *vppAPI) string {
		name := a.abstractName("a")
		_, err1 := a.mem.MemifSocketFilenameAddDelV2(ctx, &memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: 30,
			SocketFilename: "abstract:" + name + ",netns_name=" + a.netns})
		r, err2 := a.mem.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 30})
		a.ids["abstract a"] = uint32(r.SwIfIndex)
		out := fmt.Sprintf("%s, %s, listening in the netns: %v; dump: %s", rv(err1), rv(err2), listening(a.netns, name), socketDump(ctx, a))
		return strings.ReplaceAll(out, name, "<name>")
	}},
	{"abstract socket in a netns by name under /var/run/netns", func(ctx context.Context, a *vppAPI) string {
		name := a.abstractName("b")
		_, err1 := a.mem.MemifSocketFilenameAddDelV2(ctx, &memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: 31,
			SocketFilename: "abstract:" + name + ",netns_name=" + filepath.Base(a.netns)})
		r, err2 := a.mem.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 31})
		a.ids["abstract b"] = uint32(r.SwIfIndex)
		return fmt.Sprintf("%s, %s, listening in the netns: %v", rv(err1), rv(err2), listening(a.netns, name))
	}},
	{"abstract socket in a netns that is not there: -14, then VPP's broken count", func(ctx context.Context, a *vppAPI) string {
		_, err1 := a.mem.MemifSocketFilenameAddDelV2(ctx, &memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: 32,
			SocketFilename: "abstract:" + a.abstractName("c") + ",netns_name=/var/run/netns/uspace-no-such-netns"})
		_, err2 := a.mem.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 32})
		// VPP 25.02 took the failed master's reference away without having
		// taken it: a second master "succeeds" and the socket filename can
		// be deleted under it. uspace unregisters a socket after a failed
		// create, so it never builds on such a socket.
		r, err3 := a.mem.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 32, ID: 1})
		_, err4 := a.mem.MemifSocketFilenameAddDelV2(ctx, &memif.MemifSocketFilenameAddDelV2{IsAdd: false, SocketID: 32})
		_, err5 := a.mem.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: r.SwIfIndex})
		return strings.Join([]string{rv(err1), rv(err2), rv(err3), rv(err4), rv(err5)}, ", ")
	}},
	{"abstract sockets go with their last master", func(ctx context.Context, a *vppAPI) string {
		var out []string
		for i, k := range []string{"abstract a", "abstract b"} {
			_, err1 := a.mem.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: interface_types.InterfaceIndex(a.ids[k])})
			_, err2 := a.mem.MemifSocketFilenameAddDelV2(ctx, &memif.MemifSocketFilenameAddDelV2{IsAdd: false, SocketID: uint32(30 + i)})
			out = append(out, rv(err1)+" "+rv(err2))
		}
		return fmt.Sprintf("%s; listening: %v; dump: %q", strings.Join(out, ", "), listening(a.netns, a.abstractName("a")), socketDump(ctx, a))
	}},
}

package vpp

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/core"
)

// Pipeline sends request messages (binapi requests with a single reply,
// not dumps) back to back on one GoVPP stream and collects the replies in
// order. At most Config.PipelineWindow requests are in flight, which also
// keeps GoVPP's per-stream reply buffer from overflowing. replies[i]
// answers reqs[i]; a reply with a non-zero retval gives errs[i], an
// *OpError wrapping the api.VPPApiError. err reports a transport failure
// (then replies and errs are incomplete and should not be trusted).
func (c *Client) Pipeline(ctx context.Context, reqs []api.Message) (replies []api.Message, errs []error, err error) {
	const op = "pipeline"
	s, err := c.sessionFor(op, "")
	if err != nil {
		return nil, nil, err
	}
	return c.pipeline(ctx, s, reqs)
}

func (c *Client) pipeline(ctx context.Context, s *session, reqs []api.Message) ([]api.Message, []error, error) {
	const op = "pipeline"
	if len(reqs) == 0 {
		return nil, nil, nil
	}
	rctx, cancel := c.reqCtx(ctx, 1+len(reqs)/1000)
	defer cancel()
	window := c.cfg.PipelineWindow
	stream, err := s.conn.NewStream(rctx, core.WithRequestSize(window), core.WithReplySize(window))
	if err != nil {
		return nil, nil, opErr(op, "", nil, err)
	}
	defer func() { _ = stream.Close() }()

	replies := make([]api.Message, len(reqs))
	errs := make([]error, len(reqs))
	next, inflight := 0, 0
	for done := 0; done < len(reqs); done++ {
		for inflight < window && next < len(reqs) {
			if err := stream.SendMsg(reqs[next]); err != nil {
				return replies, errs, opErr(op, fmt.Sprintf("send %s #%d", reqs[next].GetMessageName(), next), nil, err)
			}
			next++
			inflight++
		}
		m, err := stream.RecvMsg()
		if err != nil {
			return replies, errs, opErr(op, fmt.Sprintf("reply to %s #%d", reqs[done].GetMessageName(), done), nil, err)
		}
		inflight--
		want := reqs[done].GetMessageName() + "_reply"
		if m.GetMessageName() != want {
			return replies, errs, opErr(op, "", nil, fmt.Errorf("reply #%d is %s, expected %s", done, m.GetMessageName(), want))
		}
		replies[done] = m
		if rv := replyRetval(m); rv != 0 {
			errs[done] = vppErr(reqs[done].GetMessageName(), fmt.Sprintf("#%d", done), api.VPPApiError(rv))
		}
	}
	return replies, errs, nil
}

func replyRetval(m api.Message) int32 {
	v := reflect.ValueOf(m)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return 0
	}
	f := v.FieldByName("Retval")
	if !f.IsValid() || f.Kind() != reflect.Int32 {
		return 0
	}
	return int32(f.Int())
}

// CreateMemifs creates and tags many memifs with two pipelined phases
// (all memif_create_v2, then all sw_interface_tag_add_del) instead of
// round trips per memif. Items that already exist (retval -68) go through
// CreateMemif's adopt-or-conflict path one by one. The result is aligned
// with specs; Name is VPP's memif<socket>/<id> and MAC is what the spec
// asked for (read Memifs for what VPP picked). A non-nil error is a
// *BatchError with the per-item errors; items without an error were
// created (or already existed as asked).
func (c *Client) CreateMemifs(ctx context.Context, specs []MemifSpec) ([]Memif, error) {
	const op = "create memifs"
	out := make([]Memif, len(specs))
	itemErrs := make([]error, len(specs))
	failed := false
	tags := make([]string, len(specs))
	var reqs []api.Message
	var idx []int
	for i, spec := range specs {
		tag, err := validateMemif(spec)
		if err != nil {
			itemErrs[i] = opErr("create memif", memifObj(spec.SocketID, spec.ID), ErrInvalid, err)
			failed = true
			continue
		}
		tags[i] = tag
		reqs = append(reqs, memifCreateReq(spec))
		idx = append(idx, i)
	}
	s, err := c.sessionFor(op, "")
	if err != nil {
		return out, err
	}
	replies, errs, err := c.pipeline(ctx, s, reqs)
	if err != nil {
		return out, err
	}
	var tagReqs []api.Message
	var tagIdx []int
	for k, i := range idx {
		spec := specs[i]
		if errs[k] != nil {
			if retvalIs(errs[k], api.SUBIF_ALREADY_EXISTS) {
				out[i], itemErrs[i] = c.CreateMemif(ctx, spec)
			} else {
				itemErrs[i] = opErr("create memif", memifObj(spec.SocketID, spec.ID), kindOf(errs[k]), errs[k])
			}
			failed = failed || itemErrs[i] != nil
			continue
		}
		r := replies[k].(*memif.MemifCreateV2Reply)
		out[i] = Memif{
			SwIfIndex: uint32(r.SwIfIndex), Name: fmt.Sprintf("memif%d/%d", spec.SocketID, spec.ID),
			SocketID: spec.SocketID, ID: spec.ID, Role: spec.Role, Mode: spec.Mode, MAC: spec.MAC, Tag: tags[i],
		}
		tagReqs = append(tagReqs, &interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: r.SwIfIndex, Tag: tags[i]})
		tagIdx = append(tagIdx, i)
	}
	_, terrs, err := c.pipeline(ctx, s, tagReqs)
	if err != nil {
		return out, err
	}
	var rollback []api.Message
	for k, i := range tagIdx {
		if terrs[k] != nil {
			itemErrs[i] = opErr("create memif", memifObj(specs[i].SocketID, specs[i].ID), nil, terrs[k])
			rollback = append(rollback, &memif.MemifDelete{SwIfIndex: interface_types.InterfaceIndex(out[i].SwIfIndex)})
			out[i] = Memif{}
			failed = true
		}
	}
	if len(rollback) > 0 {
		_, _, _ = c.pipeline(ctx, s, rollback)
	}
	if failed {
		return out, &BatchError{Op: op, Errs: itemErrs}
	}
	return out, nil
}

// batch pipelines reqs, one per item, and turns the replies into a
// *BatchError aligned with the items (nil when every item succeeded). A
// transport failure is returned as is: then nothing can be said of any item.
func (c *Client) batch(ctx context.Context, op string, obj func(i int) string, reqs []api.Message) error {
	s, err := c.sessionFor(op, "")
	if err != nil {
		return err
	}
	_, errs, err := c.pipeline(ctx, s, reqs)
	if err != nil {
		return err
	}
	failed := false
	for i, e := range errs {
		if e != nil {
			errs[i] = opErr(op, obj(i), kindOf(e), e)
			failed = true
		}
	}
	if failed {
		return &BatchError{Op: op, Errs: errs}
	}
	return nil
}

// AddMemifSockets is AddMemifSocket for many sockets, pipelined.
func (c *Client) AddMemifSockets(ctx context.Context, socks []MemifSocket) error {
	const op = "add memif socket"
	obj := func(i int) string { return fmt.Sprintf("id %d %q", socks[i].ID, socks[i].Filename) }
	reqs := make([]api.Message, len(socks))
	for i, s := range socks {
		if s.ID == 0 || s.ID == NoInterface {
			return opErr(op, obj(i), ErrInvalid, errors.New("socket id 0 and ~0 are reserved"))
		}
		if err := validMemifSocket(s.Filename); err != nil {
			return opErr(op, obj(i), ErrInvalid, err)
		}
		reqs[i] = &memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: s.ID, SocketFilename: s.Filename}
	}
	return c.batch(ctx, op, obj, reqs)
}

// BridgePort is an interface to put into a bridge domain.
type BridgePort struct {
	SwIfIndex uint32
	BdID      uint32
}

// AddToKnownBridges is AddToKnownBridge for many interfaces, pipelined;
// the same caveat holds: every domain must be known to exist.
func (c *Client) AddToKnownBridges(ctx context.Context, ports []BridgePort) error {
	const op = "bridge"
	obj := func(i int) string {
		return fmt.Sprintf("%s into bridge domain %d", ifObj(ports[i].SwIfIndex), ports[i].BdID)
	}
	reqs := make([]api.Message, len(ports))
	for i, p := range ports {
		if p.BdID == 0 || p.BdID > MaxBridgeDomainID {
			return opErr(op, obj(i), ErrInvalid, fmt.Errorf("bridge domain id must be 1..%d", MaxBridgeDomainID))
		}
		reqs[i] = &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: interface_types.InterfaceIndex(p.SwIfIndex), BdID: p.BdID,
			PortType: l2.L2_API_PORT_TYPE_NORMAL, Enable: true}
	}
	return c.batch(ctx, op, obj, reqs)
}

// SetAdminUps sets many interfaces admin up, pipelined.
func (c *Client) SetAdminUps(ctx context.Context, swIfIndexes []uint32) error {
	const op = "set admin up"
	reqs := make([]api.Message, len(swIfIndexes))
	for i, idx := range swIfIndexes {
		reqs[i] = &interfaces.SwInterfaceSetFlags{SwIfIndex: interface_types.InterfaceIndex(idx), Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP}
	}
	return c.batch(ctx, op, func(i int) string { return ifObj(swIfIndexes[i]) }, reqs)
}

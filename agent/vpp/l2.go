package vpp

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
)

// MaxBridgeDomainID is VPP's largest bridge domain id (L2_BD_ID_MAX).
const MaxBridgeDomainID = 0xFFFFFF

// BridgeDomainSpec describes a bridge domain to create.
type BridgeDomainSpec struct {
	ID      uint32 // 1..MaxBridgeDomainID
	Owner   string // tag owner, required
	Learn   bool
	Forward bool
	Flood   bool
	UUFlood bool
	ArpTerm bool
	MacAge  uint8 // minutes, 0 = off
}

// DefaultBridgeDomain returns the settings upstream userspace CNI used:
// learn, forward, flood and unknown-unicast flood on, ARP termination off.
func DefaultBridgeDomain(id uint32, owner string) BridgeDomainSpec {
	return BridgeDomainSpec{ID: id, Owner: owner, Learn: true, Forward: true, Flood: true, UUFlood: true}
}

// BridgeDomain is a bridge domain as VPP reports it.
type BridgeDomain struct {
	ID      uint32
	Tag     string
	Learn   bool
	Forward bool
	Flood   bool
	UUFlood bool
	ArpTerm bool
	MacAge  uint8
	Members []BridgeMember
}

// BridgeMember is an interface in a bridge domain.
type BridgeMember struct {
	SwIfIndex uint32
	SHG       uint8 // split-horizon group
}

// Owner returns the uspace owner recorded in the bridge domain's tag.
func (b BridgeDomain) Owner() (string, bool) { return TagOwner(b.Tag) }

func (b BridgeDomain) sameSettings(s BridgeDomainSpec) bool {
	return b.Learn == s.Learn && b.Forward == s.Forward && b.Flood == s.Flood &&
		b.UUFlood == s.UUFlood && b.ArpTerm == s.ArpTerm && b.MacAge == s.MacAge
}

func bdObj(id uint32) string { return strconv.FormatUint(uint64(id), 10) }

func bdFromDetails(d *l2.BridgeDomainDetails) BridgeDomain {
	b := BridgeDomain{
		ID: d.BdID, Tag: d.BdTag, Learn: d.Learn, Forward: d.Forward, Flood: d.Flood,
		UUFlood: d.UuFlood, ArpTerm: d.ArpTerm, MacAge: d.MacAge,
	}
	for _, m := range d.SwIfDetails {
		b.Members = append(b.Members, BridgeMember{SwIfIndex: uint32(m.SwIfIndex), SHG: m.Shg})
	}
	return b
}

func bridgeDomains(ctx context.Context, s *session, id uint32) ([]BridgeDomain, error) {
	ds, err := drain[*l2.BridgeDomainDetails](s.l2.BridgeDomainDump(ctx, &l2.BridgeDomainDump{BdID: id, SwIfIndex: interface_types.InterfaceIndex(NoInterface)}))
	if err != nil {
		return nil, err
	}
	out := make([]BridgeDomain, 0, len(ds))
	for _, d := range ds {
		out = append(out, bdFromDetails(d))
	}
	return out, nil
}

func lookupBD(ctx context.Context, s *session, id uint32) (BridgeDomain, bool, error) {
	bds, err := bridgeDomains(ctx, s, id)
	if err != nil {
		return BridgeDomain{}, false, err
	}
	for _, b := range bds {
		if b.ID == id {
			return b, true, nil
		}
	}
	return BridgeDomain{}, false, nil
}

// BridgeDomains lists every bridge domain except VPP's default (0).
func (c *Client) BridgeDomains(ctx context.Context) ([]BridgeDomain, error) {
	return read(c, ctx, 0, "dump bridge domains", "", func(ctx context.Context, s *session) ([]BridgeDomain, error) {
		return bridgeDomains(ctx, s, NoInterface)
	})
}

// BridgeDomain reads one bridge domain; a missing one matches ErrNotFound.
func (c *Client) BridgeDomain(ctx context.Context, id uint32) (BridgeDomain, error) {
	return read(c, ctx, 0, "get bridge domain", bdObj(id), func(ctx context.Context, s *session) (BridgeDomain, error) {
		b, ok, err := lookupBD(ctx, s, id)
		return b, found(ok, err)
	})
}

// CreateBridgeDomain creates a bridge domain tagged with the owner. An
// existing one (retval -119) is returned when its settings and owner match;
// otherwise the existing domain is returned with an ErrConflict error (VPP
// cannot re-tag a bridge domain, so an untagged one is not adopted).
func (c *Client) CreateBridgeDomain(ctx context.Context, spec BridgeDomainSpec) (BridgeDomain, error) {
	const op = "create bridge domain"
	obj := bdObj(spec.ID)
	tag, err := OwnerTag(spec.Owner)
	if err != nil {
		return BridgeDomain{}, opErr(op, obj, ErrInvalid, err)
	}
	if spec.ID == 0 || spec.ID > MaxBridgeDomainID {
		return BridgeDomain{}, opErr(op, obj, ErrInvalid, fmt.Errorf("bridge domain id must be 1..%d", MaxBridgeDomainID))
	}
	s, rctx, cancel, err := c.begin(ctx, op, obj)
	if err != nil {
		return BridgeDomain{}, err
	}
	defer cancel()
	_, err = s.l2.BridgeDomainAddDel(rctx, &l2.BridgeDomainAddDel{
		BdID: spec.ID, Flood: spec.Flood, UuFlood: spec.UUFlood, Forward: spec.Forward, Learn: spec.Learn,
		ArpTerm: spec.ArpTerm, MacAge: spec.MacAge, BdTag: tag, IsAdd: true,
	})
	if err != nil && !retvalIs(err, api.BD_ALREADY_EXISTS) {
		return BridgeDomain{}, vppErr(op, obj, err)
	}
	cause := err
	b, ok, lerr := lookupBD(rctx, s, spec.ID)
	if lerr != nil {
		return BridgeDomain{}, opErr(op, obj, nil, lerr)
	}
	if !ok {
		return BridgeDomain{}, opErr(op, obj, ErrNotFound, errors.New("not found right after creation"))
	}
	if cause == nil {
		return b, nil
	}
	if b.Tag != tag {
		return b, opErr(op, obj, ErrConflict, fmt.Errorf("exists with tag %q (%w)", b.Tag, cause))
	}
	if !b.sameSettings(spec) {
		return b, opErr(op, obj, ErrConflict, fmt.Errorf("exists with other settings %+v (%w)", b, cause))
	}
	return b, nil
}

// DeleteBridgeDomain deletes a bridge domain. A missing one is not an
// error; one that still has members is ErrConflict (retval -120).
func (c *Client) DeleteBridgeDomain(ctx context.Context, id uint32) error {
	const op = "delete bridge domain"
	if id == 0 {
		return opErr(op, bdObj(id), ErrInvalid, errors.New("bridge domain 0 is VPP's own"))
	}
	s, rctx, cancel, err := c.begin(ctx, op, bdObj(id))
	if err != nil {
		return err
	}
	defer cancel()
	_, err = s.l2.BridgeDomainAddDel(rctx, &l2.BridgeDomainAddDel{BdID: id, IsAdd: false})
	if err == nil || retvalIs(err, api.NO_SUCH_ENTRY) {
		return nil
	}
	return vppErr(op, bdObj(id), err)
}

// AddToBridge puts an interface into a bridge domain (moving it out of
// another one). The bridge domain must exist: VPP would silently create a
// missing one with default settings and no tag, so the driver checks first
// and answers ErrNotFound.
func (c *Client) AddToBridge(ctx context.Context, swIfIndex, bdID uint32, shg uint8) error {
	return c.addToBridge(ctx, swIfIndex, bdID, shg, true)
}

// AddToKnownBridge is AddToBridge for a caller that tracks bridge domains
// itself and knows bdID exists (it created or dumped it): it skips the
// existence check, a dump of the domain with all its members that costs
// more the bigger the domain. Should the domain be gone after all, VPP
// creates it with default settings and no tag, so a caller must only use
// it while its view of the bridge domains is current.
func (c *Client) AddToKnownBridge(ctx context.Context, swIfIndex, bdID uint32, shg uint8) error {
	return c.addToBridge(ctx, swIfIndex, bdID, shg, false)
}

func (c *Client) addToBridge(ctx context.Context, swIfIndex, bdID uint32, shg uint8, check bool) error {
	const op = "bridge"
	obj := fmt.Sprintf("%s into bridge domain %d", ifObj(swIfIndex), bdID)
	if bdID == 0 || bdID > MaxBridgeDomainID {
		return opErr(op, obj, ErrInvalid, fmt.Errorf("bridge domain id must be 1..%d", MaxBridgeDomainID))
	}
	s, rctx, cancel, err := c.begin(ctx, op, obj)
	if err != nil {
		return err
	}
	defer cancel()
	if check {
		_, ok, err := lookupBD(rctx, s, bdID)
		if err != nil {
			return opErr(op, obj, nil, err)
		}
		if !ok {
			return opErr(op, obj, ErrNotFound, fmt.Errorf("bridge domain %d does not exist", bdID))
		}
	}
	if _, err := s.l2.SwInterfaceSetL2Bridge(rctx, &l2.SwInterfaceSetL2Bridge{
		RxSwIfIndex: interface_types.InterfaceIndex(swIfIndex), BdID: bdID, PortType: l2.L2_API_PORT_TYPE_NORMAL, Shg: shg, Enable: true,
	}); err != nil {
		return vppErr(op, obj, err)
	}
	return nil
}

// RemoveFromBridge takes an interface out of whatever bridge domain it is
// in (back to L3 mode). An interface that is in none, or gone, is not an
// error.
func (c *Client) RemoveFromBridge(ctx context.Context, swIfIndex uint32) error {
	const op = "unbridge"
	s, rctx, cancel, err := c.begin(ctx, op, ifObj(swIfIndex))
	if err != nil {
		return err
	}
	defer cancel()
	_, err = s.l2.SwInterfaceSetL2Bridge(rctx, &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: interface_types.InterfaceIndex(swIfIndex), Enable: false})
	if err == nil || retvalIs(err, api.INVALID_SW_IF_INDEX) {
		return nil
	}
	return vppErr(op, ifObj(swIfIndex), err)
}

package plan

import (
	"fmt"
	"sort"

	"github.com/meshd-io/meshd/internal/model"
)

// KindPeering is a VPC peering connection between two members: requested in the requester's region,
// accepted in the accepter's. Ownership: the tag meshd.io/mesh.
const KindPeering Kind = "peering"

func init() {
	Register(KindInfo{
		Kind: KindPeering, Address: "peering[<cluster>:<cluster>]", Rank: 0,
		planner: (*computer).peerings,
		First:   true, DeletedLast: true, Provider: ProviderAWS,
		Decode: decodeAs[Peering], RepeatHint: hintAWS,
		IAM: peeringIAM,
	})
}

// Endpoint is one side of a peering.
type Endpoint struct {
	Cluster string `json:"cluster"`
	VPCID   string `json:"vpc_id"`
	Region  string `json:"region"`
	OwnerID string `json:"owner_id,omitempty"`
	// Access reaches this side's account: the requester's requests (and deletes) the peering, the
	// accepter's accepts it.
	model.Access
}

// Peering is a VPC peering connection between two member VPCs. ID is empty until the peering exists.
type Peering struct {
	ID        string   `json:"id,omitempty"`
	Requester Endpoint `json:"requester"`
	Accepter  Endpoint `json:"accepter"`
	Status    string   `json:"status,omitempty"`
}

func (Peering) Kind() Kind { return KindPeering }

func (p Peering) Attrs() []Attr {
	return []Attr{
		{Name: "requester", Value: fmt.Sprintf("%s (%s, %s)", p.Requester.VPCID, p.Requester.Cluster, p.Requester.Region)},
		{Name: "accepter", Value: fmt.Sprintf("%s (%s, %s)", p.Accepter.VPCID, p.Accepter.Cluster, p.Accepter.Region)},
		{Name: "id", Value: p.ID, Unknown: p.ID == ""},
		{Name: "status", Value: p.Status, Unknown: p.Status == ""},
	}
}

type peeringRef struct {
	ID      string // known peering ID, or "" when created by this plan
	Address string // the pair's peering address
	Change  string // address of the change that must run first, if any
}

// PeeringAddress is the address of the peering between two clusters, independent of their order.
func PeeringAddress(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return fmt.Sprintf("%s[%s:%s]", KindPeering, a, b)
}

func endpoint(m model.Member) Endpoint {
	return Endpoint{Cluster: m.Name, VPCID: m.VPCID, Region: m.Region, OwnerID: m.OwnerID, Access: m.Access}
}

// observedPeering converts an observed peering, naming its sides by member where known.
func (c *computer) observedPeering(p model.ObservedPeering) Peering {
	// A VPC of no member is named by nobody and reached with the default credentials.
	side := func(vpc, region string) Endpoint {
		m, _ := c.memberOfVPC(vpc)
		return Endpoint{Cluster: m.Name, VPCID: vpc, Region: region, Access: m.Access}
	}
	return Peering{
		ID:        p.ID,
		Requester: side(p.RequesterVPC, p.RequesterRegion),
		Accepter:  side(p.AccepterVPC, p.AccepterRegion),
		Status:    p.Status,
	}
}

// sortedPeerings returns observed peerings ordered by ID so that choices between candidates are stable.
func (c *computer) sortedPeerings() []model.ObservedPeering {
	out := make([]model.ObservedPeering, 0, len(c.in.Observed.Peerings))
	for _, p := range c.in.Observed.Peerings {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// peerings plans one peering per pair of members; none with topology = "transit_gateway" (orphanPeerings
// then removes meshd's, after the routes through the gateways exist).
func (c *computer) peerings() {
	if c.in.TransitGateways != nil {
		return
	}
	byPair := map[[2]string][]model.ObservedPeering{}
	for _, p := range c.sortedPeerings() {
		key := pairKey(p.RequesterVPC, p.AccepterVPC)
		byPair[key] = append(byPair[key], p)
	}
	for i, a := range c.networked {
		for _, b := range c.networked[i+1:] {
			c.peering(a, b, byPair[pairKey(a.VPCID, b.VPCID)])
		}
	}
}

func pairKey(x, y string) [2]string {
	if y < x {
		x, y = y, x
	}
	return [2]string{x, y}
}

func (c *computer) peering(a, b model.Member, candidates []model.ObservedPeering) {
	addr := PeeringAddress(a.Name, b.Name)
	want := Peering{Requester: endpoint(a), Accepter: endpoint(b)}

	var owned, foreign *model.ObservedPeering
	gone, goneID := "", ""
	for i := range candidates {
		p := &candidates[i]
		switch {
		case p.Gone():
			if model.TaggedBy(p.Tags, c.in.Mesh) {
				gone, goneID = p.Status, p.ID
			}
		case model.TaggedBy(p.Tags, c.in.Mesh):
			// Prefer an active peering when several carry the tag (a copy made by hand, say).
			if owned == nil || (owned.Status != model.PeeringActive && p.Status == model.PeeringActive) {
				owned = p
			}
		case foreign == nil:
			foreign = p
		}
	}

	switch {
	case owned != nil:
		c.usedPeerings[owned.ID] = true
		ref := peeringRef{ID: owned.ID, Address: addr}
		if owned.Status != model.PeeringActive {
			before := c.observedPeering(*owned)
			after := before
			after.Status = model.PeeringActive
			reason := fmt.Sprintf("peering is %s: accept it in %s", owned.Status, owned.AccepterRegion)
			if owned.Status != model.PeeringPending {
				reason = fmt.Sprintf("peering is %s: wait until it is active", owned.Status)
			}
			c.add(Change{Action: Update, Address: addr, Kind: KindPeering, Reason: reason, Before: before, After: after})
			ref.Change = addr
		}
		c.peeringRef[addr] = ref

	case foreign != nil:
		obs := c.observedPeering(*foreign)
		ref := peeringRef{ID: foreign.ID, Address: addr}
		other := model.MeshOf(foreign.Tags)
		switch {
		case other != "":
			c.add(Change{Action: Keep, Address: addr, Kind: KindPeering, Before: obs, After: obs,
				Reason: fmt.Sprintf("exists, owned by mesh %q: left alone", other)})
		case c.in.Adopt:
			after := obs
			after.Status = model.PeeringActive
			reason := "exists, not owned: adopt (tag as meshd's)"
			if foreign.Status == model.PeeringPending {
				reason = "exists, not owned, pending acceptance: adopt (tag as meshd's) and accept"
			}
			c.add(Change{Action: Adopt, Address: addr, Kind: KindPeering, Reason: reason, Before: obs, After: after})
			ref.Change = addr
		default:
			c.add(Change{Action: Keep, Address: addr, Kind: KindPeering, Before: obs, After: obs,
				Reason: "exists, not owned by meshd: left alone (set adopt = true in the mesh block to manage it)"})
		}
		c.peeringRef[addr] = ref

	default:
		reason := "peering missing"
		switch {
		case gone != "" && c.routesRecordedThrough(goneID):
			reason = fmt.Sprintf("peering was %s outside meshd: request a new one", gone)
		case gone != "":
			// meshd deleted it itself (the switch to the gateways, a destroy): its routes went first.
			reason = fmt.Sprintf("peering missing (meshd's %s is %s)", goneID, gone)
		}
		c.add(Change{Action: Create, Address: addr, Kind: KindPeering, Reason: reason, After: want})
		c.peeringRef[addr] = peeringRef{Address: addr, Change: addr}
	}
}

// routesRecordedThrough reports whether the state records a route through the peering: one meshd deleted
// itself had its routes deleted (and their records dropped) first.
func (c *computer) routesRecordedThrough(peering string) bool {
	if c.routedPeerings == nil { // read once a plan, on the first peering found gone
		c.routedPeerings = map[string]bool{}
		for _, r := range c.in.State.RouteSet() {
			c.routedPeerings[r.PeeringID] = true
		}
	}
	return c.routedPeerings[peering]
}

// orphanPeerings deletes the mesh's peerings that no pair uses any more, after the routes through them.
func (c *computer) orphanPeerings() {
	for _, p := range c.sortedPeerings() {
		if _, owned := c.ownedPeerings[p.ID]; !owned || c.usedPeerings[p.ID] {
			continue
		}
		obs := c.observedPeering(p)
		addr := p.Tags[model.TagID]
		if addr == "" || c.plan.Find(addr) != nil {
			addr = fmt.Sprintf("%s[%s]", KindPeering, p.ID)
		}
		reason := "no longer in the spec"
		if c.in.Destroy {
			reason = "destroy"
		} else if c.peeringForPairKept(p) {
			reason = "duplicate of the pair's peering"
		}
		deps := append([]string(nil), c.routeDeletesByPeering[p.ID]...)
		sort.Strings(deps)
		c.add(Change{Action: Delete, Address: addr, Kind: KindPeering, Reason: reason, Before: obs, DependsOn: deps})
	}
}

func (c *computer) peeringForPairKept(p model.ObservedPeering) bool {
	for id := range c.usedPeerings {
		if q := c.in.Observed.Peerings[id]; q.Connects(p.RequesterVPC, p.AccepterVPC) {
			return true
		}
	}
	return false
}

// ownedPeeringAny reports whether id is a peering of this mesh, gone or not: a blackholed route through a
// deleted peering of ours is still ours to fix or remove.
func (c *computer) ownedPeeringAny(id string) (model.ObservedPeering, bool) {
	if id == "" {
		return model.ObservedPeering{}, false
	}
	p, ok := c.in.Observed.Peerings[id]
	return p, ok && model.TaggedBy(p.Tags, c.in.Mesh)
}

package plan

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/state"
)

// Input is everything Compute needs. Members are the spec's clusters resolved against AWS, in spec order;
// Observed must cover their VPCs and those of the state's members (so that a cluster removed from the spec
// can be cleaned up).
type Input struct {
	Mesh     string
	SpecHash string
	Adopt    bool
	Members  []model.Member
	Observed *model.Observed
	State    *state.State
	// Destroy plans the removal of everything meshd owns, whatever the members ask for.
	Destroy bool
	// DNS, when set, plans the DNS Services and Corefiles as well (see dns.go); nil leaves DNS alone.
	DNS *DNSInput
}

// Compute diffs the desired mesh against the observed world. Ownership decides what may be touched:
//
//	object       | meshd's when                                   | observed, not desired | desired, observed, not meshd's
//	-------------+------------------------------------------------+-----------------------+-------------------------------
//	peering      | tag meshd.io/mesh = mesh                       | - delete              | = keep (> adopt if adopt)
//	route        | recorded in state with the same target, or (if | - delete (if recorded) | same peering: = keep (> adopt);
//	             | desired) its target is a peering meshd owns    |                       | other target: conflict
//	sg_rule      | tag meshd.io/mesh = mesh                       | - delete              | = keep if it allows the traffic
//
// Desired and missing is a create (+); meshd's but different (a pending peering, a route to a peering that was
// deleted) is an update (~). Rejected, deleted and expired peerings count as missing: AWS keeps listing them.
func Compute(in Input) *Plan {
	c := newComputer(in)
	c.peerings()
	c.routes()
	c.rules()
	c.orphanPeerings()
	c.dns()
	return c.finish()
}

type computer struct {
	in      Input
	members []model.Member // sorted by name; empty when destroying
	plan    *Plan

	// peeringRef is, by pair address, how routes of that pair reach their peering.
	peeringRef map[string]peeringRef
	// ownedPeerings are the observed, not gone, peerings of this mesh by ID; usedPeerings are those the
	// desired mesh keeps.
	ownedPeerings map[string]model.Peering
	usedPeerings  map[string]bool
	// routeDeletesByPeering lets a peering's delete wait for the deletes of routes through it.
	routeDeletesByPeering map[string][]string
}

type peeringRef struct {
	ID      string // known peering ID, or "" when created by this plan
	Address string // the pair's peering address
	Change  string // address of the change that must run first, if any
}

func newComputer(in Input) *computer {
	members := append([]model.Member(nil), in.Members...)
	if in.Destroy {
		members = nil
	}
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	byName := map[string]model.Member{}
	for _, m := range in.Members {
		byName[m.Name] = m
	}
	if in.Destroy {
		byName = nil // after a complete destroy the state has no members left
	}
	c := &computer{
		in:      in,
		members: members,
		plan: &Plan{
			FormatVersion: FormatVersion, Mesh: in.Mesh, Destroy: in.Destroy, SpecHash: in.SpecHash,
			Lineage: in.State.Lineage, Serial: in.State.Serial, Members: byName,
		},
		peeringRef:            map[string]peeringRef{},
		ownedPeerings:         map[string]model.Peering{},
		usedPeerings:          map[string]bool{},
		routeDeletesByPeering: map[string][]string{},
	}
	for id, p := range in.Observed.Peerings {
		if !p.Gone() && p.Tags[model.TagMesh] == in.Mesh {
			c.ownedPeerings[id] = p
		}
	}
	return c
}

func (c *computer) add(ch Change) { c.plan.Changes = append(c.plan.Changes, ch) }

// PeeringAddress is the address of the peering between two clusters, independent of their order.
func PeeringAddress(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return fmt.Sprintf("%s[%s:%s]", KindPeering, a, b)
}

// RouteAddress is the address of a route in a cluster's route table.
func RouteAddress(cluster, routeTable, cidr string) string {
	return fmt.Sprintf("%s[%s:%s:%s]", KindRoute, cluster, routeTable, cidr)
}

// RuleAddress is the address of an ingress rule on a cluster's node security group.
func RuleAddress(cluster, group, cidr string) string {
	return fmt.Sprintf("%s[%s:%s:%s]", KindSGRule, cluster, group, cidr)
}

func endpoint(m model.Member) Endpoint {
	return Endpoint{Cluster: m.Name, VPCID: m.VPCID, Region: m.Region, OwnerID: m.OwnerID}
}

// observedPeering converts an observed peering, naming its sides by member where known.
func (c *computer) observedPeering(p model.Peering) Peering {
	name := func(vpc string) string {
		for _, m := range c.in.Members {
			if m.VPCID == vpc {
				return m.Name
			}
		}
		for _, m := range c.in.State.Members {
			if m.VPCID == vpc {
				return m.Name
			}
		}
		return ""
	}
	return Peering{
		ID:        p.ID,
		Requester: Endpoint{Cluster: name(p.RequesterVPC), VPCID: p.RequesterVPC, Region: p.RequesterRegion},
		Accepter:  Endpoint{Cluster: name(p.AccepterVPC), VPCID: p.AccepterVPC, Region: p.AccepterRegion},
		Status:    p.Status,
	}
}

// sortedPeerings returns observed peerings ordered by ID so that choices between candidates are stable.
func (c *computer) sortedPeerings() []model.Peering {
	out := make([]model.Peering, 0, len(c.in.Observed.Peerings))
	for _, p := range c.in.Observed.Peerings {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// peerings plans one peering per pair of members.
func (c *computer) peerings() {
	byPair := map[[2]string][]model.Peering{}
	for _, p := range c.sortedPeerings() {
		key := pairKey(p.RequesterVPC, p.AccepterVPC)
		byPair[key] = append(byPair[key], p)
	}
	for i, a := range c.members {
		for _, b := range c.members[i+1:] {
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

func (c *computer) peering(a, b model.Member, candidates []model.Peering) {
	addr := PeeringAddress(a.Name, b.Name)
	want := Peering{Requester: endpoint(a), Accepter: endpoint(b)}

	var owned, foreign *model.Peering
	gone := ""
	for i := range candidates {
		p := &candidates[i]
		switch {
		case p.Gone():
			if p.Tags[model.TagMesh] == c.in.Mesh {
				gone = p.Status
			}
		case p.Tags[model.TagMesh] == c.in.Mesh:
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
		other := foreign.Tags[model.TagMesh]
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
		if gone != "" {
			reason = fmt.Sprintf("peering was %s outside meshd: request a new one", gone)
		}
		c.add(Change{Action: Create, Address: addr, Kind: KindPeering, Reason: reason, After: want})
		c.peeringRef[addr] = peeringRef{Address: addr, Change: addr}
	}
}

type desiredRoute struct {
	route Route
	ref   peeringRef
}

// routes plans, in every managed route table, one route per other member's CIDR block.
func (c *computer) routes() {
	desired := map[string]desiredRoute{} // by route table | destination
	var order []string
	for _, a := range c.members {
		for _, rt := range a.RouteTableIDs {
			for _, b := range c.members {
				if a.Name == b.Name {
					continue
				}
				ref := c.peeringRef[PeeringAddress(a.Name, b.Name)]
				for _, cidr := range b.CIDRs {
					key := rt + "|" + cidr
					desired[key] = desiredRoute{ref: ref, route: Route{
						Cluster: a.Name, Region: a.Region, VPCID: a.VPCID, RouteTableID: rt,
						DestinationCIDR: cidr, PeeringID: ref.ID, PeeringAddress: ref.Address,
					}}
					order = append(order, key)
				}
			}
		}
	}

	records := c.in.State.RouteSet()
	seen := map[string]bool{}
	for _, rt := range c.sortedRouteTables() {
		cluster := c.clusterOfVPC(rt.VPCID)
		for _, r := range rt.Routes {
			key := rt.ID + "|" + r.DestinationCIDR
			rec, recorded := records[key]
			ownedByRecord := recorded && r.PeeringID != "" && rec.PeeringID == r.PeeringID
			_, ownedByTarget := c.ownedPeeringAny(r.PeeringID)
			owned := ownedByRecord || ownedByTarget
			observed := Route{Cluster: cluster, Region: rt.Region, VPCID: rt.VPCID, RouteTableID: rt.ID,
				DestinationCIDR: r.DestinationCIDR, PeeringID: r.PeeringID, Target: r.Target}
			addr := RouteAddress(cluster, rt.ID, r.DestinationCIDR)
			record := state.RouteRecord{Region: rt.Region, VPCID: rt.VPCID, RouteTableID: rt.ID,
				DestinationCIDR: r.DestinationCIDR, PeeringID: r.PeeringID}
			if recorded && !ownedByRecord {
				c.plan.Forget = append(c.plan.Forget, rec)
			}

			d, want := desired[key]
			if !want {
				// Only a route the state records is removed. Its target alone (one of the mesh's peerings) makes
				// a route meshd's where meshd wants it — that is how an interrupted apply recovers — but not
				// elsewhere: someone may route their own destinations through meshd's peering.
				if ownedByRecord {
					reason := "no longer in the spec"
					if c.in.Destroy {
						reason = "destroy"
					}
					c.add(Change{Action: Delete, Address: addr, Kind: KindRoute, Reason: reason, Before: observed})
					c.routeDeletesByPeering[r.PeeringID] = append(c.routeDeletesByPeering[r.PeeringID], addr)
				}
				continue
			}
			seen[key] = true
			addr = RouteAddress(d.route.Cluster, rt.ID, r.DestinationCIDR)
			switch {
			case d.ref.ID != "" && r.PeeringID == d.ref.ID && r.State != "blackhole":
				switch {
				case ownedByRecord:
				case ownedByTarget:
					c.plan.Record = append(c.plan.Record, record)
				case c.in.Adopt:
					c.add(Change{Action: Adopt, Address: addr, Kind: KindRoute, Before: observed, After: observed,
						Reason: "exists, not owned: adopt (record as meshd's)", DependsOn: deps(d.ref.Change)})
				default:
					c.add(Change{Action: Keep, Address: addr, Kind: KindRoute, Before: observed, After: observed,
						Reason: "exists, not owned by meshd: left alone"})
				}
			case owned:
				reason := fmt.Sprintf("route targets %s, which is not the pair's peering", r.PeeringID)
				if p, ok := c.in.Observed.Peerings[r.PeeringID]; ok && p.Gone() {
					reason = fmt.Sprintf("route targets %s, which was %s outside meshd", r.PeeringID, p.Status)
				}
				c.add(Change{Action: Update, Address: addr, Kind: KindRoute, Reason: reason,
					Before: observed, After: d.route, DependsOn: deps(d.ref.Change)})
				c.routeDeletesByPeering[r.PeeringID] = append(c.routeDeletesByPeering[r.PeeringID], addr)
			default:
				target := r.PeeringID
				if target == "" {
					target = r.Target
				}
				c.plan.Conflicts = append(c.plan.Conflicts, Conflict{
					Address: addr,
					Summary: fmt.Sprintf("Route table %s (cluster %s) already routes %s to %s", rt.ID, d.route.Cluster, r.DestinationCIDR, target),
					Detail: fmt.Sprintf("meshd wants %s via %s but the existing route was not created by meshd, so it is left alone. "+
						"Remove or change it yourself, or take the route table out of the mesh with route_table_ids.",
						r.DestinationCIDR, orUnknown(d.ref.ID, d.ref.Address)),
				})
			}
		}
	}

	for _, key := range order {
		if seen[key] {
			continue
		}
		d := desired[key]
		reason := "route missing"
		if rec, ok := records[key]; ok && rec.PeeringID != "" {
			reason = "route was deleted outside meshd"
		}
		c.add(Change{Action: Create, Address: RouteAddress(d.route.Cluster, d.route.RouteTableID, d.route.DestinationCIDR),
			Kind: KindRoute, Reason: reason, After: d.route, DependsOn: deps(d.ref.Change)})
	}

	// Records of routes that are gone altogether (their table too) are dropped.
	for key, rec := range records {
		rt, ok := c.in.Observed.RouteTables[rec.RouteTableID]
		if !ok || !hasRoute(rt, rec.DestinationCIDR) {
			if _, want := desired[key]; !want {
				c.plan.Forget = append(c.plan.Forget, rec)
			}
		}
	}
}

func hasRoute(rt *model.RouteTable, cidr string) bool {
	for _, r := range rt.Routes {
		if r.DestinationCIDR == cidr {
			return true
		}
	}
	return false
}

func orUnknown(id, address string) string {
	if id != "" {
		return id
	}
	return address + " (known after apply)"
}

func deps(addr ...string) []string {
	var out []string
	for _, a := range addr {
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

// ownedPeeringAny reports whether id is a peering of this mesh, gone or not: a blackholed route through a
// deleted peering of ours is still ours to fix or remove.
func (c *computer) ownedPeeringAny(id string) (model.Peering, bool) {
	if id == "" {
		return model.Peering{}, false
	}
	p, ok := c.in.Observed.Peerings[id]
	return p, ok && p.Tags[model.TagMesh] == c.in.Mesh
}

func (c *computer) sortedRouteTables() []*model.RouteTable {
	out := make([]*model.RouteTable, 0, len(c.in.Observed.RouteTables))
	for _, rt := range c.in.Observed.RouteTables {
		out = append(out, rt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (c *computer) clusterOfVPC(vpc string) string {
	for _, m := range c.in.Members {
		if m.VPCID == vpc {
			return m.Name
		}
	}
	for _, name := range sortedNames(c.in.State.Members) {
		if c.in.State.Members[name].VPCID == vpc {
			return name
		}
	}
	return vpc
}

// memberOfGroup finds the member (current, else former) whose node security group this is.
func (c *computer) memberOfGroup(group string) model.Member {
	for _, m := range c.in.Members {
		if m.SecurityGroupID == group {
			return m
		}
	}
	for _, name := range sortedNames(c.in.State.Members) {
		if m := c.in.State.Members[name]; m.SecurityGroupID == group {
			return m
		}
	}
	return model.Member{Name: group}
}

func sortedNames(m map[string]model.Member) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// rules plans, on each member's node security group, ingress from every other member's CIDR blocks.
func (c *computer) rules() {
	desired := map[string]SGRule{}
	var order []string
	byGroup := map[string][]string{} // desired keys by security group, to match others' rules cheaply
	for _, a := range c.members {
		for _, b := range c.members {
			if a.Name == b.Name {
				continue
			}
			for _, cidr := range b.CIDRs {
				key := a.SecurityGroupID + "|" + cidr
				if _, dup := desired[key]; dup {
					continue
				}
				desired[key] = SGRule{Cluster: a.Name, Region: a.Region, GroupID: a.SecurityGroupID,
					CIDR: cidr, Protocol: "-1", Description: fmt.Sprintf("meshd %s: from %s", c.in.Mesh, b.Name)}
				order = append(order, key)
				byGroup[a.SecurityGroupID] = append(byGroup[a.SecurityGroupID], key)
			}
		}
	}

	groups := make([]string, 0, len(c.in.Observed.Rules))
	for g := range c.in.Observed.Rules {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	satisfied := map[string]bool{}

	// Rules of this mesh first: they satisfy what they match, the rest of them go.
	for _, g := range groups {
		for _, r := range c.in.Observed.Rules[g] {
			if r.Tags[model.TagMesh] != c.in.Mesh {
				continue
			}
			key := g + "|" + r.CIDR
			if _, want := desired[key]; want && r.Protocol == "-1" && !satisfied[key] {
				satisfied[key] = true
				continue
			}
			reason := "no longer in the spec"
			if c.in.Destroy {
				reason = "destroy"
			} else if satisfied[key] {
				reason = "duplicate of another rule of this mesh"
			}
			obs := observedRule(c.memberOfGroup(g), r)
			c.add(Change{Action: Delete, Address: RuleAddress(obs.Cluster, g, r.CIDR), Kind: KindSGRule, Reason: reason, Before: obs})
		}
	}
	// Then anyone else's rule that already allows the traffic: it is left alone, and meshd adds no copy.
	for _, g := range groups {
		for _, r := range c.in.Observed.Rules[g] {
			if r.Tags[model.TagMesh] == c.in.Mesh || r.Protocol != "-1" {
				continue
			}
			for _, key := range byGroup[g] {
				d := desired[key]
				if satisfied[key] || !cidrCovers(r.CIDR, d.CIDR) {
					continue
				}
				satisfied[key] = true
				obs := observedRule(c.memberOfGroup(g), r)
				addr := RuleAddress(d.Cluster, g, d.CIDR)
				owner := r.Tags[model.TagMesh]
				switch {
				case owner != "":
					c.add(Change{Action: Keep, Address: addr, Kind: KindSGRule, Before: obs, After: obs,
						Reason: fmt.Sprintf("already allowed by %s of mesh %q: left alone", r.ID, owner)})
				case c.in.Adopt && r.CIDR == d.CIDR:
					c.add(Change{Action: Adopt, Address: addr, Kind: KindSGRule, Before: obs, After: obs,
						Reason: "exists, not owned: adopt (tag as meshd's)"})
				default:
					c.add(Change{Action: Keep, Address: addr, Kind: KindSGRule, Before: obs, After: obs,
						Reason: fmt.Sprintf("already allowed by %s (not meshd's): left alone", r.ID)})
				}
			}
		}
	}
	for _, key := range order {
		if satisfied[key] {
			continue
		}
		d := desired[key]
		c.add(Change{Action: Create, Address: RuleAddress(d.Cluster, d.GroupID, d.CIDR),
			Kind: KindSGRule, Reason: "ingress rule missing", After: d})
	}
}

func observedRule(m model.Member, r model.SecurityGroupRule) SGRule {
	return SGRule{Cluster: m.Name, Region: m.Region, GroupID: r.GroupID, CIDR: r.CIDR, Protocol: r.Protocol,
		Description: r.Description, RuleID: r.ID}
}

// cidrCovers reports whether outer contains all of inner.
func cidrCovers(outer, inner string) bool {
	o, err1 := netip.ParsePrefix(outer)
	i, err2 := netip.ParsePrefix(inner)
	if err1 != nil || err2 != nil {
		return false
	}
	return o.Bits() <= i.Bits() && o.Contains(i.Addr())
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

func (c *computer) peeringForPairKept(p model.Peering) bool {
	for id := range c.usedPeerings {
		if q := c.in.Observed.Peerings[id]; q.Connects(p.RequesterVPC, p.AccepterVPC) {
			return true
		}
	}
	return false
}

// phase orders changes: peerings are requested and accepted before routes use them, DNS Services get their
// load balancers before the other clusters' Corefiles point at them; deletes run in reverse dependency order
// (routes and rules before the peerings they use, Corefile blocks before the Services they forward to).
func phase(ch Change) int {
	switch {
	case (ch.Kind == KindPeering || ch.Kind == KindDNSService) && ch.Action != Delete:
		return 0
	case ch.Action != Delete:
		return 1
	case ch.Kind != KindPeering:
		return 2
	default:
		return 3
	}
}

func (c *computer) finish() *Plan {
	p := c.plan
	sort.SliceStable(p.Changes, func(i, j int) bool {
		a, b := p.Changes[i], p.Changes[j]
		if pa, pb := phase(a), phase(b); pa != pb {
			return pa < pb
		}
		if a.Kind != b.Kind {
			return kindOrder(a.Kind) < kindOrder(b.Kind)
		}
		return a.Address < b.Address
	})
	sortRecords(p.Record)
	sortRecords(p.Forget)
	p.Forget = uniqueRecords(p.Forget)
	sort.Slice(p.Conflicts, func(i, j int) bool { return p.Conflicts[i].Address < p.Conflicts[j].Address })
	return p
}

func kindOrder(k Kind) int {
	switch k {
	case KindPeering:
		return 0
	case KindRoute:
		return 1
	case KindSGRule:
		return 2
	case KindDNSService:
		return 3
	case KindCorefile:
		return 4
	}
	return 5
}

func sortRecords(rs []state.RouteRecord) {
	sort.Slice(rs, func(i, j int) bool {
		return strings.Compare(rs[i].RouteTableID+"|"+rs[i].DestinationCIDR, rs[j].RouteTableID+"|"+rs[j].DestinationCIDR) < 0
	})
}

func uniqueRecords(rs []state.RouteRecord) []state.RouteRecord {
	out := rs[:0]
	for i, r := range rs {
		if i > 0 && r.Key() == rs[i-1].Key() {
			continue
		}
		out = append(out, r)
	}
	return out
}

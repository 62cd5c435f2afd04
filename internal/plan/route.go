package plan

import (
	"fmt"
	"sort"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/state"
)

// KindRoute is a route to another member's CIDR block through the pair's peering. Routes take no tags:
// ownership is the state's record (or, where meshd wants the route, a target that is one of the mesh's
// peerings).
const KindRoute Kind = "route"

func init() {
	Register(KindInfo{
		Kind: KindRoute, Address: "route[<cluster>:<route table>:<destination cidr>]", Rank: 1,
		// The peerings no route uses any more go after the routes: their deletes wait on the routes'.
		planner:  func(c *computer) { c.routes(); c.orphanPeerings() },
		Provider: ProviderAWS, Decode: decodeAs[Route], RepeatHint: hintAWS,
		IAM: routeIAM, State: &Records{List: routeEntries, Fix: func(p *Plan, st *state.State) {
			for _, rec := range p.Forget {
				st.RemoveRoute(rec.RouteTableID, rec.DestinationCIDR)
			}
			for _, rec := range p.Record {
				st.AddRoute(rec)
			}
		}},
	})
}

// routeEntries lists the recorded routes at the planner's addresses: a route's cluster is the member whose
// VPC it is in (the VPC ID when no member of the state has it).
func routeEntries(st *state.State) []state.Entry {
	var out []state.Entry
	for _, r := range st.Routes {
		cluster := r.VPCID
		for _, name := range sortedNames(st.Members) {
			if st.Members[name].VPCID == r.VPCID {
				cluster = name
				break
			}
		}
		out = append(out, state.Entry{Address: RouteAddress(cluster, r.RouteTableID, r.DestinationCIDR),
			Attrs: []state.Attr{{Name: "region", Value: r.Region}, {Name: "vpc_id", Value: r.VPCID},
				{Name: "route_table_id", Value: r.RouteTableID}, {Name: "destination_cidr", Value: r.DestinationCIDR},
				{Name: "peering_id", Value: r.PeeringID}}})
	}
	return out
}

// Route is a route to another member's CIDR block through their peering. When the peering does not exist yet
// PeeringID is empty and PeeringAddress names the change that creates it: apply fills the ID in.
type Route struct {
	Cluster         string `json:"cluster"`
	Region          string `json:"region"`
	VPCID           string `json:"vpc_id"`
	RouteTableID    string `json:"route_table_id"`
	DestinationCIDR string `json:"destination_cidr"`
	PeeringID       string `json:"peering_id,omitempty"`
	PeeringAddress  string `json:"peering_address,omitempty"`
	// Target is a non-peering target (igw-, nat-, ...) of an observed route, shown in conflicts.
	Target string `json:"target,omitempty"`
	// Access reaches the route table's account.
	model.Access
}

func (Route) Kind() Kind { return KindRoute }

func (r Route) Attrs() []Attr {
	target := Attr{Name: "target", Value: r.PeeringID}
	switch {
	case r.PeeringID == "" && r.PeeringAddress != "":
		target = Attr{Name: "target", Value: r.PeeringAddress, Unknown: true}
	case r.PeeringID == "" && r.Target != "":
		target.Value = r.Target
	}
	return []Attr{
		{Name: "route_table", Value: r.RouteTableID},
		{Name: "destination", Value: r.DestinationCIDR},
		target,
	}
}

// RouteAddress is the address of a route in a cluster's route table.
func RouteAddress(cluster, routeTable, cidr string) string {
	return fmt.Sprintf("%s[%s:%s:%s]", KindRoute, cluster, routeTable, cidr)
}

type desiredRoute struct {
	route Route
	ref   peeringRef
	to    string // the member whose block it is
}

// routes plans, in every managed route table, one route per other member's CIDR block.
func (c *computer) routes() {
	desired := map[string]desiredRoute{} // by route table | destination
	var order []string
	peered := c.networked
	if c.in.TransitGateways != nil {
		peered = nil // routes go to the gateways (tgw_vpc_route)
	}
	tgwKeys := c.tgwKeys()
	for _, a := range peered {
		for _, rt := range a.RouteTableIDs {
			for _, b := range peered {
				if a.Name == b.Name {
					continue
				}
				ref := c.peeringRef[PeeringAddress(a.Name, b.Name)]
				for _, cidr := range b.CIDRs {
					key := rt + "|" + cidr
					desired[key] = desiredRoute{ref: ref, to: b.Name, route: Route{
						Cluster: a.Name, Region: a.Region, VPCID: a.VPCID, RouteTableID: rt,
						DestinationCIDR: cidr, PeeringID: ref.ID, PeeringAddress: ref.Address, Access: a.Access,
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
		owner, _ := c.memberOfVPC(rt.VPCID)
		for _, r := range rt.Routes {
			key := rt.ID + "|" + r.DestinationCIDR
			rec, recorded := records[key]
			ownedByRecord := recorded && r.PeeringID != "" && rec.PeeringID == r.PeeringID
			_, ownedByTarget := c.ownedPeeringAny(r.PeeringID)
			owned := ownedByRecord || ownedByTarget
			observed := Route{Cluster: cluster, Region: rt.Region, VPCID: rt.VPCID, RouteTableID: rt.ID,
				DestinationCIDR: r.DestinationCIDR, PeeringID: r.PeeringID, Target: r.Target, Access: owner.Access}
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
				if ownedByRecord && !tgwKeys[key] { // where the gateway routes, tgw_vpc_route replaces the route in place
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
			case c.meshdGatewayRoute(key, r):
				// The switch back from the Transit Gateway topology: replaced in place once the peering is active,
				// so the traffic never lacks a route; the gateway's objects go after (tgwVPCRoutes).
				c.add(Change{Action: Update, Address: addr, Kind: KindRoute, Before: observed, After: d.route, DependsOn: deps(d.ref.Change),
					Reason: fmt.Sprintf("topology is peering: replace the route through %s", r.Target)})
				c.gatewayMoves[d.route.Cluster] = append(c.gatewayMoves[d.route.Cluster], addr)
				c.gatewayMoves[d.to] = append(c.gatewayMoves[d.to], addr)
				c.gatewayMoved[key] = true
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

func (c *computer) sortedRouteTables() []*model.RouteTable {
	out := make([]*model.RouteTable, 0, len(c.in.Observed.RouteTables))
	for _, rt := range c.in.Observed.RouteTables {
		out = append(out, rt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

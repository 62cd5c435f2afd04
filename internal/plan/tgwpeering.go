package plan

import (
	"fmt"
	"maps"
	"slices"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// The gateways of a Transit Gateway mesh whose members span regions are peered: one peering attachment
// per pair of regions (gateway peering is not transitive), requested from the region that sorts first and
// accepted in the other, and associated on both sides with the route table meshd uses there. A peering
// attachment neither propagates nor learns routes, so each region's route table gets one static route
// (tgw_route) per block of the other regions' members, to the peering attachment of the pair.
//
//	kind        | meshd's when
//	------------+-----------------------------------------------------------------------------------
//	tgw_peering | tagged, or recorded in the state
//	tgw_route   | a static route in meshd's own (tagged) route table, or recorded in the state, or
//	            | (where wanted) its target is a peering attachment of meshd's
const (
	KindTGWPeering Kind = "tgw_peering"
	KindTGWRoute   Kind = "tgw_route"
)

var (
	tgwPeeringTable     = state.Table[TGWRecord]{Name: string(KindTGWPeering)}
	tgwStaticRouteTable = state.Table[TGWRecord]{Name: string(KindTGWRoute)}
)

func init() {
	Register(KindInfo{
		Kind: KindTGWPeering, Address: "tgw_peering[<region>:<peer region>]", Rank: 16,
		First: true, DeletedLast: true, Provider: ProviderAWS,
		Decode: decodeAs[TGWPeering], RepeatHint: hintAWS, IAM: tgwPeeringIAM,
		State: &Records{List: tgwEntries(tgwPeeringTable), Fix: tgwFix(KindTGWPeering, tgwPeeringTable)},
	})
	// Created with the gateways (before the VPC routes that lead to them); deleted before the peering
	// attachments they lead to, which are deleted last.
	Register(KindInfo{
		Kind: KindTGWRoute, Address: "tgw_route[<region>:<destination cidr>]", Rank: 17,
		First: true, Provider: ProviderAWS,
		Decode: decodeAs[TGWRoute], RepeatHint: hintAWS, IAM: tgwRouteIAM,
		State: &Records{List: tgwEntries(tgwStaticRouteTable), Fix: tgwFix(KindTGWRoute, tgwStaticRouteTable)},
	})
}

// TGWPeering is the peering attachment between two regions' gateways: requested by Region's gateway,
// accepted in PeerRegion, associated with the route table meshd uses on each side.
type TGWPeering struct {
	Region                string       `json:"region"`
	PeerRegion            string       `json:"peer_region"`
	GatewayID             string       `json:"gateway_id,omitempty"`
	GatewayAddress        string       `json:"gateway_address,omitempty"`
	PeerGatewayID         string       `json:"peer_gateway_id,omitempty"`
	PeerGatewayAddress    string       `json:"peer_gateway_address,omitempty"`
	RouteTableID          string       `json:"route_table_id,omitempty"`
	RouteTableAddress     string       `json:"route_table_address,omitempty"`
	PeerRouteTableID      string       `json:"peer_route_table_id,omitempty"`
	PeerRouteTableAddress string       `json:"peer_route_table_address,omitempty"`
	ID                    string       `json:"id,omitempty"`
	State                 string       `json:"state,omitempty"`
	Associated            bool         `json:"associated,omitempty"`
	PeerAssociated        bool         `json:"peer_associated,omitempty"`
	PeerAccess            model.Access `json:"peer_access"`
	model.Access
}

func (TGWPeering) Kind() Kind { return KindTGWPeering }

func (p TGWPeering) Attrs() []Attr {
	state := p.State
	if state == "" {
		state = "available"
	}
	return []Attr{
		{Name: "gateway", Value: fmt.Sprintf("%s (%s)", orUnknown(p.GatewayID, p.GatewayAddress), p.Region), Unknown: p.GatewayID == ""},
		{Name: "peer_gateway", Value: fmt.Sprintf("%s (%s)", orUnknown(p.PeerGatewayID, p.PeerGatewayAddress), p.PeerRegion), Unknown: p.PeerGatewayID == ""},
		{Name: "state", Value: state},
		{Name: "associated", Value: fmt.Sprintf("%t / %t", p.Associated, p.PeerAssociated)},
		{Name: "id", Value: p.ID, Unknown: p.ID == ""}}
}

// TGWRoute is a static route in a region's gateway route table to another region's member block,
// through the peering attachment of the two regions.
type TGWRoute struct {
	Region            string `json:"region"`
	RouteTableID      string `json:"route_table_id,omitempty"`
	RouteTableAddress string `json:"route_table_address,omitempty"`
	DestinationCIDR   string `json:"destination_cidr"`
	AttachmentID      string `json:"attachment_id,omitempty"`
	AttachmentAddress string `json:"attachment_address,omitempty"`
	// Blackhole marks an observed route that drops the traffic.
	Blackhole bool `json:"blackhole,omitempty"`
	model.Access
}

func (TGWRoute) Kind() Kind { return KindTGWRoute }

func (r TGWRoute) Attrs() []Attr {
	target := Attr{Name: "target", Value: orUnknown(r.AttachmentID, r.AttachmentAddress), Unknown: r.AttachmentID == "" && r.AttachmentAddress != ""}
	if r.Blackhole {
		target.Value = "blackhole"
	}
	return []Attr{{Name: "route_table", Value: orUnknown(r.RouteTableID, r.RouteTableAddress), Unknown: r.RouteTableID == ""},
		{Name: "destination", Value: r.DestinationCIDR}, target}
}

// TGWPeeringAddress and TGWRouteAddress are the kinds' addresses.
func TGWPeeringAddress(region, peer string) string {
	return fmt.Sprintf("%s[%s:%s]", KindTGWPeering, region, peer)
}
func TGWRouteAddress(region, cidr string) string {
	return fmt.Sprintf("%s[%s:%s]", KindTGWRoute, region, cidr)
}

// tgwPeerRef is how a region pair's routes reach its peering attachment: its ID, or the change that
// makes it.
type tgwPeerRef struct{ id, change string }

// tgwPeerings plans the peering attachment of every pair of the members' regions and removes meshd's
// others. It fills c.tgwPeer (by "region:peer region").
// It returns the deletes, and what tells meshd's peering attachments (for the static routes to them).
func (c *computer) tgwPeerings(regions map[string][]model.Member, refs map[string]*tgwRef) ([]string, func(model.TGWAttachment) bool) {
	obs := c.in.Observed
	recorded, owned := c.ownedAttachments(tgwPeeringTable, "peering")
	c.tgwPeer = map[string]tgwPeerRef{}
	used := map[string]bool{}
	names := slices.Sorted(maps.Keys(regions))
	for i, region := range names {
		for _, peer := range names[i+1:] {
			ref, peerRef := refs[region], refs[peer]
			addr := TGWPeeringAddress(region, peer)
			want := TGWPeering{Region: region, PeerRegion: peer, GatewayID: ref.gateway, GatewayAddress: ref.gatewayChange,
				PeerGatewayID: peerRef.gateway, PeerGatewayAddress: peerRef.gatewayChange, RouteTableID: ref.table,
				RouteTableAddress: ref.tableChange, PeerRouteTableID: peerRef.table, PeerRouteTableAddress: peerRef.tableChange,
				Associated: true, PeerAssociated: true, Access: ref.access, PeerAccess: peerRef.access}
			var mine, foreign *model.TGWAttachment
			for _, id := range slices.Sorted(maps.Keys(obs.TGWAttachments)) {
				a := obs.TGWAttachments[id]
				between := (a.GatewayID == ref.gateway && a.PeerGatewayID == peerRef.gateway) || (a.GatewayID == peerRef.gateway && a.PeerGatewayID == ref.gateway)
				if a.Type != "peering" || a.Gone() || ref.gateway == "" || peerRef.gateway == "" || !between {
					continue
				}
				switch {
				// meshd requests from the region that sorts first: one of its own the other way round was
				// not made by this planner, and is left to the deletes below.
				case owned(a) && mine == nil && a.GatewayID == ref.gateway:
					mine = &a
				case !owned(a) && foreign == nil:
					foreign = &a
				}
			}
			switch {
			case mine != nil:
				used[mine.ID] = true
				want.ID, want.State = mine.ID, "available"
				c.tgwPeer[region+":"+peer] = tgwPeerRef{id: mine.ID}
				if _, rec := recorded[mine.ID]; !rec {
					c.recordTGW(addr, TGWRecord{Region: region, GatewayID: ref.gateway, ID: mine.ID})
				}
				have := want
				have.State = mine.State
				have.Associated = slices.Contains(obs.TGWRouteTables[ref.table].Associations, mine.ID)
				have.PeerAssociated = slices.Contains(obs.TGWRouteTables[peerRef.table].Associations, mine.ID)
				if have.State != "available" || !have.Associated || !have.PeerAssociated || ref.tableChange != "" || peerRef.tableChange != "" {
					reason := "peering attachment not associated with the route table meshd uses on each side"
					if have.State != "available" {
						reason = fmt.Sprintf("peering attachment is %s: accept it in %s", have.State, peer)
					}
					c.add(Change{Action: Update, Address: addr, Kind: KindTGWPeering, Reason: reason, Before: have, After: want,
						DependsOn: deps(ref.tableChange, peerRef.tableChange)})
					c.tgwPeer[region+":"+peer] = tgwPeerRef{id: mine.ID, change: addr}
				}
			case foreign != nil:
				c.plan.Conflicts = append(c.plan.Conflicts, Conflict{Address: addr,
					Summary: fmt.Sprintf("Gateways %s (%s) and %s (%s) are already peered by %s, which meshd did not create", ref.gateway, region, peerRef.gateway, peer, foreign.ID),
					Detail: "meshd routes through a peering attachment of its own, associated with the route tables it uses, and does not change someone else's. " +
						"Delete that peering attachment, or give this mesh other gateways."})
			default:
				c.add(Change{Action: Create, Address: addr, Kind: KindTGWPeering, Reason: "peering attachment missing", After: want,
					DependsOn: deps(ref.gatewayChange, peerRef.gatewayChange, ref.tableChange, peerRef.tableChange)})
				c.tgwPeer[region+":"+peer] = tgwPeerRef{change: addr}
			}
		}
	}
	var dels []string
	for _, id := range slices.Sorted(maps.Keys(obs.TGWAttachments)) {
		a := obs.TGWAttachments[id]
		if used[id] || !owned(a) {
			continue
		}
		addr := TGWPeeringAddress(a.Region, a.PeerRegion)
		if rec, ok := recorded[id]; ok {
			addr = rec
		}
		if c.plan.Find(addr) != nil {
			addr = fmt.Sprintf("%s[%s]", KindTGWPeering, id)
		}
		c.add(Change{Action: Delete, Address: addr, Kind: KindTGWPeering, Reason: c.goneReason(),
			Before: TGWPeering{Region: a.Region, PeerRegion: a.PeerRegion, GatewayID: a.GatewayID, PeerGatewayID: a.PeerGatewayID, ID: id,
				State: a.State, Access: c.tgwAccess(a.Region), PeerAccess: c.tgwAccess(a.PeerRegion)}})
		dels = append(dels, addr)
	}
	return dels, owned
}

// tgwStaticRoutes plans, in each region's route table, a static route per block of the other regions'
// members to the pair's peering attachment, and removes meshd's others. The deletes of routes through a
// peering attachment come before its delete; the routes it makes (c.tgwStatic, by region | block) are
// what the VPC routes to those blocks wait for.
//
// A route's delete also waits for the delete of the attachment of the member whose block it leads to (by
// VPC in attachDeletes): that one waits for every route to the member to be moved off the gateways (the
// switch back to peering), so the traffic to it never meets a gateway without the route on.
func (c *computer) tgwStaticRoutes(regions map[string][]model.Member, refs map[string]*tgwRef, peeringDels []string, ownedPeering func(model.TGWAttachment) bool,
	attachDeletes map[string][]string) {
	obs := c.in.Observed
	type wanted struct {
		addr string
		r    TGWRoute
	}
	want := map[string]wanted{} // route table ID or address | cidr
	var order []string
	for _, region := range slices.Sorted(maps.Keys(regions)) {
		ref := refs[region]
		table := orUnknown(ref.table, ref.tableChange)
		for _, peer := range slices.Sorted(maps.Keys(regions)) {
			if peer == region {
				continue
			}
			pair := region + ":" + peer
			if peer < region {
				pair = peer + ":" + region
			}
			att := c.tgwPeer[pair]
			if att.id == "" && att.change == "" {
				continue // a conflict: nothing to route to
			}
			for _, m := range regions[peer] {
				for _, cidr := range m.CIDRs {
					key := table + "|" + cidr
					if _, dup := want[key]; dup {
						continue
					}
					want[key] = wanted{TGWRouteAddress(region, cidr), TGWRoute{Region: region, RouteTableID: ref.table, RouteTableAddress: ref.tableChange,
						DestinationCIDR: cidr, AttachmentID: att.id, AttachmentAddress: att.change, Access: ref.access}}
					order = append(order, key)
				}
			}
		}
	}
	records := map[string]string{} // route table | cidr -> address
	for _, addr := range tgwStaticRouteTable.Addresses(c.in.State) {
		r, _, _ := tgwStaticRouteTable.Get(c.in.State, addr)
		records[r.RouteTableID+"|"+r.DestinationCIDR] = addr
	}
	vpcOfBlock := map[string]string{}
	for _, m := range slices.Concat(c.in.Members, slices.Collect(maps.Values(c.in.State.Members))) {
		for _, cidr := range m.CIDRs {
			vpcOfBlock[cidr] = m.VPCID
		}
	}
	deletesByAttachment := map[string][]string{}
	seen := map[string]bool{}
	for _, tid := range slices.Sorted(maps.Keys(obs.TGWRouteTables)) {
		t := obs.TGWRouteTables[tid]
		if gone(t.State) {
			continue
		}
		ownTable := model.TaggedBy(t.Tags, c.in.Mesh)
		for _, r := range t.Routes {
			if r.Type != "static" {
				continue
			}
			key := tid + "|" + r.DestinationCIDR
			recAddr, recorded := records[key]
			observed := TGWRoute{Region: t.Region, RouteTableID: tid, DestinationCIDR: r.DestinationCIDR, AttachmentID: r.AttachmentID,
				Blackhole: r.State == "blackhole", Access: c.tgwAccess(t.Region)}
			w, isWanted := want[key]
			mine := ownTable || recorded || (isWanted && ownedPeering(obs.TGWAttachments[r.AttachmentID]))
			if !isWanted {
				if mine {
					addr := TGWRouteAddress(t.Region, r.DestinationCIDR)
					if recorded {
						addr = recAddr
					}
					if c.plan.Find(addr) != nil {
						addr = fmt.Sprintf("%s[%s:%s]", KindTGWRoute, tid, r.DestinationCIDR)
					}
					c.add(Change{Action: Delete, Address: addr, Kind: KindTGWRoute, Reason: c.goneReason(), Before: observed,
						DependsOn: slices.Clone(attachDeletes[vpcOfBlock[r.DestinationCIDR]])})
					deletesByAttachment[r.AttachmentID] = append(deletesByAttachment[r.AttachmentID], addr)
				}
				continue
			}
			seen[key] = true
			switch {
			case w.r.AttachmentID != "" && r.AttachmentID == w.r.AttachmentID && r.State == "active":
				if !recorded && !ownTable {
					c.recordTGW(w.addr, TGWRecord{Region: t.Region, GatewayID: t.GatewayID, ID: r.AttachmentID, RouteTableID: tid, DestinationCIDR: r.DestinationCIDR})
				}
			case mine:
				c.add(Change{Action: Update, Address: w.addr, Kind: KindTGWRoute, Before: observed, After: w.r,
					Reason: fmt.Sprintf("route goes to %s, not the peering attachment of the regions", orUnknown(observed.AttachmentID, "a blackhole")), DependsOn: deps(w.r.AttachmentAddress)})
				c.tgwStatic[t.Region+"|"+r.DestinationCIDR] = w.addr
			default:
				c.plan.Conflicts = append(c.plan.Conflicts, Conflict{Address: w.addr,
					Summary: fmt.Sprintf("Gateway route table %s already routes %s to %s", tid, r.DestinationCIDR, orUnknown(r.AttachmentID, "a blackhole")),
					Detail:  "meshd wants a static route through its peering attachment, but the existing route was not created by meshd, so it is left alone. Remove it, or name another route table with route_table_id."})
			}
		}
	}
	for _, key := range order {
		if seen[key] {
			continue
		}
		w := want[key]
		reason := "route missing"
		if _, ok := records[key]; ok {
			reason = "route was deleted outside meshd"
		}
		c.add(Change{Action: Create, Address: w.addr, Kind: KindTGWRoute, Reason: reason, After: w.r,
			DependsOn: deps(w.r.RouteTableAddress, w.r.AttachmentAddress)})
		c.tgwStatic[w.r.Region+"|"+w.r.DestinationCIDR] = w.addr
	}
	// Records of routes gone.
	for key, addr := range records {
		r, _, _ := tgwStaticRouteTable.Get(c.in.State, addr)
		t, ok := obs.TGWRouteTables[r.RouteTableID]
		if _, stillThere := want[key]; (!ok || !slices.ContainsFunc(t.Routes, func(x model.TGWRoute) bool {
			return x.Type == "static" && x.DestinationCIDR == r.DestinationCIDR
		})) && !stillThere && c.gatewaysRead() {
			c.plan.ForgetTGW = append(c.plan.ForgetTGW, addr)
		}
	}
	// A peering attachment goes after the routes through it.
	for i := range c.plan.Changes {
		if ch := &c.plan.Changes[i]; ch.Kind == KindTGWPeering && ch.Action == Delete && slices.Contains(peeringDels, ch.Address) {
			ch.DependsOn = append(ch.DependsOn, deletesByAttachment[ch.Before.(TGWPeering).ID]...)
		}
	}
}

// IAM: the peering attachment is requested with the first region's access and accepted with the other's.
func tgwPeeringIAM(m *spec.Mesh) []access.Statement {
	if len(tgwRegions(m)) < 2 {
		return nil
	}
	return perTGWRegion(m, func(region, role string) []access.Statement {
		return []access.Statement{
			{Role: role, Why: "Peer the region's gateway with the other regions' (requested from the region that sorts first), tagged with this mesh's name.",
				Actions:   []string{"ec2:CreateTransitGatewayPeeringAttachment"},
				Resources: []string{ec2ARN(region, "transit-gateway/*"), ec2ARN(region, "transit-gateway-attachment/*")}},
			{Role: role, Why: "Tag the peering attachment at creation only.",
				Actions: []string{"ec2:CreateTags"}, Resources: []string{ec2ARN(region, "transit-gateway-attachment/*")},
				Condition: map[string]map[string][]string{"StringEquals": {"aws:RequestTag/" + model.TagMesh: {m.Name},
					"ec2:CreateAction": {"CreateTransitGatewayPeeringAttachment"}}}},
			{Role: role, Why: "Accept the peering attachment another region's gateway requested, and delete meshd's (the executor checks the ID the state records first).",
				Actions:   []string{"ec2:AcceptTransitGatewayPeeringAttachment", "ec2:DeleteTransitGatewayPeeringAttachment"},
				Resources: []string{ec2ARN(region, "transit-gateway-attachment/*")}},
			{Role: role, Why: "Associate the peering attachment with the route table meshd uses in the region.",
				Actions:   []string{"ec2:AssociateTransitGatewayRouteTable"},
				Resources: []string{ec2ARN(region, "transit-gateway-route-table/*"), ec2ARN(region, "transit-gateway-attachment/*")}}}
	})
}

func tgwRouteIAM(m *spec.Mesh) []access.Statement {
	if len(tgwRegions(m)) < 2 {
		return nil
	}
	return perTGWRegion(m, func(region, role string) []access.Statement {
		return []access.Statement{{Role: role,
			Why:       "Static routes in the gateway route table meshd uses, to the other regions' member blocks through the peering attachment.",
			Actions:   []string{"ec2:CreateTransitGatewayRoute", "ec2:ReplaceTransitGatewayRoute", "ec2:DeleteTransitGatewayRoute"},
			Resources: []string{ec2ARN(region, "transit-gateway-route-table/*"), ec2ARN(region, "transit-gateway-attachment/*")}}}
	})
}

package verify

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/meshd-io/meshd/internal/model"
)

// The transit_gateway layer of a mesh with topology = "transit_gateway", in place of the peering layer. From
// a to b, traffic leaves a's VPC through a's VPC attachment to its region's gateway, which routes it by the
// gateway route table that attachment is associated with: straight to b's VPC attachment when b is in the
// same region, else to the peering attachment of the two regions' gateways, where the route table of b's
// gateway associated with that peering attachment routes it to b's VPC attachment. Each hop names its
// object when it fails:
//
//	hop                                   | cause when it fails
//	--------------------------------------+-----------------------------------------------------------------
//	a's (and b's) region gateway          | no transit gateway of the mesh in R; tgw-x is pending
//	a's and b's VPC attachments           | VPC vpc-a (a) has no attachment to tgw-x; tgw-attach-a (...) is pending
//	a's attachment's association          | tgw-attach-a (a's VPC attachment) is associated with no route table of tgw-x
//	a route to each of b's blocks         | tgw-rtb-x has no route to 10.3.0.0/16 (want tgw-attach-b, ...); a blackhole
//	(other region) the gateways' peering  | no peering attachment between tgw-x (R) and tgw-y (S); ... is pending
//	(other region) b's gateway            | the peering attachment's association there, and that table's route to b
//
// The member route tables' routes to the gateway are the routes layer's (routes, with the gateway as the
// target). b's attachment's own association carries the return traffic: the b -> a pair checks it.

// tgwAvailable is the state of a gateway or attachment that carries traffic.
const tgwAvailable = "available"

// gateway checks the pair's path through the gateways.
func (v *verifier) gateway(a, b model.Member) result {
	gwA, cause := v.gatewayOf(a.Region)
	if cause != "" {
		return check([]string{cause})
	}
	var causes []string
	add := func(c string) {
		if c != "" {
			causes = append(causes, c)
		}
	}
	attA, okA, c := v.vpcAttachment(a, gwA)
	add(c)
	var table *model.TGWRouteTable
	if okA {
		table, c = v.associated(attA, gwA, a.Region)
		add(c)
	}
	gwB := gwA
	if b.Region != a.Region {
		if gwB, c = v.gatewayOf(b.Region); c != "" {
			return check(append(causes, c))
		}
	}
	attB, okB, c := v.vpcAttachment(b, gwB)
	add(c)
	if !okB {
		return check(causes) // nothing to route to
	}
	toB := attB.ID + ", " + role(attB, v.in.Members)
	var notes []string
	routesIn := func(t *model.TGWRouteTable, to model.TGWAttachment, toText string) {
		c, n := tgwRoutes(t, b.CIDRs, to, toText)
		causes, notes = append(causes, c...), append(notes, n...)
	}
	done := func() result {
		res := check(causes)
		if res.status == OK {
			res.notes = notes
		}
		return res
	}
	if gwB == gwA {
		if table != nil {
			routesIn(table, attB, toB)
		}
		return done()
	}
	pa, okP, c := v.peeringAttachment(gwA, a.Region, gwB, b.Region)
	add(c)
	if !okP {
		return check(causes)
	}
	if table != nil {
		routesIn(table, pa, pa.ID+", the peering attachment to "+gwB)
	}
	far, c := v.associated(pa, gwB, b.Region)
	add(c)
	if far != nil {
		routesIn(far, attB, toB)
	}
	return done()
}

// gatewayOf is a region's gateway as the planner picks it: the spec's id, else the mesh's own (tagged) live
// gateway. cause says why it carries no traffic ("" when it does); id is "" when there is none at all.
func (v *verifier) gatewayOf(region string) (id, cause string) {
	if named := v.in.TransitGateways.Gateways[region].ID; named != "" {
		g, ok := v.obs.TransitGateways[named]
		switch {
		case !ok:
			return named, fmt.Sprintf("transit gateway %s (the spec's for %s) not found", named, region)
		case !carries(g.State):
			return named, fmt.Sprintf("transit gateway %s is %s (want available)", named, g.State)
		}
		return named, ""
	}
	for _, id := range slices.Sorted(maps.Keys(v.obs.TransitGateways)) {
		g := v.obs.TransitGateways[id]
		if g.Region != region || g.Gone() || !model.TaggedBy(g.Tags, v.in.Mesh) {
			continue
		}
		if !carries(g.State) {
			return id, fmt.Sprintf("transit gateway %s is %s (want available)", id, g.State)
		}
		return id, ""
	}
	return "", fmt.Sprintf("no transit gateway of the mesh in %s", region)
}

// carries reports whether a gateway in this state forwards traffic (a gateway being modified still does).
func carries(state string) bool { return state == tgwAvailable || state == "modifying" }

// meshTable is the gateway route table the planner associates the region's attachments with: the spec's
// route_table_id, else the mesh's own (tagged) one in gw; "" when there is none.
func (v *verifier) meshTable(region, gw string) string {
	if cfg := v.in.TransitGateways.Gateways[region]; cfg.ID == gw && cfg.RouteTableID != "" {
		return cfg.RouteTableID
	}
	for _, id := range slices.Sorted(maps.Keys(v.obs.TGWRouteTables)) {
		t := v.obs.TGWRouteTables[id]
		if t.GatewayID == gw && t.State != "deleting" && t.State != "deleted" && model.TaggedBy(t.Tags, v.in.Mesh) {
			return id
		}
	}
	return ""
}

// vpcAttachment is m's VPC attachment to gw (see pick). ok is false when there is none that is not gone;
// cause says why it carries no traffic.
func (v *verifier) vpcAttachment(m model.Member, gw string) (att model.TGWAttachment, ok bool, cause string) {
	att, found := v.pick(func(a model.TGWAttachment) bool {
		return a.Type == "vpc" && a.ResourceID == m.VPCID && a.GatewayID == gw
	})
	switch {
	case !found:
		return att, false, fmt.Sprintf("VPC %s (%s) has no attachment to %s", m.VPCID, m.Name, gw)
	case att.Gone():
		return att, false, fmt.Sprintf("VPC %s (%s) has no attachment to %s (%s is %s)", m.VPCID, m.Name, gw, att.ID, att.State)
	case att.State != tgwAvailable:
		return att, true, fmt.Sprintf("%s (%s) is %s (want available)", att.ID, role(att, v.in.Members), att.State)
	}
	return att, true, ""
}

// peeringAttachment is the peering attachment of two regions' gateways, as vpcAttachment is a VPC's. It is
// one object on both sides (one ID; moto shares it between the regions), so either gateway may be the one
// the observation recorded it under.
func (v *verifier) peeringAttachment(gwA, regionA, gwB, regionB string) (att model.TGWAttachment, ok bool, cause string) {
	att, found := v.pick(func(a model.TGWAttachment) bool {
		return a.Type == "peering" && (a.GatewayID == gwA && a.PeerGatewayID == gwB || a.GatewayID == gwB && a.PeerGatewayID == gwA)
	})
	none := fmt.Sprintf("no peering attachment between %s (%s) and %s (%s)", gwA, regionA, gwB, regionB)
	switch {
	case !found:
		return att, false, none
	case att.Gone():
		return att, false, fmt.Sprintf("%s (%s is %s)", none, att.ID, att.State)
	case att.State != tgwAvailable:
		return att, true, fmt.Sprintf("%s (%s) is %s (want available)", att.ID, role(att, v.in.Members), att.State)
	}
	return att, true, ""
}

// pick is the attachment to name among those that match: an available one, else a live one, else one that
// ended (AWS keeps deleted attachments listed for a while); by ID within each.
func (v *verifier) pick(match func(model.TGWAttachment) bool) (model.TGWAttachment, bool) {
	rank := func(a model.TGWAttachment) int {
		switch {
		case a.State == tgwAvailable:
			return 0
		case !a.Gone():
			return 1
		}
		return 2
	}
	var cands []model.TGWAttachment
	for _, a := range v.obs.TGWAttachments {
		if match(a) {
			cands = append(cands, a)
		}
	}
	if len(cands) == 0 {
		return model.TGWAttachment{}, false
	}
	return slices.MinFunc(cands, func(x, y model.TGWAttachment) int {
		return cmp.Or(rank(x)-rank(y), strings.Compare(x.ID, y.ID))
	}), true
}

// associated is the route table of gw that att is associated with: the one whose associations list it
// (GetTransitGatewayRouteTableAssociations), else the one the attachment itself names (moto 5.2's
// DescribeTransitGatewayAttachments keeps naming the default table after an association, so the tables'
// lists come first). Only the mesh's tables are observed: an association with another one is a cause.
func (v *verifier) associated(att model.TGWAttachment, gw, region string) (*model.TGWRouteTable, string) {
	for _, id := range slices.Sorted(maps.Keys(v.obs.TGWRouteTables)) {
		if t := v.obs.TGWRouteTables[id]; t.GatewayID == gw && slices.Contains(t.Associations, att.ID) {
			return &t, ""
		}
	}
	if t, ok := v.obs.TGWRouteTables[att.RouteTableID]; ok && t.GatewayID == gw {
		return &t, ""
	}
	want := ""
	if id := v.meshTable(region, gw); id != "" {
		want = " (want " + id + ")"
	}
	if att.RouteTableID != "" && att.GatewayID == gw {
		return nil, fmt.Sprintf("%s (%s) is associated with %s, not the mesh's route table of %s%s", att.ID, role(att, v.in.Members), att.RouteTableID, gw, want)
	}
	return nil, fmt.Sprintf("%s (%s) is associated with no route table of %s%s", att.ID, role(att, v.in.Members), gw, want)
}

// role says what an attachment is for: "tidb-1's VPC attachment", "the peering attachment of tgw-1 and tgw-3".
func role(att model.TGWAttachment, members []model.Member) string {
	if att.Type == "peering" {
		return fmt.Sprintf("the peering attachment of %s and %s", att.GatewayID, att.PeerGatewayID)
	}
	for _, m := range members {
		if m.VPCID == att.ResourceID {
			return m.Name + "'s VPC attachment"
		}
	}
	return "the VPC attachment of " + att.ResourceID
}

// tgwRoutes checks that gateway route table t sends each of blocks to attachment to (toText names it in the
// causes), as routes checks a VPC's table (blockCauses). A VPC attachment's routes are usually propagated:
// when no route holds a block but the attachment propagates to t, the block counts as routed to it, with a
// note (moto 5.2 enables propagations but lists no propagated routes; AWS lists one per VPC block), and a
// missing route to an attachment that does not propagate says so.
func tgwRoutes(t *model.TGWRouteTable, blocks []string, to model.TGWAttachment, toText string) (causes, notes []string) {
	hops := make([]hop, len(t.Routes))
	dests := make([]string, len(t.Routes))
	for i, r := range t.Routes {
		hops[i] = hop{dest: r.DestinationCIDR, target: r.AttachmentID, blackhole: r.State == "blackhole" || r.AttachmentID == ""}
		dests[i] = r.DestinationCIDR
	}
	hint := ""
	if to.Type == "vpc" {
		if !slices.Contains(t.Propagations, to.ID) {
			hint = "; it does not propagate to " + t.ID
		} else {
			for _, cidr := range blocks {
				if block, err := netip.ParsePrefix(cidr); err == nil {
					if i, _ := carrying(dests, block); i < 0 {
						hops = append(hops, hop{dest: cidr, target: to.ID})
						notes = append(notes, fmt.Sprintf("%s lists no route to %s, but %s propagates to it: counted as its propagated route", t.ID, cidr, to.ID))
					}
				}
			}
		}
	}
	return blockCauses(t.ID, hops, blocks, to.ID, toText, hint), notes
}

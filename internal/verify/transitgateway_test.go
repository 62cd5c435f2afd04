package verify

import (
	"slices"
	"strings"
	"testing"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
)

// tgwWorld is world() meshed through Transit Gateways instead of pcx-13 (which is gone): each member's VPC
// attached to its region's gateway (tagged as the mesh's), associated with and propagating to the mesh's
// gateway route table, and every member route table routing the other's block to the gateway. With
// crossRegion, tidb-1 (us-west-1, tgw-1) and tidb-3 (us-east-1, tgw-3) reach each other through the
// peering attachment tgw-attach-p13, recorded under tgw-3's side (one ID for both, as AWS and moto report
// it), associated with both tables, and a static route to the other's block across it in each table; else
// both are in us-west-1 behind tgw-1. The attachments name a default table as moto does after an
// association (model.TGWRouteTable.Associations is what counts).
func tgwWorld(crossRegion bool) Input {
	in := world()
	o := in.Observed
	delete(o.Peerings, "pcx-13")
	mesh := map[string]string{model.TagMesh: "tidb"}
	gwOf := map[string]string{"tidb-1": "tgw-1", "tidb-3": "tgw-1"}
	if crossRegion {
		gwOf["tidb-3"] = "tgw-3"
	} else {
		in.Members[1].Region = "us-west-1"
	}
	o.TransitGateways, o.TGWAttachments, o.TGWRouteTables = map[string]model.TransitGateway{}, map[string]model.TGWAttachment{}, map[string]model.TGWRouteTable{}
	for i, m := range in.Members {
		gw, other := gwOf[m.Name], in.Members[1-i]
		o.TransitGateways[gw] = model.TransitGateway{ID: gw, Region: m.Region, State: "available", Tags: mesh}
		att := "tgw-attach-" + strings.TrimPrefix(m.Name, "tidb-")
		o.TGWAttachments[att] = model.TGWAttachment{ID: att, GatewayID: gw, Region: m.Region, Type: "vpc", ResourceID: m.VPCID,
			State: "available", RouteTableID: "tgw-rtb-default"}
		rt := "tgw-rtb-" + strings.TrimPrefix(gw, "tgw-")
		t := o.TGWRouteTables[rt]
		t.ID, t.GatewayID, t.Region, t.State, t.Tags = rt, gw, m.Region, "available", mesh
		t.Routes = append(t.Routes, model.TGWRoute{DestinationCIDR: m.CIDRs[0], AttachmentID: att, Type: "propagated", State: "active"})
		t.Associations = append(t.Associations, att)
		t.Propagations = append(t.Propagations, att)
		if crossRegion {
			t.Routes = append(t.Routes, model.TGWRoute{DestinationCIDR: other.CIDRs[0], AttachmentID: "tgw-attach-p13", Type: "static", State: "active"})
			t.Associations = append(t.Associations, "tgw-attach-p13")
		}
		o.TGWRouteTables[rt] = t
		for _, id := range m.RouteTableIDs {
			for j, r := range o.RouteTables[id].Routes {
				if r.PeeringID != "" {
					o.RouteTables[id].Routes[j] = model.Route{DestinationCIDR: r.DestinationCIDR, Target: gw, State: "active"}
				}
			}
		}
	}
	if crossRegion {
		o.TGWAttachments["tgw-attach-p13"] = model.TGWAttachment{ID: "tgw-attach-p13", GatewayID: "tgw-3", Region: "us-east-1", Type: "peering",
			State: "available", PeerGatewayID: "tgw-1", PeerRegion: "us-west-1"}
	}
	in.TransitGateways = &plan.TGWInput{Gateways: map[string]plan.TGWConfig{}}
	return in
}

func TestTransitGatewayMeshPasses(t *testing.T) {
	named := tgwWorld(false)
	// The network team's gateway and route table, named in the spec and not tagged as the mesh's.
	g := named.Observed.TransitGateways["tgw-1"]
	g.Tags = nil
	named.Observed.TransitGateways["tgw-1"] = g
	rt := named.Observed.TGWRouteTables["tgw-rtb-1"]
	rt.Tags = nil
	named.Observed.TGWRouteTables["tgw-rtb-1"] = rt
	named.TransitGateways.Gateways["us-west-1"] = plan.TGWConfig{ID: "tgw-1", RouteTableID: "tgw-rtb-1"}
	summary := tgwWorld(false)
	for _, id := range []string{"rtb-1main", "rtb-1priv"} {
		rt := summary.Observed.RouteTables[id]
		rt.Routes[len(rt.Routes)-1].DestinationCIDR = "10.0.0.0/8" // summary_cidrs: the remote block within a summary
	}
	for name, in := range map[string]Input{"same region": tgwWorld(false), "across regions": tgwWorld(true), "named gateway": named, "summary route": summary} {
		t.Run(name, func(t *testing.T) {
			wantAllOK(t, Verify(in), GatewayLayers)
		})
	}
}

// TestTransitGatewayFailureNamesItsObject: one broken hop of the gateway path at a time gives exactly the
// failure lines naming it.
func TestTransitGatewayFailureNamesItsObject(t *testing.T) {
	table := func(in *Input, id string, f func(*model.TGWRouteTable)) {
		rt := in.Observed.TGWRouteTables[id]
		f(&rt)
		in.Observed.TGWRouteTables[id] = rt
	}
	dropRoute := func(in *Input, id, cidr string) {
		table(in, id, func(rt *model.TGWRouteTable) {
			rt.Routes = slices.DeleteFunc(rt.Routes, func(r model.TGWRoute) bool { return r.DestinationCIDR == cidr })
		})
	}
	attachment := func(in *Input, id string, f func(*model.TGWAttachment)) {
		a := in.Observed.TGWAttachments[id]
		f(&a)
		in.Observed.TGWAttachments[id] = a
	}
	for _, tc := range []struct {
		name        string
		crossRegion bool
		break_      func(*Input)
		want        []string
		skipped     []string // "from>to:layer" not checked because of the failure
	}{
		{"missing attachment", false, func(in *Input) {
			// Deleted with its propagation, association and propagated route, as AWS does.
			delete(in.Observed.TGWAttachments, "tgw-attach-1")
			table(in, "tgw-rtb-1", func(rt *model.TGWRouteTable) {
				rt.Associations, rt.Propagations = []string{"tgw-attach-3"}, []string{"tgw-attach-3"}
			})
			dropRoute(in, "tgw-rtb-1", "10.1.0.0/16")
		}, []string{
			"tidb-1 -> tidb-3 transit_gateway: VPC vpc-1 (tidb-1) has no attachment to tgw-1",
			"tidb-3 -> tidb-1 transit_gateway: VPC vpc-1 (tidb-1) has no attachment to tgw-1",
		}, nil},
		{"deleted attachment still listed", false, func(in *Input) {
			attachment(in, "tgw-attach-3", func(a *model.TGWAttachment) { a.State = "deleted" })
		}, []string{
			"tidb-1 -> tidb-3 transit_gateway: VPC vpc-3 (tidb-3) has no attachment to tgw-1 (tgw-attach-3 is deleted)",
			"tidb-3 -> tidb-1 transit_gateway: VPC vpc-3 (tidb-3) has no attachment to tgw-1 (tgw-attach-3 is deleted)",
		}, nil},
		{"pending attachment", false, func(in *Input) {
			attachment(in, "tgw-attach-3", func(a *model.TGWAttachment) { a.State = "pending" })
		}, []string{
			"tidb-1 -> tidb-3 transit_gateway: tgw-attach-3 (tidb-3's VPC attachment) is pending (want available)",
			"tidb-3 -> tidb-1 transit_gateway: tgw-attach-3 (tidb-3's VPC attachment) is pending (want available)",
		}, nil},
		{"unassociated attachment", false, func(in *Input) {
			table(in, "tgw-rtb-1", func(rt *model.TGWRouteTable) {
				rt.Associations = []string{"tgw-attach-3"}
			})
			attachment(in, "tgw-attach-1", func(a *model.TGWAttachment) { a.RouteTableID = "" })
		}, []string{"tidb-1 -> tidb-3 transit_gateway: tgw-attach-1 (tidb-1's VPC attachment) is associated with no route table of tgw-1 (want tgw-rtb-1)"}, nil},
		{"attachment associated with another table", false, func(in *Input) {
			table(in, "tgw-rtb-1", func(rt *model.TGWRouteTable) {
				rt.Associations = []string{"tgw-attach-3"}
			})
		}, []string{"tidb-1 -> tidb-3 transit_gateway: tgw-attach-1 (tidb-1's VPC attachment) is associated with tgw-rtb-default, not the mesh's route table of tgw-1 (want tgw-rtb-1)"}, nil},
		{"blackhole gateway route", false, func(in *Input) {
			table(in, "tgw-rtb-1", func(rt *model.TGWRouteTable) {
				rt.Routes = append(rt.Routes, model.TGWRoute{DestinationCIDR: "10.3.0.0/16", Type: "static", State: "blackhole"})
				rt.Routes = slices.DeleteFunc(rt.Routes, func(r model.TGWRoute) bool { return r.Type == "propagated" && r.DestinationCIDR == "10.3.0.0/16" })
			})
		}, []string{"tidb-1 -> tidb-3 transit_gateway: tgw-rtb-1's route to 10.3.0.0/16 is a blackhole (want tgw-attach-3, tidb-3's VPC attachment, active)"}, nil},
		{"propagation disabled", false, func(in *Input) {
			table(in, "tgw-rtb-1", func(rt *model.TGWRouteTable) {
				rt.Propagations = []string{"tgw-attach-1"}
			})
			dropRoute(in, "tgw-rtb-1", "10.3.0.0/16")
		}, []string{"tidb-1 -> tidb-3 transit_gateway: tgw-rtb-1 has no route to 10.3.0.0/16 (want tgw-attach-3, tidb-3's VPC attachment; it does not propagate to tgw-rtb-1)"}, nil},
		{"more specific gateway route elsewhere", false, func(in *Input) {
			table(in, "tgw-rtb-1", func(rt *model.TGWRouteTable) {
				rt.Routes = append(rt.Routes, model.TGWRoute{DestinationCIDR: "10.3.4.0/24", AttachmentID: "tgw-attach-9", Type: "static", State: "active"})
			})
		}, []string{"tidb-1 -> tidb-3 transit_gateway: tgw-rtb-1 sends 10.3.4.0/24, part of 10.3.0.0/16, to tgw-attach-9 (want tgw-attach-3, tidb-3's VPC attachment)"}, nil},
		{"VPC route to a peering instead of the gateway", false, func(in *Input) {
			in.Observed.RouteTables["rtb-1priv"].Routes[1] = model.Route{DestinationCIDR: "10.3.0.0/16", PeeringID: "pcx-13", State: "active"}
		}, []string{"tidb-1 -> tidb-3 routes: rtb-1priv routes 10.3.0.0/16 to pcx-13 (want tgw-1)"}, nil},
		{"deleted VPC route", false, func(in *Input) {
			rt := in.Observed.RouteTables["rtb-3main"]
			rt.Routes = rt.Routes[:2]
		}, []string{"tidb-3 -> tidb-1 routes: rtb-3main has no route to 10.1.0.0/16 (want tgw-1); 0.0.0.0/0 goes to igw-tidb-3"}, nil},
		{"blackhole VPC route", false, func(in *Input) {
			in.Observed.RouteTables["rtb-1priv"].Routes[1].State = "blackhole"
		}, []string{"tidb-1 -> tidb-3 routes: rtb-1priv's route to 10.3.0.0/16 through tgw-1 is a blackhole (want tgw-1, active)"}, nil},
		{"no gateway", false, func(in *Input) {
			g := in.Observed.TransitGateways["tgw-1"]
			g.State = "deleted"
			in.Observed.TransitGateways["tgw-1"] = g
		}, []string{
			"tidb-1 -> tidb-3 transit_gateway: no transit gateway of the mesh in us-west-1",
			"tidb-3 -> tidb-1 transit_gateway: no transit gateway of the mesh in us-west-1",
		}, []string{"tidb-1>tidb-3:routes", "tidb-3>tidb-1:routes"}},
		{"other region's VPC route to the wrong gateway", true, func(in *Input) {
			in.Observed.RouteTables["rtb-3priv"].Routes[1].Target = "tgw-1"
		}, []string{"tidb-3 -> tidb-1 routes: rtb-3priv routes 10.1.0.0/16 to tgw-1 (want tgw-3)"}, nil},
		{"no peering attachment", true, func(in *Input) {
			delete(in.Observed.TGWAttachments, "tgw-attach-p13")
		}, []string{
			"tidb-1 -> tidb-3 transit_gateway: no peering attachment between tgw-1 (us-west-1) and tgw-3 (us-east-1)",
			"tidb-3 -> tidb-1 transit_gateway: no peering attachment between tgw-3 (us-east-1) and tgw-1 (us-west-1)",
		}, nil},
		{"peering attachment pending acceptance", true, func(in *Input) {
			attachment(in, "tgw-attach-p13", func(a *model.TGWAttachment) { a.State = "pendingAcceptance" })
		}, []string{
			"tidb-1 -> tidb-3 transit_gateway: tgw-attach-p13 (the peering attachment of tgw-3 and tgw-1) is pendingAcceptance (want available)",
			"tidb-3 -> tidb-1 transit_gateway: tgw-attach-p13 (the peering attachment of tgw-3 and tgw-1) is pendingAcceptance (want available)",
		}, nil},
		{"no route across the peering attachment", true, func(in *Input) {
			dropRoute(in, "tgw-rtb-1", "10.3.0.0/16")
		}, []string{"tidb-1 -> tidb-3 transit_gateway: tgw-rtb-1 has no route to 10.3.0.0/16 (want tgw-attach-p13, the peering attachment to tgw-3)"}, nil},
		{"peering attachment unassociated on the far side", true, func(in *Input) {
			table(in, "tgw-rtb-3", func(rt *model.TGWRouteTable) {
				rt.Associations = []string{"tgw-attach-3"}
			})
		}, []string{"tidb-1 -> tidb-3 transit_gateway: tgw-attach-p13 (the peering attachment of tgw-3 and tgw-1) is associated with no route table of tgw-3 (want tgw-rtb-3)"}, nil},
		{"far side blackhole", true, func(in *Input) {
			table(in, "tgw-rtb-3", func(rt *model.TGWRouteTable) {
				rt.Routes[0].State = "blackhole"
			})
		}, []string{"tidb-1 -> tidb-3 transit_gateway: tgw-rtb-3's route to 10.3.0.0/16 through tgw-attach-3 is a blackhole (want tgw-attach-3, tidb-3's VPC attachment, active)"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tgwWorld(tc.crossRegion)
			if r := Verify(in); !r.OK() {
				t.Fatalf("unbroken world fails: %v", r.Failures())
			}
			tc.break_(&in)
			r := Verify(in)
			if got := r.Failures(); !slices.Equal(got, tc.want) {
				t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			for _, v := range r.Verdicts {
				if key := v.From + ">" + v.To + ":" + string(v.Layer); v.Status == Skipped && !slices.Contains(tc.skipped, key) {
					t.Errorf("%s skipped: %v", key, v.Causes)
				}
			}
		})
	}
}

// TestTransitGatewayExternalMember: a pair with an external member leaves the gateway layer unmanaged, as
// it does the peering layer.
func TestTransitGatewayExternalMember(t *testing.T) {
	in := tgwWorld(false)
	in.Members[1].External = true
	delete(in.Observed.TGWAttachments, "tgw-attach-3")
	for _, l := range []Layer{LayerGateway, LayerRoutes} {
		if v := Verify(in).Get("tidb-1", "tidb-3", l); v.Status != Unmanaged {
			t.Errorf("%s: %s %v, want unmanaged", l, v.Status, v.Causes)
		}
	}
}

// TestPropagationStandsForItsRoute: a VPC attachment propagating to the table counts as a route to its
// blocks when the table lists none (moto lists no propagated routes), with a note saying so; once the
// propagation is gone, the missing route fails.
func TestPropagationStandsForItsRoute(t *testing.T) {
	in := tgwWorld(false)
	rt := in.Observed.TGWRouteTables["tgw-rtb-1"]
	rt.Routes = nil
	in.Observed.TGWRouteTables["tgw-rtb-1"] = rt
	r := Verify(in)
	wantAllOK(t, r, GatewayLayers)
	want := []string{
		"tidb-1 -> tidb-3 transit_gateway: tgw-rtb-1 lists no route to 10.3.0.0/16, but tgw-attach-3 propagates to it: counted as its propagated route",
		"tidb-3 -> tidb-1 transit_gateway: tgw-rtb-1 lists no route to 10.1.0.0/16, but tgw-attach-1 propagates to it: counted as its propagated route",
	}
	if got := r.Notes(); !slices.Equal(got, want) {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rt.Propagations = []string{"tgw-attach-1"}
	in.Observed.TGWRouteTables["tgw-rtb-1"] = rt
	want = []string{"tidb-1 -> tidb-3 transit_gateway: tgw-rtb-1 has no route to 10.3.0.0/16 (want tgw-attach-3, tidb-3's VPC attachment; it does not propagate to tgw-rtb-1)"}
	if got := Verify(in).Failures(); !slices.Equal(got, want) {
		t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

package plantest

import (
	"context"
	"fmt"
	"slices"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
)

// The Transit Gateway kinds in the world (topology = "transit_gateway"): gateways, their route tables and
// VPC attachments in w.Observed, the VPC routes to a gateway in the members' route tables, as AWS keeps
// them (a deleted gateway or route table stays listed as "deleted"; a deleted attachment goes).

// TopologyKinds are the kinds a topology plans; the others' planners make no change under it.
func TopologyKinds(transitGateway bool) map[plan.Kind]bool {
	if transitGateway {
		return map[plan.Kind]bool{plan.KindPeering: false, plan.KindRoute: false}
	}
	return map[plan.Kind]bool{plan.KindTransitGateway: false, plan.KindTGWRouteTable: false, plan.KindTGWAttachment: false, plan.KindTGWVPCRoute: false,
		plan.KindTGWPeering: false, plan.KindTGWRoute: false}
}

type tgwExecutor struct{ w *World }

func init() {
	executors.Register(func(w *World) apply.Executor { return tgwExecutor{w} }, plan.KindTransitGateway, plan.KindTGWRouteTable, plan.KindTGWAttachment, plan.KindTGWVPCRoute,
		plan.KindTGWPeering, plan.KindTGWRoute)
}

func (e tgwExecutor) Execute(_ context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	obs := w.Observed
	tags := map[string]string{model.TagMesh: w.Mesh, model.TagID: ch.Address}
	id := func(given, address string) string {
		if given != "" {
			return given
		}
		got, _ := known(address)
		return got
	}
	switch r := pick(ch).(type) {
	case plan.TransitGateway:
		if ch.Action == plan.Delete {
			g := obs.TransitGateways[r.ID]
			g.State = "deleted"
			obs.TransitGateways[r.ID] = g
			return apply.Outcome{}, nil
		}
		gid := w.id("tgw", ch.Address)
		put(&obs.TransitGateways, gid, model.TransitGateway{ID: gid, Region: r.Region, State: "available", Tags: tags})
		return apply.Outcome{ID: gid}, nil
	case plan.TGWRouteTable:
		if ch.Action == plan.Delete {
			t := obs.TGWRouteTables[r.ID]
			t.State = "deleted"
			obs.TGWRouteTables[r.ID] = t
			return apply.Outcome{}, nil
		}
		tid := w.id("tgw-rtb", ch.Address)
		put(&obs.TGWRouteTables, tid, model.TGWRouteTable{ID: tid, GatewayID: id(r.GatewayID, r.GatewayAddress), Region: r.Region, State: "available", Tags: tags})
		return apply.Outcome{ID: tid}, nil
	case plan.TGWAttachment:
		if ch.Action == plan.Delete {
			w.DeleteTGWAttachment(r.ID)
			return apply.Outcome{Record: func(st *state.State) { plan.DropTGWRecord(st, ch.Kind, ch.Address) }}, nil
		}
		aid, gw, table := r.ID, id(r.GatewayID, r.GatewayAddress), id(r.RouteTableID, r.RouteTableAddress)
		if aid == "" {
			aid = w.id("tgw-attach", ch.Address)
			put(&obs.TGWAttachments, aid, model.TGWAttachment{ID: aid, GatewayID: gw, Region: r.Region, Type: "vpc", ResourceID: r.VPCID, State: "available", Tags: tags})
		}
		rt, ok := obs.TGWRouteTables[table]
		if !ok {
			return apply.Outcome{}, fmt.Errorf("no gateway route table %s", table)
		}
		if !slices.Contains(rt.Associations, aid) {
			rt.Associations = append(rt.Associations, aid)
		}
		if !slices.Contains(rt.Propagations, aid) {
			rt.Propagations = append(rt.Propagations, aid)
		}
		obs.TGWRouteTables[table] = rt
		rec := plan.TGWRecord{Region: r.Region, VPCID: r.VPCID, GatewayID: gw, ID: aid}
		return apply.Outcome{ID: aid, Record: func(st *state.State) { plan.SetTGWRecord(st, ch.Kind, ch.Address, rec) }}, nil
	case plan.TGWVPCRoute:
		rt := obs.RouteTables[r.RouteTableID]
		if rt == nil {
			return apply.Outcome{}, fmt.Errorf("no route table %s", r.RouteTableID)
		}
		if ch.Action == plan.Delete {
			w.DeleteRoute(r.RouteTableID, r.DestinationCIDR)
			return apply.Outcome{Record: func(st *state.State) { plan.DropTGWRecord(st, ch.Kind, ch.Address) }}, nil
		}
		gw := id(r.GatewayID, r.GatewayAddress)
		route := model.Route{DestinationCIDR: r.DestinationCIDR, Target: gw, State: "active"}
		i := slices.IndexFunc(rt.Routes, func(x model.Route) bool { return x.DestinationCIDR == r.DestinationCIDR })
		switch {
		case ch.Action == plan.Create && i >= 0:
			return apply.Outcome{}, fmt.Errorf("RouteAlreadyExists: %s in %s", r.DestinationCIDR, r.RouteTableID)
		case ch.Action == plan.Create:
			rt.Routes = append(rt.Routes, route)
		case i < 0:
			return apply.Outcome{}, fmt.Errorf("InvalidRoute.NotFound: %s in %s", r.DestinationCIDR, r.RouteTableID)
		default:
			rt.Routes[i] = route
		}
		rec := plan.TGWRecord{Region: r.Region, VPCID: r.VPCID, GatewayID: gw, RouteTableID: r.RouteTableID, DestinationCIDR: r.DestinationCIDR}
		return apply.Outcome{Record: func(st *state.State) {
			plan.SetTGWRecord(st, ch.Kind, ch.Address, rec)
			st.RemoveRoute(r.RouteTableID, r.DestinationCIDR)
		}}, nil
	case plan.TGWPeering:
		if ch.Action == plan.Delete {
			w.DeleteTGWAttachment(r.ID)
			return apply.Outcome{Record: func(st *state.State) { plan.DropTGWRecord(st, ch.Kind, ch.Address) }}, nil
		}
		aid, gw, peer := r.ID, id(r.GatewayID, r.GatewayAddress), id(r.PeerGatewayID, r.PeerGatewayAddress)
		if aid == "" {
			aid = w.id("tgw-attach", ch.Address)
		}
		put(&obs.TGWAttachments, aid, model.TGWAttachment{ID: aid, GatewayID: gw, Region: r.Region, Type: "peering", ResourceID: peer,
			State: "available", PeerGatewayID: peer, PeerRegion: r.PeerRegion, Tags: tags})
		for _, table := range []string{id(r.RouteTableID, r.RouteTableAddress), id(r.PeerRouteTableID, r.PeerRouteTableAddress)} {
			rt, ok := obs.TGWRouteTables[table]
			if !ok {
				return apply.Outcome{}, fmt.Errorf("no gateway route table %s", table)
			}
			if !slices.Contains(rt.Associations, aid) {
				rt.Associations = append(rt.Associations, aid)
			}
			obs.TGWRouteTables[table] = rt
		}
		rec := plan.TGWRecord{Region: r.Region, GatewayID: gw, ID: aid}
		return apply.Outcome{ID: aid, Record: func(st *state.State) { plan.SetTGWRecord(st, ch.Kind, ch.Address, rec) }}, nil
	case plan.TGWRoute:
		table := id(r.RouteTableID, r.RouteTableAddress)
		rt, ok := obs.TGWRouteTables[table]
		if !ok {
			return apply.Outcome{}, fmt.Errorf("no gateway route table %s", table)
		}
		i := slices.IndexFunc(rt.Routes, func(x model.TGWRoute) bool { return x.DestinationCIDR == r.DestinationCIDR && x.Type == "static" })
		if ch.Action == plan.Delete {
			if i >= 0 {
				rt.Routes = slices.Delete(rt.Routes, i, i+1)
				obs.TGWRouteTables[table] = rt
			}
			return apply.Outcome{Record: func(st *state.State) { plan.DropTGWRecord(st, ch.Kind, ch.Address) }}, nil
		}
		att := id(r.AttachmentID, r.AttachmentAddress)
		route := model.TGWRoute{DestinationCIDR: r.DestinationCIDR, AttachmentID: att, Type: "static", State: "active"}
		switch {
		case ch.Action == plan.Create && i >= 0:
			return apply.Outcome{}, fmt.Errorf("RouteAlreadyExists: %s in %s", r.DestinationCIDR, table)
		case i >= 0:
			rt.Routes[i] = route
		default:
			rt.Routes = append(rt.Routes, route)
		}
		obs.TGWRouteTables[table] = rt
		rec := plan.TGWRecord{Region: r.Region, ID: att, RouteTableID: table, DestinationCIDR: r.DestinationCIDR}
		return apply.Outcome{Record: func(st *state.State) { plan.SetTGWRecord(st, ch.Kind, ch.Address, rec) }}, nil
	}
	return apply.Outcome{}, fmt.Errorf("unsupported change %s %s", ch.Action, ch.Address)
}

func put[V any](m *map[string]V, key string, v V) {
	if *m == nil {
		*m = map[string]V{}
	}
	(*m)[key] = v
}

// DeleteTGWAttachment deletes an attachment, as AWS does: its associations and propagations go with it,
// and the static routes to it turn into blackholes.
func (w *World) DeleteTGWAttachment(id string) {
	delete(w.Observed.TGWAttachments, id)
	for tid, rt := range w.Observed.TGWRouteTables {
		rt.Associations = slices.DeleteFunc(rt.Associations, func(a string) bool { return a == id })
		rt.Propagations = slices.DeleteFunc(rt.Propagations, func(a string) bool { return a == id })
		routes := make([]model.TGWRoute, 0, len(rt.Routes))
		for _, r := range rt.Routes {
			if r.AttachmentID == id && r.Type == "static" {
				r.State = "blackhole"
			}
			routes = append(routes, r)
		}
		rt.Routes = routes
		w.Observed.TGWRouteTables[tid] = rt
	}
}

// deleteAttachmentOf deletes the attachment (VPC or peering) a change made.
func deleteAttachmentOf(w *World, ch plan.Change) {
	for id, a := range w.Observed.TGWAttachments {
		if a.Tags[model.TagID] == ch.Address {
			w.DeleteTGWAttachment(id)
		}
	}
}

// TGWDrifts undo a change of each Transit Gateway kind: the gateway or its route table deleted (with what
// AWS deletes along), the attachment deleted, the VPC route deleted.
var TGWDrifts = map[plan.Kind]func(w *World, ch plan.Change){
	plan.KindTransitGateway: func(w *World, ch plan.Change) {
		for id, g := range w.Observed.TransitGateways {
			if g.Tags[model.TagID] == ch.Address && !g.Gone() {
				for aid, a := range w.Observed.TGWAttachments {
					if a.GatewayID == id {
						w.DeleteTGWAttachment(aid)
					}
				}
				for tid, t := range w.Observed.TGWRouteTables {
					if t.GatewayID == id {
						t.State = "deleted"
						w.Observed.TGWRouteTables[tid] = t
					}
				}
				g.State = "deleted"
				w.Observed.TransitGateways[id] = g
			}
		}
	},
	plan.KindTGWRouteTable: func(w *World, ch plan.Change) {
		for id, t := range w.Observed.TGWRouteTables {
			if t.Tags[model.TagID] == ch.Address && t.State != "deleted" {
				t.State, t.Associations, t.Propagations = "deleted", nil, nil
				w.Observed.TGWRouteTables[id] = t
			}
		}
	},
	plan.KindTGWAttachment: deleteAttachmentOf,
	plan.KindTGWVPCRoute: func(w *World, ch plan.Change) {
		r := ch.After.(plan.TGWVPCRoute)
		w.DeleteRoute(r.RouteTableID, r.DestinationCIDR)
	},
	plan.KindTGWPeering: deleteAttachmentOf,
	plan.KindTGWRoute: func(w *World, ch plan.Change) {
		r := ch.After.(plan.TGWRoute)
		for tid, rt := range w.Observed.TGWRouteTables {
			if rt.Region == r.Region {
				rt.Routes = slices.DeleteFunc(rt.Routes, func(x model.TGWRoute) bool { return x.DestinationCIDR == r.DestinationCIDR && x.Type == "static" })
				w.Observed.TGWRouteTables[tid] = rt
			}
		}
	},
}

// PathProblems lists, for every member route table, the other members' blocks it does not route somewhere
// that leads there: an active peering, or a live gateway whose route table routes the block on (the
// block's VPC attachment propagating to it, or an active static route to a live attachment). Tests of the
// switch of topology call it after each change of an apply.
func (w *World) PathProblems(members []model.Member) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	obs := w.Observed
	attachmentOf := map[string]string{} // VPC -> its live attachment
	for id, a := range obs.TGWAttachments {
		if a.Type == "vpc" && !a.Gone() {
			attachmentOf[a.ResourceID] = id
		}
	}
	gatewayRoutes := func(gw, cidr, vpc string) bool {
		for _, t := range obs.TGWRouteTables {
			if t.GatewayID != gw || t.State == "deleted" {
				continue
			}
			if att := attachmentOf[vpc]; att != "" && slices.Contains(t.Propagations, att) {
				return true
			}
			for _, r := range t.Routes {
				if a, live := obs.TGWAttachments[r.AttachmentID]; r.DestinationCIDR == cidr && r.State == "active" && live && !a.Gone() {
					return true
				}
			}
		}
		return false
	}
	var out []string
	for _, a := range members {
		for _, table := range a.RouteTableIDs {
			for _, b := range members {
				if b.Name == a.Name {
					continue
				}
				for _, cidr := range b.CIDRs {
					i := slices.IndexFunc(obs.RouteTables[table].Routes, func(r model.Route) bool { return r.DestinationCIDR == cidr })
					if i < 0 {
						out = append(out, fmt.Sprintf("%s has no route to %s", table, cidr))
						continue
					}
					r := obs.RouteTables[table].Routes[i]
					g, gw := obs.TransitGateways[r.Target]
					switch {
					case r.State == "blackhole":
						out = append(out, fmt.Sprintf("%s's route to %s is a blackhole", table, cidr))
					case r.PeeringID != "" && obs.Peerings[r.PeeringID].Status != model.PeeringActive:
						out = append(out, fmt.Sprintf("%s routes %s to %s, not active", table, cidr, r.PeeringID))
					case r.PeeringID == "" && (!gw || g.Gone() || !gatewayRoutes(r.Target, cidr, b.VPCID)):
						out = append(out, fmt.Sprintf("%s routes %s to %s, which does not route it on", table, cidr, r.Target))
					}
				}
			}
		}
	}
	return out
}

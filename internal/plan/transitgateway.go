package plan

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// The Transit Gateway topology (mesh { topology = "transit_gateway" }): per region a gateway, a gateway
// route table meshd associates and propagates in, one VPC attachment per member, and in each member route
// table one route per remote block (or summary) to the gateway. The security-group rules are sg_rule's, as
// with peering; the peering kinds plan nothing (and remove meshd's peerings once the gateway routes exist).
//
//	kind            | meshd's when                                   | named in the spec (id, route_table_id)
//	----------------+------------------------------------------------+----------------------------------------
//	transit_gateway | tag meshd.io/mesh = mesh                       | used, never changed or deleted
//	tgw_route_table | tag meshd.io/mesh = mesh, in the gateway used  | used, never changed or deleted
//	tgw_attachment  | tag, or recorded in the state (moto drops the  | -
//	                | tags of a VPC attachment)                      |
//	tgw_vpc_route   | recorded in the state, or (where wanted) its   | -
//	                | target is a gateway meshd created              |
const (
	KindTransitGateway Kind = "transit_gateway"
	KindTGWRouteTable  Kind = "tgw_route_table"
	KindTGWAttachment  Kind = "tgw_attachment"
	KindTGWVPCRoute    Kind = "tgw_vpc_route"
)

// The state tables of the kinds that observation cannot always tell as meshd's.
var (
	tgwAttachmentTable = state.Table[TGWRecord]{Name: string(KindTGWAttachment)}
	tgwVPCRouteTable   = state.Table[TGWRecord]{Name: string(KindTGWVPCRoute)}
)

// TGWRecord is what the state keeps of an attachment (ID) or a VPC route to a gateway (RouteTableID,
// DestinationCIDR) meshd made.
type TGWRecord struct {
	Region          string `json:"region"`
	VPCID           string `json:"vpc_id"`
	GatewayID       string `json:"gateway_id"`
	ID              string `json:"id,omitempty"`
	RouteTableID    string `json:"route_table_id,omitempty"`
	DestinationCIDR string `json:"destination_cidr,omitempty"`
}

func init() {
	Register(KindInfo{
		Kind: KindTransitGateway, Address: "transit_gateway[<region>]", Rank: 12,
		planner: (*computer).transitGateways, First: true, DeletedLast: true, Provider: ProviderAWS,
		Decode: decodeAs[TransitGateway], RepeatHint: hintAWS, IAM: transitGatewayIAM,
	})
	// The route tables, attachments and VPC routes are planned by transitGateways, in one pass.
	Register(KindInfo{
		Kind: KindTGWRouteTable, Address: "tgw_route_table[<region>]", Rank: 13,
		First: true, DeletedLast: true, Provider: ProviderAWS,
		Decode: decodeAs[TGWRouteTable], RepeatHint: hintAWS, IAM: tgwRouteTableIAM,
	})
	Register(KindInfo{
		Kind: KindTGWAttachment, Address: "tgw_attachment[<cluster>]", Rank: 14,
		First: true, DeletedLast: true, Provider: ProviderAWS,
		Decode: decodeAs[TGWAttachment], RepeatHint: hintAWS, IAM: tgwAttachmentIAM,
		State: &Records{List: tgwEntries(tgwAttachmentTable), Fix: tgwFix(KindTGWAttachment, tgwAttachmentTable)},
	})
	Register(KindInfo{
		Kind: KindTGWVPCRoute, Address: "tgw_vpc_route[<cluster>:<route table>:<destination cidr>]", Rank: 15,
		Provider: ProviderAWS, Decode: decodeAs[TGWVPCRoute], RepeatHint: hintAWS, IAM: tgwVPCRouteIAM,
		State: &Records{List: tgwEntries(tgwVPCRouteTable), Fix: tgwFix(KindTGWVPCRoute, tgwVPCRouteTable)},
	})
}

func tgwEntries(t state.Table[TGWRecord]) func(st *state.State) []state.Entry {
	return func(st *state.State) []state.Entry {
		var out []state.Entry
		for _, addr := range t.Addresses(st) {
			r, _, _ := t.Get(st, addr)
			out = append(out, state.Entry{Address: addr, Attrs: []state.Attr{{Name: "region", Value: r.Region},
				{Name: "vpc_id", Value: r.VPCID}, {Name: "gateway_id", Value: r.GatewayID}, {Name: "id", Value: r.ID},
				{Name: "route_table_id", Value: r.RouteTableID}, {Name: "destination_cidr", Value: r.DestinationCIDR}}})
		}
		return out
	}
}

// tgwFix applies the plan's record fixes of one kind (Plan.RecordTGW, ForgetTGW, by address prefix).
func tgwFix(k Kind, t state.Table[TGWRecord]) func(p *Plan, st *state.State) {
	mine := func(addr string) bool { return strings.HasPrefix(addr, string(k)+"[") }
	return func(p *Plan, st *state.State) {
		for _, addr := range p.ForgetTGW {
			if mine(addr) {
				t.Forget(st, addr)
			}
		}
		for _, addr := range slices.Sorted(maps.Keys(p.RecordTGW)) {
			if mine(addr) {
				_ = t.Set(st, addr, p.RecordTGW[addr])
			}
		}
	}
}

// SetTGWRecord and DropTGWRecord write and drop an executor's record of a Transit Gateway kind that keeps
// records (tgw_attachment, tgw_vpc_route, tgw_peering, tgw_route) at the change's address.
func SetTGWRecord(st *state.State, k Kind, addr string, r TGWRecord) {
	_ = tgwTableOf(k).Set(st, addr, r)
}
func DropTGWRecord(st *state.State, k Kind, addr string) { tgwTableOf(k).Forget(st, addr) }

// tgwTableOf is a Transit Gateway kind's state table; it panics for a kind that keeps no records, a
// programming error.
func tgwTableOf(k Kind) state.Table[TGWRecord] {
	for _, t := range []state.Table[TGWRecord]{tgwAttachmentTable, tgwVPCRouteTable, tgwPeeringTable, tgwStaticRouteTable} {
		if t.Name == string(k) {
			return t
		}
	}
	panic(fmt.Sprintf("plan: kind %s keeps no Transit Gateway records", k))
}

// ForgetTGWVPCRouteOf drops the record of meshd's route to a gateway in a member's route table, if there is
// one: the route kind replaced it with a route through a peering. The record is at the route's address (a
// record left elsewhere is dropped by the next plan, which finds no route to a gateway there).
func ForgetTGWVPCRouteOf(st *state.State, cluster, table, cidr string) {
	DropTGWRecord(st, KindTGWVPCRoute, TGWVPCRouteAddress(cluster, table, cidr))
}

// RecordedGateways are the gateways and gateway route tables the state's Transit Gateway records name: what
// AWS's observation reads of a mesh that no longer uses the topology (or no longer names a gateway), so that
// meshd finds what it made there and removes it.
func RecordedGateways(st *state.State) (gateways, tables []string) {
	for _, t := range []state.Table[TGWRecord]{tgwAttachmentTable, tgwVPCRouteTable, tgwPeeringTable, tgwStaticRouteTable} {
		for _, addr := range t.Addresses(st) {
			r, _, _ := t.Get(st, addr)
			if r.GatewayID != "" {
				gateways = append(gateways, r.GatewayID)
			}
			if t.Name == tgwStaticRouteTable.Name {
				tables = append(tables, r.RouteTableID)
			}
		}
	}
	slices.Sort(gateways)
	slices.Sort(tables)
	return slices.Compact(gateways), slices.Compact(tables)
}

// TGWInput is what the planner needs of the spec for topology = "transit_gateway": the transit_gateway
// blocks by region (a region of members without one gets the zero config: meshd creates its gateway).
type TGWInput struct {
	Gateways map[string]TGWConfig
}

// TGWConfig is a region's transit_gateway block.
type TGWConfig struct {
	ID, RouteTableID  string
	SummaryCIDRs      []string
	AttachmentSubnets map[string][]string
}

// TransitGatewayInput is the planner's view of the spec's topology; nil for a mesh that peers.
func TransitGatewayInput(m *spec.Mesh) *TGWInput {
	if !m.UsesTransitGateway() {
		return nil
	}
	in := &TGWInput{Gateways: map[string]TGWConfig{}}
	for _, g := range m.TransitGateways {
		in.Gateways[g.Region] = TGWConfig{ID: g.ID, RouteTableID: g.RouteTableID, SummaryCIDRs: g.SummaryCIDRs, AttachmentSubnets: g.AttachmentSubnets}
	}
	return in
}

// TransitGateway is a gateway meshd creates for a region (default route table association and propagation
// off). ID is empty until it exists.
type TransitGateway struct {
	Region string `json:"region"`
	ID     string `json:"id,omitempty"`
	State  string `json:"state,omitempty"`
	model.Access
}

func (TransitGateway) Kind() Kind { return KindTransitGateway }

func (g TransitGateway) Attrs() []Attr {
	return []Attr{{Name: "region", Value: g.Region}, {Name: "id", Value: g.ID, Unknown: g.ID == ""}}
}

// TGWRouteTable is meshd's route table in a gateway (its own, or the spec's named one).
type TGWRouteTable struct {
	Region         string `json:"region"`
	GatewayID      string `json:"gateway_id,omitempty"`
	GatewayAddress string `json:"gateway_address,omitempty"`
	ID             string `json:"id,omitempty"`
	model.Access
}

func (TGWRouteTable) Kind() Kind { return KindTGWRouteTable }

func (t TGWRouteTable) Attrs() []Attr {
	return []Attr{gatewayAttr(t.GatewayID, t.GatewayAddress), {Name: "id", Value: t.ID, Unknown: t.ID == ""}}
}

func gatewayAttr(id, address string) Attr {
	return Attr{Name: "gateway", Value: orUnknown(id, address), Unknown: id == ""}
}

// TGWAttachment is a member VPC's attachment to its region's gateway, associated with and propagating to
// meshd's (or the named) gateway route table. Subnets are the spec's attachment_subnets; when empty the
// executor picks one subnet per availability zone of the VPC, preferring PreferredSubnets (those of the
// member's route tables).
type TGWAttachment struct {
	Cluster           string   `json:"cluster"`
	Region            string   `json:"region"`
	VPCID             string   `json:"vpc_id"`
	GatewayID         string   `json:"gateway_id,omitempty"`
	GatewayAddress    string   `json:"gateway_address,omitempty"`
	RouteTableID      string   `json:"route_table_id,omitempty"`
	RouteTableAddress string   `json:"route_table_address,omitempty"`
	Subnets           []string `json:"subnets,omitempty"`
	PreferredSubnets  []string `json:"preferred_subnets,omitempty"`
	ID                string   `json:"id,omitempty"`
	Associated        bool     `json:"associated,omitempty"`
	Propagating       bool     `json:"propagating,omitempty"`
	model.Access
}

func (TGWAttachment) Kind() Kind { return KindTGWAttachment }

func (a TGWAttachment) Attrs() []Attr {
	subnets := strings.Join(a.Subnets, ", ")
	if subnets == "" {
		subnets = "one per availability zone of the VPC"
	}
	return []Attr{{Name: "vpc", Value: fmt.Sprintf("%s (%s)", a.VPCID, a.Cluster)}, gatewayAttr(a.GatewayID, a.GatewayAddress),
		{Name: "subnets", Value: subnets}, {Name: "route_table", Value: orUnknown(a.RouteTableID, a.RouteTableAddress), Unknown: a.RouteTableID == ""},
		{Name: "associated", Value: fmt.Sprint(a.Associated)}, {Name: "propagating", Value: fmt.Sprint(a.Propagating)},
		{Name: "id", Value: a.ID, Unknown: a.ID == ""}}
}

// TGWVPCRoute is a route in a member route table to a remote block (or summary) through the gateway.
type TGWVPCRoute struct {
	Cluster         string `json:"cluster"`
	Region          string `json:"region"`
	VPCID           string `json:"vpc_id"`
	RouteTableID    string `json:"route_table_id"`
	DestinationCIDR string `json:"destination_cidr"`
	GatewayID       string `json:"gateway_id,omitempty"`
	GatewayAddress  string `json:"gateway_address,omitempty"`
	// Target is what an observed route goes to when it is not a gateway (pcx-, igw-, ...).
	Target string `json:"target,omitempty"`
	model.Access
}

func (TGWVPCRoute) Kind() Kind { return KindTGWVPCRoute }

func (r TGWVPCRoute) Attrs() []Attr {
	target := gatewayAttr(r.GatewayID, r.GatewayAddress)
	if r.GatewayID == "" && r.GatewayAddress == "" {
		target.Value, target.Unknown = r.Target, false
	}
	target.Name = "target"
	return []Attr{{Name: "route_table", Value: r.RouteTableID}, {Name: "destination", Value: r.DestinationCIDR}, target}
}

// TGWAddress and friends are the kinds' addresses.
func TGWAddress(region string) string { return fmt.Sprintf("%s[%s]", KindTransitGateway, region) }
func TGWRouteTableAddress(region string) string {
	return fmt.Sprintf("%s[%s]", KindTGWRouteTable, region)
}
func TGWAttachmentAddress(cluster string) string {
	return fmt.Sprintf("%s[%s]", KindTGWAttachment, cluster)
}
func TGWVPCRouteAddress(cluster, table, cidr string) string {
	return fmt.Sprintf("%s[%s:%s:%s]", KindTGWVPCRoute, cluster, table, cidr)
}

// tgwRef is how the objects of a region reach its gateway and route table: a known ID, or the address of
// the change that makes it.
type tgwRef struct {
	gateway, gatewayChange, table, tableChange string
	owned                                      bool // the gateway is meshd's (created, tagged)
	access                                     model.Access
}

// transitGateways plans the gateway objects of every region of the members (and removes the mesh's
// objects no region wants any more).
func (c *computer) transitGateways() {
	tg := c.in.TransitGateways
	refs := map[string]*tgwRef{}
	regions := map[string][]model.Member{}
	if tg != nil {
		for _, m := range c.networked {
			regions[m.Region] = append(regions[m.Region], m)
		}
		if len(c.networked) < 2 {
			regions = nil
		}
	}
	usedGW, usedRT := map[string]bool{}, map[string]bool{}
	for _, region := range slices.Sorted(maps.Keys(regions)) {
		refs[region] = c.tgwRegion(region, tg.Gateways[region], regions[region][0].Access, usedGW, usedRT)
	}
	attachDeletes := c.tgwAttachments(regions, refs)
	c.tgwStatic = map[string]string{}
	peeringDels, ownedPeering := c.tgwPeerings(regions, refs)
	c.tgwStaticRoutes(regions, refs, peeringDels, ownedPeering, attachDeletes)
	c.tgwVPCRoutes(regions, refs)
	// meshd's peerings go only once the routes through the gateways are in place (the switch of topology).
	for i := range c.plan.Changes {
		if ch := &c.plan.Changes[i]; ch.Kind == KindPeering && ch.Action == Delete {
			ch.DependsOn = append(ch.DependsOn, c.tgwRouteChanges...)
		}
	}

	// What no region uses any more: attachments (after the routes through them), route tables (after
	// their attachments), gateways (after both).
	attachDels := peeringDels
	for _, id := range slices.Sorted(maps.Keys(attachDeletes)) {
		attachDels = append(attachDels, attachDeletes[id]...)
	}
	var tableDels []string
	for _, id := range slices.Sorted(maps.Keys(c.in.Observed.TGWRouteTables)) {
		t := c.in.Observed.TGWRouteTables[id]
		if usedRT[id] || gone(t.State) || !model.TaggedBy(t.Tags, c.in.Mesh) {
			continue
		}
		addr := TGWRouteTableAddress(t.Region)
		if c.plan.Find(addr) != nil {
			addr = fmt.Sprintf("%s[%s]", KindTGWRouteTable, id)
		}
		c.add(Change{Action: Delete, Address: addr, Kind: KindTGWRouteTable, Reason: c.goneReason(),
			Before: TGWRouteTable{Region: t.Region, GatewayID: t.GatewayID, ID: id, Access: c.tgwAccess(t.Region)}, DependsOn: attachDels})
		tableDels = append(tableDels, addr)
	}
	for _, id := range slices.Sorted(maps.Keys(c.in.Observed.TransitGateways)) {
		g := c.in.Observed.TransitGateways[id]
		if usedGW[id] || g.Gone() || !model.TaggedBy(g.Tags, c.in.Mesh) {
			continue
		}
		addr := TGWAddress(g.Region)
		if c.plan.Find(addr) != nil {
			addr = fmt.Sprintf("%s[%s]", KindTransitGateway, id)
		}
		c.add(Change{Action: Delete, Address: addr, Kind: KindTransitGateway, Reason: c.goneReason(),
			Before:    TransitGateway{Region: g.Region, ID: id, State: g.State, Access: c.tgwAccess(g.Region)},
			DependsOn: slices.Concat(attachDels, tableDels)})
	}
}

// meshdGatewayRoute reports whether a member route table's route (key: route table | destination) is
// meshd's route to a gateway: recorded with that gateway, or to a gateway meshd made.
func (c *computer) meshdGatewayRoute(key string, r model.Route) bool {
	if !strings.HasPrefix(r.Target, "tgw-") {
		return false
	}
	g, ok := c.in.Observed.TransitGateways[r.Target]
	return c.gatewayRouteRecords()[key].GatewayID == r.Target || (ok && model.TaggedBy(g.Tags, c.in.Mesh))
}

// gatewayRouteRecord is a record of meshd's VPC route to a gateway, with its address.
type gatewayRouteRecord struct {
	TGWRecord
	address string
}

// gatewayRouteRecords are the state's records of meshd's VPC routes to gateways by route table |
// destination, read once a plan: the route kind (the switch back) and tgwVPCRoutes both look them up.
func (c *computer) gatewayRouteRecords() map[string]gatewayRouteRecord {
	if c.gatewayRoutes == nil {
		c.gatewayRoutes = map[string]gatewayRouteRecord{}
		for _, addr := range tgwVPCRouteTable.Addresses(c.in.State) {
			r, _, _ := tgwVPCRouteTable.Get(c.in.State, addr)
			c.gatewayRoutes[r.RouteTableID+"|"+r.DestinationCIDR] = gatewayRouteRecord{r, addr}
		}
	}
	return c.gatewayRoutes
}

// gatewaysRead reports whether the observation read the Transit Gateways: for a mesh that peers it does
// only where the state records gateway objects, and a record is dropped only when it was looked for.
func (c *computer) gatewaysRead() bool {
	return c.in.TransitGateways != nil || c.in.Observed.TransitGateways != nil
}

// tgwAccess is the access of a region's gateway objects: its first member's (current, else former).
func (c *computer) tgwAccess(region string) model.Access {
	for _, m := range c.in.Members {
		if m.Region == region {
			return m.Access
		}
	}
	for _, name := range sortedNames(c.in.State.Members) {
		if m := c.in.State.Members[name]; m.Region == region {
			return m.Access
		}
	}
	return model.Access{}
}

func gone(state string) bool {
	return state == "deleting" || state == "deleted" || state == "failed"
}

// tgwRegion plans a region's gateway and route table: the named ones are used as they are; else meshd's
// own (tagged), created when missing.
func (c *computer) tgwRegion(region string, cfg TGWConfig, acc model.Access, usedGW, usedRT map[string]bool) *tgwRef {
	obs := c.in.Observed
	ref := &tgwRef{gateway: cfg.ID, table: cfg.RouteTableID, access: acc}
	if ref.gateway == "" {
		ref.owned = true
		for _, id := range slices.Sorted(maps.Keys(obs.TransitGateways)) {
			if g := obs.TransitGateways[id]; g.Region == region && !g.Gone() && model.TaggedBy(g.Tags, c.in.Mesh) && ref.gateway == "" {
				ref.gateway = id
			}
		}
		if ref.gateway == "" {
			addr := TGWAddress(region)
			c.add(Change{Action: Create, Address: addr, Kind: KindTransitGateway, Reason: "gateway missing",
				After: TransitGateway{Region: region, Access: acc}})
			ref.gatewayChange = addr
		}
	}
	usedGW[ref.gateway] = true
	if ref.table == "" && ref.gateway != "" {
		for _, id := range slices.Sorted(maps.Keys(obs.TGWRouteTables)) {
			if t := obs.TGWRouteTables[id]; t.GatewayID == ref.gateway && !gone(t.State) && model.TaggedBy(t.Tags, c.in.Mesh) && ref.table == "" {
				ref.table = id
			}
		}
	}
	if ref.table == "" {
		addr := TGWRouteTableAddress(region)
		c.add(Change{Action: Create, Address: addr, Kind: KindTGWRouteTable, Reason: "route table missing",
			After:     TGWRouteTable{Region: region, GatewayID: ref.gateway, GatewayAddress: ref.gatewayChange, Access: acc},
			DependsOn: deps(ref.gatewayChange)})
		ref.tableChange = addr
	}
	usedRT[ref.table] = true
	return ref
}

// tgwAttachments plans each member's VPC attachment; it returns the deletes of attachments no member
// wants, by VPC.
func (c *computer) tgwAttachments(regions map[string][]model.Member, refs map[string]*tgwRef) map[string][]string {
	obs := c.in.Observed
	recorded, owned := c.ownedAttachments(tgwAttachmentTable, "vpc")
	used := map[string]bool{}
	c.tgwAttach = map[string]string{}
	for _, region := range slices.Sorted(maps.Keys(regions)) {
		ref := refs[region]
		cfg := c.in.TransitGateways.Gateways[region]
		for _, m := range regions[region] {
			addr := TGWAttachmentAddress(m.Name)
			want := TGWAttachment{Cluster: m.Name, Region: region, VPCID: m.VPCID, GatewayID: ref.gateway, GatewayAddress: ref.gatewayChange,
				RouteTableID: ref.table, RouteTableAddress: ref.tableChange, Subnets: cfg.AttachmentSubnets[m.Name],
				PreferredSubnets: c.routeTableSubnets(m), Associated: true, Propagating: true, Access: m.Access}
			var mine, foreign *model.TGWAttachment
			for _, id := range slices.Sorted(maps.Keys(obs.TGWAttachments)) {
				a := obs.TGWAttachments[id]
				if a.GatewayID != ref.gateway || a.ResourceID != m.VPCID || a.Type != "vpc" || a.Gone() {
					continue
				}
				switch {
				case owned(a) && mine == nil:
					mine = &a
				case !owned(a) && foreign == nil:
					foreign = &a
				}
			}
			switch {
			case mine != nil:
				used[mine.ID] = true
				want.ID = mine.ID
				rt := obs.TGWRouteTables[ref.table]
				have := want
				have.Associated = slices.Contains(rt.Associations, mine.ID)
				have.Propagating = slices.Contains(rt.Propagations, mine.ID)
				if _, rec := recorded[mine.ID]; !rec {
					c.recordTGW(addr, TGWRecord{Region: region, VPCID: m.VPCID, GatewayID: ref.gateway, ID: mine.ID})
				}
				if ref.tableChange != "" || !have.Associated || !have.Propagating {
					reason := "attachment not associated with or not propagating to the gateway route table"
					c.add(Change{Action: Update, Address: addr, Kind: KindTGWAttachment, Reason: reason, Before: have, After: want,
						DependsOn: deps(ref.tableChange)})
					c.tgwAttach[m.Name] = addr
				}
			case foreign != nil:
				c.plan.Conflicts = append(c.plan.Conflicts, Conflict{Address: addr,
					Summary: fmt.Sprintf("VPC %s (cluster %s) is already attached to %s by %s, which meshd did not create", m.VPCID, m.Name, ref.gateway, foreign.ID),
					Detail:  "A VPC has one attachment per gateway; meshd leaves this one alone. Delete it, or attach the VPC to another gateway."})
			default:
				c.add(Change{Action: Create, Address: addr, Kind: KindTGWAttachment, Reason: "attachment missing", After: want,
					DependsOn: deps(ref.gatewayChange, ref.tableChange)})
				c.tgwAttach[m.Name] = addr
			}
		}
	}
	deletes := map[string][]string{}
	for _, id := range slices.Sorted(maps.Keys(obs.TGWAttachments)) {
		a := obs.TGWAttachments[id]
		if used[id] || !owned(a) {
			continue
		}
		cluster := c.clusterOfVPC(a.ResourceID)
		addr := TGWAttachmentAddress(cluster)
		if rec, ok := recorded[id]; ok {
			addr = rec
		}
		if c.plan.Find(addr) != nil {
			addr = fmt.Sprintf("%s[%s]", KindTGWAttachment, id)
		}
		owner, _ := c.memberOfVPC(a.ResourceID)
		c.add(Change{Action: Delete, Address: addr, Kind: KindTGWAttachment, Reason: c.goneReason(),
			Before: TGWAttachment{Cluster: cluster, Region: a.Region, VPCID: a.ResourceID, GatewayID: a.GatewayID, ID: id, Access: owner.Access}})
		deletes[a.ResourceID] = append(deletes[a.ResourceID], addr)
	}
	return deletes
}

// ownedAttachments reads a table of attachment records (VPC or peering, typ): the recorded attachments'
// addresses by ID, and what tells meshd's attachments of that type (recorded, or tagged with the mesh; moto
// drops the tags of a VPC attachment). The records of attachments gone are dropped, once the gateways
// were read.
func (c *computer) ownedAttachments(t state.Table[TGWRecord], typ string) (map[string]string, func(model.TGWAttachment) bool) {
	recorded := map[string]string{} // attachment ID -> address
	for _, addr := range t.Addresses(c.in.State) {
		r, _, _ := t.Get(c.in.State, addr)
		recorded[r.ID] = addr
		if a, ok := c.in.Observed.TGWAttachments[r.ID]; (!ok || a.Gone()) && c.gatewaysRead() {
			c.plan.ForgetTGW = append(c.plan.ForgetTGW, addr)
		}
	}
	return recorded, func(a model.TGWAttachment) bool {
		_, rec := recorded[a.ID]
		return !a.Gone() && a.Type == typ && (rec || model.TaggedBy(a.Tags, c.in.Mesh))
	}
}

func (c *computer) recordTGW(addr string, r TGWRecord) {
	if c.plan.RecordTGW == nil {
		c.plan.RecordTGW = map[string]TGWRecord{}
	}
	c.plan.RecordTGW[addr] = r
}

// routeTableSubnets are the subnets explicitly associated with the member's route tables.
func (c *computer) routeTableSubnets(m model.Member) []string {
	var out []string
	for _, id := range m.RouteTableIDs {
		if rt := c.in.Observed.RouteTables[id]; rt != nil {
			out = append(out, rt.SubnetIDs...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// tgwWantedRoutes are the VPC routes the topology wants, by route table | destination.
// With each key come the source member and the members whose blocks the route leads to (several under a
// summary): the route waits for their path through the gateways.
func (c *computer) tgwWantedRoutes(regions map[string][]model.Member, refs map[string]*tgwRef) (map[string]TGWVPCRoute, []string, map[string]tgwRouteEnds) {
	want := map[string]TGWVPCRoute{}
	ends := map[string]tgwRouteEnds{}
	var order []string
	for _, region := range slices.Sorted(maps.Keys(regions)) {
		ref := refs[region]
		summaries := c.in.TransitGateways.Gateways[region].SummaryCIDRs
		for _, a := range regions[region] {
			dests := map[string][]tgwBlock{}
			for _, b := range c.networked {
				if b.Name == a.Name {
					continue
				}
				for _, cidr := range b.CIDRs {
					dest := cidr
					if s := summaryOf(summaries, cidr, a.CIDRs); s != "" {
						dest = s
					}
					dests[dest] = append(dests[dest], tgwBlock{b, cidr})
				}
			}
			for _, rt := range a.RouteTableIDs {
				for _, cidr := range slices.Sorted(maps.Keys(dests)) {
					key := rt + "|" + cidr
					want[key] = TGWVPCRoute{Cluster: a.Name, Region: region, VPCID: a.VPCID, RouteTableID: rt, DestinationCIDR: cidr,
						GatewayID: ref.gateway, GatewayAddress: ref.gatewayChange, Access: a.Access}
					ends[key] = tgwRouteEnds{from: a, to: dests[cidr]}
					order = append(order, key)
				}
			}
		}
	}
	return want, order, ends
}

// tgwBlock is a member's block a VPC route leads to.
type tgwBlock struct {
	member model.Member
	cidr   string
}

// tgwRouteEnds are a VPC route's source member and the blocks it leads to.
type tgwRouteEnds struct {
	from model.Member
	to   []tgwBlock
}

// tgwPathDeps are the changes a VPC route to the gateway waits for: the whole path there and back, so that
// when it replaces a peering route (the switch of topology) the traffic moves to a working path. They are
// the gateway, both ends' attachments and, across regions, the regions' peering attachment, the gateway
// route to each block and the one back to the source's blocks.
func (c *computer) tgwPathDeps(d TGWVPCRoute, ends tgwRouteEnds) []string {
	out := deps(d.GatewayAddress, c.tgwAttach[d.Cluster])
	for _, b := range ends.to {
		out = append(out, deps(c.tgwAttach[b.member.Name])...)
		if b.member.Region == d.Region {
			continue
		}
		pair := []string{d.Region, b.member.Region}
		slices.Sort(pair)
		out = append(out, deps(c.tgwPeer[pair[0]+":"+pair[1]].change, c.tgwStatic[d.Region+"|"+b.cidr])...)
		for _, back := range ends.from.CIDRs {
			out = append(out, deps(c.tgwStatic[b.member.Region+"|"+back])...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// summaryOf is the summary that holds cidr, unless it also holds one of the member's own blocks (a route
// to it would shadow nothing but would send local traffic away: the summary is then skipped for it).
func summaryOf(summaries []string, cidr string, own []string) string {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return ""
	}
	for _, s := range summaries {
		sp, err := netip.ParsePrefix(s)
		if err != nil || sp.Bits() > p.Bits() || !sp.Contains(p.Addr()) {
			continue
		}
		holdsOwn := slices.ContainsFunc(own, func(o string) bool {
			op, err := netip.ParsePrefix(o)
			return err == nil && sp.Bits() <= op.Bits() && sp.Contains(op.Addr())
		})
		if !holdsOwn {
			return s
		}
	}
	return ""
}

// tgwVPCRoutes plans the member route tables' routes to the gateway; it returns the deletes of routes no
// member wants, by VPC.
func (c *computer) tgwVPCRoutes(regions map[string][]model.Member, refs map[string]*tgwRef) map[string][]string {
	want, order, ends := c.tgwWantedRoutes(regions, refs)
	records := c.gatewayRouteRecords()
	peeringRecords := c.in.State.RouteSet()
	ownedGateway := func(id string) bool {
		g, ok := c.in.Observed.TransitGateways[id]
		return ok && model.TaggedBy(g.Tags, c.in.Mesh)
	}
	deletes := map[string][]string{}
	seen := map[string]bool{}
	var creates []string
	for _, rt := range c.sortedRouteTables() {
		cluster := c.clusterOfVPC(rt.VPCID)
		owner, _ := c.memberOfVPC(rt.VPCID)
		for _, r := range rt.Routes {
			key := rt.ID + "|" + r.DestinationCIDR
			rec, recorded := records[key]
			recAddr := rec.address
			gw := ""
			if strings.HasPrefix(r.Target, "tgw-") {
				gw = r.Target
			}
			ownedByRecord := recorded && gw != "" && rec.GatewayID == gw
			observed := TGWVPCRoute{Cluster: cluster, Region: rt.Region, VPCID: rt.VPCID, RouteTableID: rt.ID, DestinationCIDR: r.DestinationCIDR,
				GatewayID: gw, Target: r.Target, Access: owner.Access}
			if r.PeeringID != "" {
				observed.Target = r.PeeringID
			}
			if recorded && !ownedByRecord {
				c.plan.ForgetTGW = append(c.plan.ForgetTGW, recAddr)
			}
			d, wanted := want[key]
			if !wanted {
				// meshd's: recorded, or (a state lost, an apply cut short before it recorded) a route to a
				// gateway meshd created, which nobody else routes to. Where the route kind replaces it with a
				// route through a peering (the switch back), it is not deleted: its executor drops the record.
				if c.gatewayMoved[key] {
					continue
				}
				if ownedByRecord || (gw != "" && ownedGateway(gw)) {
					addr := recAddr
					if !ownedByRecord {
						addr = TGWVPCRouteAddress(cluster, rt.ID, r.DestinationCIDR)
					}
					c.add(Change{Action: Delete, Address: addr, Kind: KindTGWVPCRoute, Reason: c.goneReason(), Before: observed})
					deletes[rt.VPCID] = append(deletes[rt.VPCID], addr)
				}
				continue
			}
			seen[key] = true
			addr := TGWVPCRouteAddress(d.Cluster, rt.ID, r.DestinationCIDR)
			record := TGWRecord{Region: rt.Region, VPCID: rt.VPCID, GatewayID: d.GatewayID, RouteTableID: rt.ID, DestinationCIDR: r.DestinationCIDR}
			_, peeringRoute := peeringRecords[key]
			peeringRoute = peeringRoute && r.PeeringID != "" && peeringRecords[key].PeeringID == r.PeeringID
			switch {
			case d.GatewayID != "" && gw == d.GatewayID && r.State != "blackhole":
				if !ownedByRecord && ownedGateway(gw) {
					c.recordTGW(addr, record)
				} else if !ownedByRecord {
					c.add(Change{Action: Keep, Address: addr, Kind: KindTGWVPCRoute, Before: observed, After: observed,
						Reason: "exists, not owned by meshd: left alone"})
				}
			case ownedByRecord || peeringRoute:
				// meshd's route to another target (a gateway gone, or the peering the mesh switches from): replaced
				// in place, so the traffic never lacks a route.
				reason := fmt.Sprintf("route targets %s, not the region's gateway", observed.Target)
				if peeringRoute {
					// The executor drops the peering route's record when it has replaced the route.
					reason = fmt.Sprintf("topology is transit_gateway: replace the route through %s", r.PeeringID)
				}
				c.add(Change{Action: Update, Address: addr, Kind: KindTGWVPCRoute, Reason: reason, Before: observed, After: d,
					DependsOn: c.tgwPathDeps(d, ends[key])})
				creates = append(creates, addr)
			default:
				c.plan.Conflicts = append(c.plan.Conflicts, Conflict{Address: addr,
					Summary: fmt.Sprintf("Route table %s (cluster %s) already routes %s to %s", rt.ID, d.Cluster, r.DestinationCIDR, observed.Target),
					Detail: fmt.Sprintf("meshd wants %s via %s but the existing route was not created by meshd, so it is left alone. "+
						"Remove or change it yourself, or take the route table out of the mesh with route_table_ids.", r.DestinationCIDR, orUnknown(d.GatewayID, d.GatewayAddress))})
			}
		}
	}
	for _, key := range order {
		if seen[key] {
			continue
		}
		seen[key] = true
		d := want[key]
		reason := "route missing"
		if _, ok := records[key]; ok {
			reason = "route was deleted outside meshd"
		}
		addr := TGWVPCRouteAddress(d.Cluster, d.RouteTableID, d.DestinationCIDR)
		c.add(Change{Action: Create, Address: addr, Kind: KindTGWVPCRoute, Reason: reason, After: d,
			DependsOn: c.tgwPathDeps(d, ends[key])})
		creates = append(creates, addr)
	}
	// Records of routes gone altogether.
	for key, rec := range records {
		rt, ok := c.in.Observed.RouteTables[rec.RouteTableID]
		if _, wanted := want[key]; !wanted && (!ok || !hasRoute(rt, rec.DestinationCIDR)) {
			c.plan.ForgetTGW = append(c.plan.ForgetTGW, rec.address)
		}
	}
	slices.Sort(c.plan.ForgetTGW)
	c.plan.ForgetTGW = slices.Compact(c.plan.ForgetTGW)
	// Attachment deletes wait on the routes of their VPC, and on the route kind's moves of the routes from
	// and to the member onto peerings.
	for i := range c.plan.Changes {
		ch := &c.plan.Changes[i]
		if ch.Kind == KindTGWAttachment && ch.Action == Delete {
			a := ch.Before.(TGWAttachment)
			ch.DependsOn = append(ch.DependsOn, deletes[a.VPCID]...)
			ch.DependsOn = append(ch.DependsOn, c.gatewayMoves[a.Cluster]...)
		}
	}
	c.tgwRouteChanges = creates
	return deletes
}

// tgwKeys are the route table | destination keys the gateway topology routes, which the route kind leaves
// to tgw_vpc_route (it replaces a peering route there in place instead of deleting it).
func (c *computer) tgwKeys() map[string]bool {
	if c.in.TransitGateways == nil || len(c.networked) < 2 {
		return nil
	}
	regions := map[string][]model.Member{}
	refs := map[string]*tgwRef{}
	for _, m := range c.networked {
		regions[m.Region] = append(regions[m.Region], m)
		refs[m.Region] = &tgwRef{}
	}
	want, _, _ := c.tgwWantedRoutes(regions, refs)
	out := map[string]bool{}
	for k := range want {
		out[k] = true
	}
	return out
}

// IAM: what the executors call, scoped by meshd's tag where the API honours it.
func transitGatewayIAM(m *spec.Mesh) []access.Statement {
	return perTGWRegion(m, func(region, role string) []access.Statement {
		return []access.Statement{
			{Role: role, Why: "Create the region's gateway (when the spec names none): the request must tag it with this mesh's name.",
				Actions: []string{"ec2:CreateTransitGateway"}, Resources: []string{ec2ARN(region, "transit-gateway/*")}, Condition: taggingForMesh(m.Name, "")},
			{Role: role, Why: "Tag gateways, their route tables and VPC attachments at creation only.",
				Actions: []string{"ec2:CreateTags"}, Resources: []string{ec2ARN(region, "transit-gateway/*"), ec2ARN(region, "transit-gateway-route-table/*"),
					ec2ARN(region, "transit-gateway-attachment/*")},
				Condition: map[string]map[string][]string{"StringEquals": {"aws:RequestTag/" + model.TagMesh: {m.Name},
					"ec2:CreateAction": {"CreateTransitGateway", "CreateTransitGatewayRouteTable", "CreateTransitGatewayVpcAttachment"}}}},
			{Role: role, Why: "Delete the gateway meshd created: only one tagged with this mesh's name (a gateway the spec names is never deleted).",
				Actions: []string{"ec2:DeleteTransitGateway"}, Resources: []string{ec2ARN(region, "transit-gateway/*")}, Condition: taggedForMesh(m.Name)}}
	})
}

func tgwRouteTableIAM(m *spec.Mesh) []access.Statement {
	return perTGWRegion(m, func(region, role string) []access.Statement {
		return []access.Statement{
			{Role: role, Why: "Create meshd's route table in the region's gateway (when the spec names none), tagged with this mesh's name.",
				Actions: []string{"ec2:CreateTransitGatewayRouteTable"}, Resources: []string{ec2ARN(region, "transit-gateway/*"), ec2ARN(region, "transit-gateway-route-table/*")}},
			{Role: role, Why: "Delete meshd's gateway route table: only one tagged with this mesh's name.",
				Actions: []string{"ec2:DeleteTransitGatewayRouteTable"}, Resources: []string{ec2ARN(region, "transit-gateway-route-table/*")}, Condition: taggedForMesh(m.Name)}}
	})
}

// perTGWRegion gathers the statements of each region of a transit_gateway mesh's members, with the role
// of its gateway objects (its first member's).
func perTGWRegion(m *spec.Mesh, of func(region, role string) []access.Statement) []access.Statement {
	if !m.UsesTransitGateway() {
		return nil
	}
	var out []access.Statement
	for _, region := range tgwRegions(m) {
		out = append(out, of(region, tgwRole(m, region))...)
	}
	return out
}

func tgwAttachmentIAM(m *spec.Mesh) []access.Statement {
	if !m.UsesTransitGateway() {
		return nil
	}
	var out []access.Statement
	for _, c := range networkedMembers(m) {
		out = append(out,
			access.Statement{Role: c.AssumeRole, Why: "Attach the member's VPC to the region's gateway, in one subnet per availability zone (read with DescribeSubnets).",
				Actions:   []string{"ec2:CreateTransitGatewayVpcAttachment", "ec2:DescribeSubnets"},
				Resources: []string{"*"}, Condition: inRegions([]string{c.Region})},
			access.Statement{Role: c.AssumeRole, Why: "Associate the attachment with, and propagate it to, meshd's (or the named) gateway route table.",
				Actions:   []string{"ec2:AssociateTransitGatewayRouteTable", "ec2:EnableTransitGatewayRouteTablePropagation"},
				Resources: []string{ec2ARN(c.Region, "transit-gateway-route-table/*"), ec2ARN(c.Region, "transit-gateway-attachment/*")}},
			access.Statement{Role: c.AssumeRole, Why: "Delete meshd's VPC attachments (the executor checks the ID the state records before deleting; " +
				"not conditioned on the tag, which moto and some SDK paths drop).",
				Actions: []string{"ec2:DeleteTransitGatewayVpcAttachment"}, Resources: []string{ec2ARN(c.Region, "transit-gateway-attachment/*")}})
	}
	return out
}

func tgwVPCRouteIAM(m *spec.Mesh) []access.Statement {
	if !m.UsesTransitGateway() {
		return nil
	}
	var out []access.Statement
	for _, c := range networkedMembers(m) {
		out = append(out, access.Statement{Role: c.AssumeRole,
			Why:       "Route targets: a member route table's route to the other members goes to the region's gateway (the route table statements of the route kind cover the tables).",
			Actions:   []string{"ec2:CreateRoute", "ec2:ReplaceRoute", "ec2:DeleteRoute"},
			Resources: []string{ec2ARN(c.Region, "transit-gateway/*")}})
	}
	return append(out, routeIAM(m)...)
}

func tgwRegions(m *spec.Mesh) []string {
	var out []string
	for _, c := range networkedMembers(m) {
		out = append(out, c.Region)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// tgwRole is the role of a region's gateway objects: its first member's.
func tgwRole(m *spec.Mesh, region string) string {
	for _, c := range m.Clusters {
		if c.Region == region && !c.External() {
			return c.AssumeRole
		}
	}
	return ""
}

// Package verify decides, for every ordered pair of members, whether traffic and names can get from one
// cluster to the other, layer by layer, and names the object to fix when not. It is pure: Verify reads only
// what the engine observed (and, for the probe layer, what a probe reported), so it is tested with
// hand-built observations.
package verify

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
)

// Layer is one thing a pair needs.
type Layer string

// The layers, in the order of the matrix.
const (
	LayerPeering Layer = "peering"
	// LayerGateway replaces LayerPeering in a mesh with topology = "transit_gateway" (transitgateway.go).
	LayerGateway Layer = "transit_gateway"
	LayerRoutes  Layer = "routes"
	LayerSG      Layer = "sg"
	LayerNACL    Layer = "nacl"
	LayerDNS     Layer = "dns"
	LayerProbe   Layer = "probe"
)

// Layers are a peering mesh's layers in matrix order; GatewayLayers a transit_gateway mesh's, where the
// routes layer checks the routes to the region's gateway.
var (
	Layers        = []Layer{LayerPeering, LayerRoutes, LayerSG, LayerNACL, LayerDNS, LayerProbe}
	GatewayLayers = []Layer{LayerGateway, LayerRoutes, LayerSG, LayerNACL, LayerDNS, LayerProbe}
)

// Status of one verdict.
type Status string

const (
	OK      Status = "ok"
	Fail    Status = "fail"
	Skipped Status = "skipped" // not checked: not asked for (probe), not observed (DNS off), or a layer it needs failed
	// Unmanaged is an AWS layer of a pair with an external member (network = "external"): meshd does not
	// manage that network, so there is nothing of it to check.
	Unmanaged Status = "unmanaged"
)

// Verdict is the outcome of one layer for one ordered pair. Causes name the object to fix (for Fail) or why
// the layer was not checked (for Skipped).
type Verdict struct {
	From   string   `json:"from"`
	To     string   `json:"to"`
	Layer  Layer    `json:"layer"`
	Status Status   `json:"status"`
	Causes []string `json:"causes,omitempty"`
	// Notes say how a passing layer was checked when that is not the usual way (a query's path through a
	// NodeLocal DNSCache).
	Notes []string `json:"notes,omitempty"`
}

// ProbeResult is what a probe from one cluster to another reported.
type ProbeResult struct {
	OK      bool
	Message string
}

// Pair is an ordered pair of member names.
type Pair struct{ From, To string }

// Input is what Verify reads.
type Input struct {
	Mesh     string
	Members  []model.Member // with their kube settings (namespace, cluster domain)
	Observed *model.Observed
	// TransitGateways are the spec's transit_gateway blocks (plan.TransitGatewayInput): non-nil for a mesh
	// with topology = "transit_gateway", whose pairs are checked on the gateway path instead of a peering.
	TransitGateways *plan.TGWInput
	// DNS is each member's DNS observation with its load balancer; nil leaves the DNS layer unchecked.
	DNS       map[string]model.DNSObserved
	ForwardBy string
	// OwnedZones are the Corefile zones the state records as meshd's, per cluster (blocks without marker);
	// NodeLocalZones the same for the NodeLocal DNSCache Corefiles.
	OwnedZones, NodeLocalZones map[string][]string
	// LoadBalancerRules are the ingress rules (with a CIDR source) of the security groups of the members'
	// NLBs, by group ID: what the DNS layer checks admits the other members. Nil leaves that check out.
	LoadBalancerRules map[string][]model.SecurityGroupRule
	// Probes are the probe results; nil leaves the probe layer unchecked.
	Probes map[Pair]ProbeResult
}

// Report is every verdict, by pair in member order, then by layer.
type Report struct {
	Members []string `json:"members"`
	// Layers are the layers checked, in matrix order (Layers or GatewayLayers, by topology); nil means Layers.
	Layers   []Layer   `json:"layers,omitempty"`
	Verdicts []Verdict `json:"verdicts"`
}

// layers are r.Layers, or Layers for a report made without them.
func (r Report) layers() []Layer {
	if r.Layers == nil {
		return Layers
	}
	return r.Layers
}

// OK reports whether no verdict failed.
func (r Report) OK() bool {
	for _, v := range r.Verdicts {
		if v.Status == Fail {
			return false
		}
	}
	return true
}

// Get returns the verdict of a pair and layer.
func (r Report) Get(from, to string, l Layer) Verdict {
	for _, v := range r.Verdicts {
		if v.From == from && v.To == to && v.Layer == l {
			return v
		}
	}
	return Verdict{From: from, To: to, Layer: l, Status: Skipped}
}

// Failures are one line per cause of every failed verdict: "tidb-1 -> tidb-3 routes: rtb-0abc has no route
// to 10.3.0.0/16 (want pcx-0123)".
func (r Report) Failures() []string {
	var out []string
	for _, v := range r.Verdicts {
		if v.Status != Fail {
			continue
		}
		for _, c := range v.Causes {
			out = append(out, fmt.Sprintf("%s -> %s %s: %s", v.From, v.To, v.Layer, c))
		}
	}
	return out
}

// Notes are one line per note of every verdict, as Failures lists causes.
func (r Report) Notes() []string {
	var out []string
	for _, v := range r.Verdicts {
		for _, n := range v.Notes {
			out = append(out, fmt.Sprintf("%s -> %s %s: %s", v.From, v.To, v.Layer, n))
		}
	}
	return out
}

// Verify checks every ordered pair of members.
func Verify(in Input) Report {
	obs := in.Observed
	if obs == nil {
		obs = model.NewObserved()
	}
	v := &verifier{in: in, obs: obs}
	r := Report{Layers: Layers}
	if in.TransitGateways != nil {
		r.Layers = GatewayLayers
	}
	for _, m := range in.Members {
		r.Members = append(r.Members, m.Name)
	}
	for _, a := range in.Members {
		for _, b := range in.Members {
			if a.Name == b.Name {
				continue
			}
			add := func(l Layer, res result) {
				r.Verdicts = append(r.Verdicts, Verdict{From: a.Name, To: b.Name, Layer: l, Status: res.status, Causes: res.causes, Notes: res.notes})
			}
			switch {
			case a.External || b.External:
				ext := a.Name
				if !a.External {
					ext = b.Name
				}
				why := result{status: Unmanaged, causes: []string{fmt.Sprintf("network not managed: %s is external", ext)}}
				for _, l := range []Layer{r.Layers[0], LayerRoutes, LayerSG, LayerNACL} { // peering or transit_gateway first
					add(l, why)
				}
			case in.TransitGateways != nil:
				add(LayerGateway, v.gateway(a, b))
				if gw, _ := v.gatewayOf(a.Region); gw != "" {
					add(LayerRoutes, v.routes(a, b, gw))
				} else {
					add(LayerRoutes, skip("no transit gateway of the mesh in "+a.Region))
				}
				add(LayerSG, v.groups(a, b))
				add(LayerNACL, v.nacls(a, b))
			default:
				pcx, peering := v.peering(a, b)
				add(LayerPeering, peering)
				if peering.status == OK {
					add(LayerRoutes, v.routes(a, b, pcx))
				} else {
					add(LayerRoutes, skip("the pair's peering is not active"))
				}
				add(LayerSG, v.groups(a, b))
				add(LayerNACL, v.nacls(a, b))
			}
			add(LayerDNS, v.dns(a, b))
			add(LayerProbe, v.probe(a, b))
		}
	}
	return r
}

type result struct {
	status Status
	causes []string
	notes  []string
}

func skip(why string) result { return result{status: Skipped, causes: []string{why}} }

func check(causes []string) result {
	if len(causes) == 0 {
		return result{status: OK}
	}
	return result{status: Fail, causes: causes}
}

type verifier struct {
	in  Input
	obs *model.Observed
}

// peering finds the pair's peering: an active one if any, else the live one, else the last one that ended.
func (v *verifier) peering(a, b model.Member) (string, result) {
	var live, gone []model.ObservedPeering
	for _, p := range v.obs.Peerings {
		if !p.Connects(a.VPCID, b.VPCID) {
			continue
		}
		if p.Status == model.PeeringActive {
			return p.ID, result{status: OK}
		}
		if p.Gone() {
			gone = append(gone, p)
		} else {
			live = append(live, p)
		}
	}
	byID := func(x, y model.ObservedPeering) int { return strings.Compare(x.ID, y.ID) }
	slices.SortFunc(live, byID)
	// Of the peerings that ended, the one to name is the one someone acted on: a rejection or a failure says
	// more than a deletion (AWS keeps deleted ones listed for a while).
	endRank := map[string]int{model.PeeringRejected: 0, model.PeeringFailed: 1, model.PeeringExpired: 2, model.PeeringDeleting: 3, model.PeeringDeleted: 4}
	slices.SortFunc(gone, func(x, y model.ObservedPeering) int {
		if d := endRank[x.Status] - endRank[y.Status]; d != 0 {
			return d
		}
		return byID(x, y)
	})
	switch {
	case len(live) > 0:
		p := live[0]
		cause := fmt.Sprintf("%s is %s (want active)", p.ID, p.Status)
		if p.Status == model.PeeringPending {
			cause = fmt.Sprintf("%s is %s: accept it in %s (want active)", p.ID, p.Status, p.AccepterRegion)
		}
		return p.ID, check([]string{cause})
	case len(gone) > 0:
		p := gone[0]
		return p.ID, check([]string{fmt.Sprintf("%s between %s and %s is %s (want active)", p.ID, a.VPCID, b.VPCID, p.Status)})
	}
	return "", check([]string{fmt.Sprintf("no peering between %s and %s", a.VPCID, b.VPCID)})
}

// routes checks that every route table of a sends each of b's blocks to want (the pair's peering, or a's
// region's Transit Gateway), and that no more specific route sends part of them elsewhere.
func (v *verifier) routes(a, b model.Member, want string) result {
	var causes []string
	for _, id := range a.RouteTableIDs {
		rt := v.obs.RouteTables[id]
		if rt == nil {
			causes = append(causes, fmt.Sprintf("route table %s not found", id))
			continue
		}
		hops := make([]hop, len(rt.Routes))
		for i, r := range rt.Routes {
			hops[i] = hop{dest: r.DestinationCIDR, target: target(r), blackhole: r.State == "blackhole"}
		}
		causes = append(causes, blockCauses(id, hops, b.CIDRs, want, want, "")...)
	}
	return check(causes)
}

// hop is a route as blockCauses reads it, in a VPC's route table or a gateway's: where it sends the traffic
// ("" for nowhere), and whether it drops it.
type hop struct {
	dest, target string
	blackhole    bool
}

// blockCauses checks that route table id sends each of blocks to want (wantText names it in the causes; hint
// is added to a missing route's), and that no more specific route sends part of a block elsewhere.
func blockCauses(id string, routes []hop, blocks []string, want, wantText, hint string) []string {
	dests := make([]string, len(routes))
	for i, r := range routes {
		dests[i] = r.dest
	}
	var causes []string
	for _, cidr := range blocks {
		block, err := netip.ParsePrefix(cidr)
		if err != nil {
			continue
		}
		i, inside := carrying(dests, block)
		switch {
		case i < 0:
			causes = append(causes, fmt.Sprintf("%s has no route to %s (want %s%s)", id, cidr, wantText, hint))
		case routes[i].blackhole:
			through := ""
			if routes[i].target != "" {
				through = " through " + routes[i].target
			}
			causes = append(causes, fmt.Sprintf("%s's route to %s%s is a blackhole (want %s, active)", id, dests[i], through, wantText))
		case routes[i].target != want:
			if dests[i] == cidr {
				causes = append(causes, fmt.Sprintf("%s routes %s to %s (want %s)", id, cidr, routes[i].target, wantText))
			} else {
				causes = append(causes, fmt.Sprintf("%s has no route to %s (want %s); %s goes to %s", id, cidr, wantText, dests[i], routes[i].target))
			}
		}
		for _, j := range inside {
			if r := routes[j]; r.target != want || r.blackhole {
				to := r.target
				if to == "" {
					to = "nowhere (a blackhole)"
				}
				causes = append(causes, fmt.Sprintf("%s sends %s, part of %s, to %s (want %s)", id, r.dest, cidr, to, wantText))
			}
		}
	}
	return causes
}

// carrying finds, among a table's route destinations, the route that carries the whole of block (the most
// specific one holding it; -1 when none) and the more specific routes that take part of it elsewhere.
func carrying(dests []string, block netip.Prefix) (best int, inside []int) {
	best, bestBits := -1, -1
	for i, d := range dests {
		p, err := netip.ParsePrefix(d)
		if err != nil {
			continue
		}
		switch {
		case p.Bits() <= block.Bits() && p.Contains(block.Addr()):
			if p.Bits() > bestBits {
				best, bestBits = i, p.Bits()
			}
		case p.Bits() > block.Bits() && block.Contains(p.Addr()):
			inside = append(inside, i)
		}
	}
	return best, inside
}

func target(r model.Route) string {
	t := r.PeeringID
	if t == "" {
		t = r.Target
	}
	if t == "" {
		t = "no target"
	}
	return t
}

// groups checks b's node group admits a's blocks and a's lets traffic out to b's.
func (v *verifier) groups(a, b model.Member) result {
	var causes []string
	for _, cidr := range a.CIDRs {
		if !allowsAll(v.obs.Rules[b.SecurityGroupID], cidr) {
			causes = append(causes, fmt.Sprintf("%s (%s's nodes) allows no ingress of all traffic from %s", b.SecurityGroupID, b.Name, cidr))
		}
	}
	if v.obs.Egress != nil {
		for _, cidr := range b.CIDRs {
			if !allowsAll(v.obs.Egress[a.SecurityGroupID], cidr) {
				causes = append(causes, fmt.Sprintf("%s (%s's nodes) allows no egress of all traffic to %s", a.SecurityGroupID, a.Name, cidr))
			}
		}
	}
	return check(causes)
}

// allowsAll reports whether one rule allows every protocol for a block containing cidr.
func allowsAll(rules []model.SecurityGroupRule, cidr string) bool {
	want, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false
	}
	for _, r := range rules {
		p, err := netip.ParsePrefix(r.CIDR)
		if err == nil && r.Protocol == "-1" && p.Bits() <= want.Bits() && p.Contains(want.Addr()) {
			return true
		}
	}
	return false
}

// nacls checks the network ACLs of a's subnets allow egress to b and the return traffic from b, and those of
// b's subnets allow ingress from a.
func (v *verifier) nacls(a, b model.Member) result {
	if v.obs.NACLs == nil {
		return skip("network ACLs not observed")
	}
	var causes []string
	for _, acl := range v.aclsOf(a) {
		for _, cidr := range b.CIDRs {
			if c := aclDenies(acl, true, cidr); c != "" {
				causes = append(causes, fmt.Sprintf("%s (%s's subnets) egress to %s: %s", acl.ID, a.Name, cidr, c))
			}
			if c := aclDenies(acl, false, cidr); c != "" {
				causes = append(causes, fmt.Sprintf("%s (%s's subnets) ingress of return traffic from %s: %s", acl.ID, a.Name, cidr, c))
			}
		}
	}
	for _, acl := range v.aclsOf(b) {
		for _, cidr := range a.CIDRs {
			if c := aclDenies(acl, false, cidr); c != "" {
				causes = append(causes, fmt.Sprintf("%s (%s's subnets) ingress from %s: %s", acl.ID, b.Name, cidr, c))
			}
		}
	}
	return check(causes)
}

// aclsOf are the network ACLs of the subnets whose traffic m's route tables carry: the subnets explicitly
// associated with them, and, when the main table is one of them, the subnets of the VPC that no table
// claims.
func (v *verifier) aclsOf(m model.Member) []model.NetworkACL {
	subnets := map[string]bool{}
	claimed := map[string]bool{}
	mainIncluded := false
	for _, rt := range v.obs.RouteTables {
		if rt.VPCID != m.VPCID {
			continue
		}
		for _, s := range rt.SubnetIDs {
			claimed[s] = true
		}
	}
	for _, id := range m.RouteTableIDs {
		rt := v.obs.RouteTables[id]
		if rt == nil {
			continue
		}
		mainIncluded = mainIncluded || rt.Main
		for _, s := range rt.SubnetIDs {
			subnets[s] = true
		}
	}
	var out []model.NetworkACL
	ids := make([]string, 0, len(v.obs.NACLs))
	for id := range v.obs.NACLs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		acl := v.obs.NACLs[id]
		if acl.VPCID != m.VPCID {
			continue
		}
		if slices.ContainsFunc(acl.SubnetIDs, func(s string) bool { return subnets[s] || (mainIncluded && !claimed[s]) }) {
			out = append(out, acl)
		}
	}
	return out
}

// aclDenies evaluates acl's entries of one direction in rule order for all traffic to or from cidr: it
// returns "" when an entry allowing all protocols for the whole block comes before any entry that denies
// part of it, else what denies.
func aclDenies(acl model.NetworkACL, egress bool, cidr string) string {
	want, err := netip.ParsePrefix(cidr)
	if err != nil {
		return ""
	}
	for _, e := range acl.Entries {
		if e.Egress != egress {
			continue
		}
		p, err := netip.ParsePrefix(e.CIDR)
		if err != nil || !p.Overlaps(want) {
			continue
		}
		covers := p.Bits() <= want.Bits() && p.Contains(want.Addr())
		if e.Allow {
			if covers && e.Protocol == "-1" {
				return ""
			}
			continue // allows only part: the rest goes on to later rules
		}
		if e.RuleNumber == 32767 {
			return "no rule allows it; the default rule * denies"
		}
		return fmt.Sprintf("rule %d denies %s", e.RuleNumber, e.CIDR)
	}
	return "no rule allows it"
}

// dns checks that a's Corefile forwards b's zone to b's current NLB addresses, and that b's DNS Service and
// NLB are there.
func (v *verifier) dns(a, b model.Member) result {
	if v.in.DNS == nil {
		return skip("DNS not observed")
	}
	var causes []string
	svc := fmt.Sprintf("%s's Service %s/%s", b.Name, plan.DNSNamespace, plan.DNSServiceName)
	bo := v.in.DNS[b.Name]
	var want []string
	switch {
	case bo.Service == nil:
		causes = append(causes, svc+" does not exist")
	case b.External:
		// Where its load balancer (MetalLB) or its nodes publish it, as the plan forwards to.
		if lb, waiting := plan.ReachAt(b, bo); waiting != "" {
			causes = append(causes, svc+": "+waiting)
		} else {
			want = lb.Addresses
		}
	case bo.Service.Hostname == "":
		causes = append(causes, svc+" has no load-balancer hostname (status.loadBalancer.ingress)")
	case bo.LoadBalancer == nil:
		causes = append(causes, fmt.Sprintf("%s: no load balancer %s found", svc, bo.Service.Hostname))
	case bo.LoadBalancer.State != model.LoadBalancerActive:
		causes = append(causes, fmt.Sprintf("%s's load balancer %s is %s (want active)", b.Name, bo.LoadBalancer.Name, bo.LoadBalancer.State))
	case len(bo.LoadBalancer.Addresses) == 0:
		causes = append(causes, fmt.Sprintf("%s's load balancer %s has no addresses", b.Name, bo.LoadBalancer.Name))
	default:
		want = bo.LoadBalancer.Addresses
		causes = append(causes, v.frontend(a, b, *bo.LoadBalancer)...)
	}

	ao := v.in.DNS[a.Name]
	site := plan.ObservedSite(ao)
	cm := fmt.Sprintf("%s's Corefile (%s)", a.Name, site)
	text, ok := plan.SiteText(ao)
	switch {
	case !site.Found():
		return check(append(causes, fmt.Sprintf("%s has no CoreDNS configuration meshd can write to (looked for %s)", a.Name, orNone(ao.Looked))))
	case !ok:
		return check(append(causes, cm+" has no "+site.Key+" key"))
	}
	blocks, err := corefile.Blocks(text)
	if err != nil {
		return check(append(causes, fmt.Sprintf("%s does not parse: %v", cm, err)))
	}
	zone := corefile.NormalizeZone(plan.DNSZone(v.in.ForwardBy, b))
	var found *corefile.ServerBlock
	for i, blk := range blocks {
		if blk.OwnedBy(v.in.Mesh, v.in.OwnedZones[a.Name]) && blk.Zones[0] == zone {
			found = &blocks[i]
			break
		}
	}
	switch {
	case found == nil:
		w := ""
		if want != nil {
			w = " (want forward to " + strings.Join(want, " ") + ")"
		}
		causes = append(causes, fmt.Sprintf("%s has no meshd block for %s%s", cm, zone, w))
	case want != nil:
		got := upstreamAddrs(corefile.ForwardUpstreams(text, *found))
		if !slices.Equal(got, want) {
			causes = append(causes, fmt.Sprintf("%s forwards %s to %s (want %s, %s's load balancer)", cm, zone,
				orNone(got), strings.Join(want, " "), b.Name))
		}
	}
	res := check(append(causes, v.nodeLocal(a, zone)...))
	if ao.NodeLocal != nil && len(res.causes) == 0 {
		res.notes = append(res.notes, fmt.Sprintf("%s's Pods ask its NodeLocal DNSCache, which forwards %s to CoreDNS", a.Name, zone))
	}
	return res
}

// nodeLocal checks the path a Pod's query for zone takes through a's NodeLocal DNSCache, when a runs one:
// under a's own cluster domain (namespace mode) the cache sends it to CoreDNS by itself; another domain
// needs meshd's block in the cache's Corefile, routed as the cache routes a's own domain.
func (v *verifier) nodeLocal(a model.Member, zone string) []string {
	cache := v.in.DNS[a.Name].NodeLocal
	if cache == nil {
		return nil
	}
	own := corefile.NormalizeZone(plan.DNSZone("cluster_domain", a))
	if plan.UnderDomain(zone, own) {
		return nil
	}
	cm := fmt.Sprintf("%s's NodeLocal DNSCache Corefile (%s/%s)", a.Name, plan.DNSNamespace, plan.NodeLocalConfigMap)
	text := cache.Data[plan.CorefileKey]
	route, err := corefile.CacheRouteOf(text, own)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", cm, err)}
	}
	blocks, err := corefile.Blocks(text)
	if err != nil {
		return []string{fmt.Sprintf("%s does not parse: %v", cm, err)}
	}
	i := slices.IndexFunc(blocks, func(b corefile.ServerBlock) bool {
		return b.OwnedBy(v.in.Mesh, v.in.NodeLocalZones[a.Name]) && b.Zones[0] == zone
	})
	if i < 0 {
		return []string{fmt.Sprintf("%s has no meshd block for %s: the cache sends it upstream, not to CoreDNS", cm, zone)}
	}
	got, err := corefile.CacheRouteOf(text, zone)
	if err != nil || !slices.Equal(got.Forward, route.Forward) {
		return []string{fmt.Sprintf("%s forwards %s to %s (want %s, where it forwards %s)", cm, zone, orNone(got.Forward),
			strings.Join(route.Forward, " "), own)}
	}
	return nil
}

// frontend checks that the security groups of b's NLB admit a's queries: each block they come from
// (plan.SourceBlocks) on 53/TCP, by some rule of some group. An NLB without security groups (made by an
// older load balancer controller) has nothing to check. Rules that name a security group or a prefix list
// are not read, so a group admitting a's blocks only through one of those is reported.
func (v *verifier) frontend(a, b model.Member, lb model.LoadBalancer) []string {
	if v.in.LoadBalancerRules == nil || len(lb.SecurityGroups) == 0 {
		return nil
	}
	var causes []string
	for _, block := range plan.SourceBlocks(a) {
		if slices.ContainsFunc(lb.SecurityGroups, func(g string) bool { return admitsDNS(v.in.LoadBalancerRules[g], block) }) {
			continue
		}
		groups, verb := strings.Join(lb.SecurityGroups, ", "), "does"
		what := "frontend of NLB " + lb.Name
		if len(lb.SecurityGroups) > 1 {
			verb, what = "do", "frontend groups of NLB "+lb.Name
		}
		causes = append(causes, fmt.Sprintf("%s (%s) %s not admit %s on 53/TCP", groups, what, verb, block))
	}
	return causes
}

// admitsDNS reports whether one ingress rule admits TCP port 53 from a block containing block.
func admitsDNS(rules []model.SecurityGroupRule, block string) bool {
	want, err := netip.ParsePrefix(block)
	if err != nil {
		return false
	}
	for _, r := range rules {
		p, err := netip.ParsePrefix(r.CIDR)
		if err != nil || p.Bits() > want.Bits() || !p.Contains(want.Addr()) {
			continue
		}
		switch strings.ToLower(r.Protocol) {
		case "-1":
			return true
		case "tcp", "6":
			if r.FromPort <= 53 && 53 <= r.ToPort {
				return true
			}
		}
	}
	return false
}

// upstreamAddrs are the addresses of forward upstreams (dns:// and port 53 taken off), sorted.
func upstreamAddrs(ups []string) []string {
	out := []string{}
	for _, u := range ups {
		out = append(out, corefile.CanonicalUpstream(u))
	}
	sort.Strings(out)
	return out
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, " ")
}

func (v *verifier) probe(a, b model.Member) result {
	if v.in.Probes == nil {
		return skip("not probed (--probe)")
	}
	p, ok := v.in.Probes[Pair{a.Name, b.Name}]
	if !ok {
		return skip("no probe result")
	}
	if p.OK {
		return result{status: OK}
	}
	return check([]string{p.Message})
}

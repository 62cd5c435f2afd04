package plan

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
)

// Prices are what `meshctl plan --costs` prices a topology with: AWS's list prices of us-east-1 by default,
// set with flags (never fetched: a plan makes no call to the pricing API).
type Prices struct {
	AttachmentHour float64 // USD per Transit Gateway attachment-hour (VPC and peering attachments)
	ProcessingGB   float64 // USD per GB a Transit Gateway processes (charged once, where traffic enters)
	InterRegionGB  float64 // USD per GB sent to another region (through a VPC or a gateway peering alike)
}

// DefaultPrices are the list prices of us-east-1 when this was written.
var DefaultPrices = Prices{AttachmentHour: 0.05, ProcessingGB: 0.02, InterRegionGB: 0.02}

// HoursPerMonth is AWS's billing month.
const HoursPerMonth = 730

// TopologyCost is what one topology needs for a mesh's members: the counts that meet the quotas of the
// spec's quotas block (the largest per VPC, route table or group), and what it costs.
type TopologyCost struct {
	Topology string
	// Peerings are VPC peering connections (peering) or gateway peering attachments (transit_gateway).
	Peerings int
	// PeeringsPerVPC, RoutesPerTable and RulesPerGroup are the most that one VPC, member route table or node
	// security group gets from meshd; the quotas are the spec's.
	PeeringsPerVPC, RoutesPerTable, RulesPerGroup int
	Quotas                                        spec.Quotas
	// Gateways and Attachments (VPC and peering attachments) are billed by the hour.
	Gateways, Attachments int
	MonthlyUSD            float64 // attachment-hours of a month
	// PerGBSameRegion and PerGBAcrossRegions are what a GB sent between two members costs on top.
	PerGBSameRegion, PerGBAcrossRegions float64
}

// Exceeds names the quotas the topology would exceed.
func (t TopologyCost) Exceeds() []string {
	var out []string
	if t.Quotas.PeeringsPerVPC > 0 && t.PeeringsPerVPC > t.Quotas.PeeringsPerVPC {
		out = append(out, "peerings_per_vpc")
	}
	if t.Quotas.RoutesPerRouteTable > 0 && t.RoutesPerTable > t.Quotas.RoutesPerRouteTable {
		out = append(out, "routes_per_route_table")
	}
	if t.Quotas.InboundRulesPerGroup > 0 && t.RulesPerGroup > t.Quotas.InboundRulesPerGroup {
		out = append(out, "inbound_rules_per_group")
	}
	return out
}

// TopologyCosts compares the two topologies for the members (external ones take no part), peering first.
// The security-group rules are the same in both: one per remote block.
func TopologyCosts(m *spec.Mesh, members []model.Member, prices Prices) []TopologyCost {
	var networked []model.Member
	regions := map[string]bool{}
	for _, mem := range members {
		if !mem.External {
			networked = append(networked, mem)
			regions[mem.Region] = true
		}
	}
	q := m.Quotas
	if q == (spec.Quotas{}) {
		q = spec.DefaultQuotas
	}
	n, r := len(networked), len(regions)
	peering := TopologyCost{Topology: spec.TopologyPeering, Quotas: q, Peerings: n * (n - 1) / 2,
		PerGBAcrossRegions: prices.InterRegionGB}
	gateway := TopologyCost{Topology: spec.TopologyTransitGateway, Quotas: q, Peerings: r * (r - 1) / 2,
		Gateways: r, PerGBSameRegion: prices.ProcessingGB, PerGBAcrossRegions: prices.ProcessingGB + prices.InterRegionGB}
	gateway.Attachments = n + gateway.Peerings
	gateway.MonthlyUSD = float64(gateway.Attachments) * HoursPerMonth * prices.AttachmentHour
	if n > 0 {
		peering.PeeringsPerVPC = n - 1
	}
	for _, a := range networked {
		remote := 0
		var summaries []netip.Prefix
		if g := m.TransitGateway(a.Region); g != nil {
			for _, s := range g.SummaryCIDRs {
				summaries = append(summaries, netip.MustParsePrefix(s))
			}
		}
		gatewayRoutes := len(summaries)
		for _, b := range networked {
			if b.Name == a.Name {
				continue
			}
			remote += len(b.CIDRs)
			for _, c := range b.CIDRs {
				if !covered(summaries, c) {
					gatewayRoutes++
				}
			}
		}
		peering.RoutesPerTable = max(peering.RoutesPerTable, remote)
		peering.RulesPerGroup = max(peering.RulesPerGroup, remote)
		gateway.RoutesPerTable = max(gateway.RoutesPerTable, gatewayRoutes)
		gateway.RulesPerGroup = max(gateway.RulesPerGroup, remote)
	}
	return []TopologyCost{peering, gateway}
}

// covered reports whether one of the summaries holds the block cidr.
func covered(summaries []netip.Prefix, cidr string) bool {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(summaries, func(s netip.Prefix) bool { return s.Bits() <= p.Bits() && s.Contains(p.Addr()) })
}

// checkTopology refuses a transit_gateway mesh with members of one region reached with different accesses:
// a region's gateway objects are made with one access, and a member of another account would need the
// gateway shared to it (AWS RAM), which meshd does not do. Refused rather than half-built; it never falls
// back to peering. Regions in different accounts are fine: their gateways' peering is requested in one
// account and accepted in the other, as VPC peerings are.
func checkTopology(m *spec.Mesh) hcl.Diagnostics {
	if !m.UsesTransitGateway() {
		return nil
	}
	r := m.Attrs["topology"]
	roles := map[string]map[string]bool{} // region -> assume_role settings of its members
	for _, c := range m.Clusters {
		if c.External() {
			continue
		}
		if roles[c.Region] == nil {
			roles[c.Region] = map[string]bool{}
		}
		roles[c.Region][c.AssumeRole] = true
	}
	for _, region := range slices.Sorted(maps.Keys(roles)) {
		if len(roles[region]) > 1 {
			return hcl.Diagnostics{{Severity: hcl.DiagError, Subject: &r, Summary: "Transit Gateway topology across accounts in one region not planned yet",
				Detail: fmt.Sprintf(`The members in %s are reached with different assume_role settings. Their region's gateway would have to be shared to the other accounts (AWS RAM), which this meshd does not do. Keep each region's members in one account (regions in different accounts are fine), or remove topology = "transit_gateway" to mesh with VPC peerings.`, region)}}
		}
	}
	return nil
}

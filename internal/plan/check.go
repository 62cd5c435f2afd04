package plan

import (
	"fmt"
	"net/netip"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
)

// Check reports what makes the plan impossible to apply as a whole, against the spec's source ranges:
// member VPCs whose CIDR blocks overlap (routes would be ambiguous) and quotas the plan would exceed. It runs
// after Compute because quotas depend on what the plan adds and removes.
func Check(m *spec.Mesh, members []model.Member, obs *model.Observed, p *Plan) hcl.Diagnostics {
	var diags hcl.Diagnostics
	diags = append(diags, checkOverlaps(m, members)...)
	if !p.Destroy {
		diags = append(diags, checkQuotas(m, members, obs, p)...)
	}
	return diags
}

// networkRange points at the attribute that chose the cluster's VPC.
func networkRange(c *spec.Cluster) *hcl.Range {
	for _, attr := range []string{"cidr_blocks", "vpc_id", "eks_cluster"} {
		if _, ok := c.Attrs[attr]; ok {
			r := c.AttrRange(attr)
			return &r
		}
	}
	r := c.DeclRange
	return &r
}

func clusterRange(m *spec.Mesh, name string) *hcl.Range {
	if c := m.Cluster(name); c != nil {
		return networkRange(c)
	}
	r := m.DeclRange
	return &r
}

func checkOverlaps(m *spec.Mesh, members []model.Member) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for i, a := range members {
		for _, b := range members[i+1:] {
			for _, ca := range a.CIDRs {
				for _, cb := range b.CIDRs {
					pa, err1 := netip.ParsePrefix(ca)
					pb, err2 := netip.ParsePrefix(cb)
					if err1 != nil || err2 != nil || !pa.Overlaps(pb) {
						continue
					}
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError,
						Summary:  "Overlapping CIDR blocks",
						Detail: fmt.Sprintf("Cluster %q (VPC %s) has %s, which overlaps %s of cluster %q (VPC %s). "+
							"Peered VPCs need disjoint CIDR blocks: give one cluster another VPC, or leave the block out with cidr_blocks.",
							b.Name, b.VPCID, cb, ca, a.Name, a.VPCID),
						Subject: clusterRange(m, b.Name),
					})
				}
			}
		}
	}
	return diags
}

func checkQuotas(m *spec.Mesh, members []model.Member, obs *model.Observed, p *Plan) hcl.Diagnostics {
	q := m.Quotas
	var diags hcl.Diagnostics

	// Peerings per VPC: every live peering counts, meshd's or not.
	peerings := map[string]int{}
	for _, pc := range obs.Peerings {
		if !pc.Gone() {
			peerings[pc.RequesterVPC]++
			peerings[pc.AccepterVPC]++
		}
	}
	routes := map[string]int{}
	for id, rt := range obs.RouteTables {
		for _, r := range rt.Routes {
			if r.Target != "local" {
				routes[id]++
			}
		}
	}
	rules := map[string]int{}
	for g, rs := range obs.Rules {
		rules[g] = len(rs)
	}
	for _, ch := range p.Changes {
		delta := 0
		switch ch.Action {
		case Create:
			delta = 1
		case Delete:
			delta = -1
		default:
			continue
		}
		res := ch.After
		if res == nil {
			res = ch.Before
		}
		switch r := res.(type) {
		case Peering:
			peerings[r.Requester.VPCID] += delta
			peerings[r.Accepter.VPCID] += delta
		case Route:
			routes[r.RouteTableID] += delta
		case SGRule:
			rules[r.GroupID] += delta
		}
	}

	for _, mem := range members {
		rng := clusterRange(m, mem.Name)
		if n := peerings[mem.VPCID]; q.PeeringsPerVPC > 0 && n > q.PeeringsPerVPC {
			diags = append(diags, quotaDiag(rng, "VPC peering quota exceeded", fmt.Sprintf(
				"VPC %s of cluster %q would have %d active peering connections; the quota is %d per VPC. "+
					"Request a higher quota (up to 125) and set quotas { peerings_per_vpc = N } in the mesh block.",
				mem.VPCID, mem.Name, n, q.PeeringsPerVPC)))
		}
		for _, rt := range mem.RouteTableIDs {
			if n := routes[rt]; q.RoutesPerRouteTable > 0 && n > q.RoutesPerRouteTable {
				diags = append(diags, quotaDiag(rng, "Route table quota exceeded", fmt.Sprintf(
					"Route table %s of cluster %q would hold %d routes; the quota is %d per route table. "+
						"Request a higher quota and set quotas { routes_per_route_table = N } in the mesh block.",
					rt, mem.Name, n, q.RoutesPerRouteTable)))
			}
		}
		if n := rules[mem.SecurityGroupID]; q.InboundRulesPerGroup > 0 && n > q.InboundRulesPerGroup {
			diags = append(diags, quotaDiag(rng, "Security group rule quota exceeded", fmt.Sprintf(
				"Security group %s of cluster %q would have %d inbound rules; the quota is %d per group. "+
					"Request a higher quota and set quotas { inbound_rules_per_group = N } in the mesh block.",
				mem.SecurityGroupID, mem.Name, n, q.InboundRulesPerGroup)))
		}
	}
	return diags
}

func quotaDiag(rng *hcl.Range, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng}
}

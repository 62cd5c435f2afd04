package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
)

// Check reports what makes the plan impossible to apply as a whole, against the spec's source ranges:
// member VPCs with overlapping CIDR blocks (any of their blocks: AWS refuses such a peering) and quotas the plan would exceed. It runs
// after Compute because quotas depend on what the plan adds and removes.
func Check(m *spec.Mesh, members []model.Member, obs *model.Observed, p *Plan) hcl.Diagnostics {
	diags := checkCoreDNS(m, p)
	if !p.Destroy { // removing what meshd made needs neither disjoint blocks nor quota room
		// An external member has no VPC: nothing of it is peered, nor counts toward a quota.
		networked := slices.DeleteFunc(slices.Clone(members), func(mem model.Member) bool { return mem.External })
		diags = append(diags, checkOverlaps(m, networked, obs)...)
		diags = append(diags, checkQuotas(m, networked, obs, p)...)
		diags = append(diags, checkDomains(m, p)...)
		diags = append(diags, checkPrivileges(m, p)...)
		diags = append(diags, checkTopology(m)...) // destroy removes what meshd made either way
	}
	return diags
}

// checkDomains reports, in cluster-domain mode, members whose CoreDNS does not serve their declared
// cluster domain, at the cluster's cluster_domain (or its block when the domain is the default).
func checkDomains(m *spec.Mesh, p *Plan) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, dm := range p.DomainMismatches {
		subject := m.DeclRange
		if c := m.Cluster(dm.Cluster); c != nil {
			subject = c.AttrRange("cluster_domain")
		}
		served := "has no kubernetes plugin, so its CoreDNS serves no cluster domain"
		if len(dm.Served) > 0 {
			served = "serves " + strings.Join(dm.Served, ", ") + " with its kubernetes plugin"
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cluster domain not served",
			Detail: fmt.Sprintf("Cluster %q declares cluster domain %s, but its Corefile (%s/%s) %s. "+
				"The other clusters would forward %s to a CoreDNS that does not answer for it. Set cluster_domain to the domain the cluster "+
				"was built with (kubelet --cluster-domain, the kubernetes plugin's zone), or make its CoreDNS serve %s.",
				dm.Cluster, dm.Declared, DNSNamespace, CoreDNSConfigMap, served, dm.Declared, dm.Declared),
			Subject: &subject,
		})
	}
	return diags
}

// checkCoreDNS warns, at the cluster (its dns corefile setting when it has one), about each member where
// meshd found no CoreDNS configuration to write to. It is a warning: the member is still peered and its
// names served to the others; only its own Pods do not resolve the others' names through meshd.
func checkCoreDNS(m *spec.Mesh, p *Plan) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, n := range p.NoCoreDNS {
		subject := m.DeclRange
		if c := m.Cluster(n.Cluster); c != nil {
			subject = c.DeclRange
			for _, attr := range []string{"dns.corefile", "dns.corefile_import"} {
				if _, ok := c.Attrs[attr]; ok {
					subject = c.AttrRange(attr)
				}
			}
		}
		detail := fmt.Sprintf("meshd looked for %s in cluster %q and found no Corefile there.", strings.Join(n.Looked, " and "), n.Cluster)
		if n.AutoMode {
			detail = fmt.Sprintf("Cluster %q runs in EKS Auto Mode, where DNS is a node component with no CoreDNS ConfigMap that meshd could add its server blocks to.", n.Cluster)
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "No CoreDNS configuration to write to",
			Detail: detail + " The cluster is still meshed: its network is peered, and the other members resolve its names. " +
				"Its own Pods do not resolve the other members' names through meshd. If the cluster runs CoreDNS elsewhere, name it with " +
				"dns { corefile = \"NAMESPACE/NAME\" } (or corefile_import for a Corefile that imports *.server files); docs/dns.md lists the other choices.",
			Subject: &subject,
		})
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

// vpcRange points at the attribute that names the cluster's VPC (vpc_id or eks_cluster), or at the block.
func vpcRange(c *spec.Cluster) *hcl.Range {
	for _, attr := range []string{"vpc_id", "eks_cluster"} {
		if _, ok := c.Attrs[attr]; ok {
			r := c.AttrRange(attr)
			return &r
		}
	}
	r := c.DeclRange
	return &r
}

// vpcBlocks is every IPv4 CIDR block of the member's VPC as observed, meshed or not (AWS refuses a peering
// when any block of the one VPC overlaps any of the other's), plus the member's own in case the observation
// lacks the VPC.
func vpcBlocks(mem model.Member, obs *model.Observed) []string {
	var out []string
	if obs != nil {
		out = append(out, obs.VPCs[mem.VPCID].CIDRs...)
	}
	for _, c := range mem.CIDRs {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// checkOverlaps reports every pair of overlapping CIDR blocks of two member VPCs, at the VPC of the later
// member in spec order. All blocks count, not only the meshed ones: leaving a block out with cidr_blocks does
// not make AWS accept the peering.
func checkOverlaps(m *spec.Mesh, members []model.Member, obs *model.Observed) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for i, a := range members {
		for _, b := range members[i+1:] {
			if a.VPCID == b.VPCID {
				continue // one VPC twice is the spec's Duplicate VPC
			}
			for _, ca := range vpcBlocks(a, obs) {
				for _, cb := range vpcBlocks(b, obs) {
					pa, err1 := netip.ParsePrefix(ca)
					pb, err2 := netip.ParsePrefix(cb)
					if err1 != nil || err2 != nil || !pa.Overlaps(pb) {
						continue
					}
					where := ""
					if c := m.Cluster(a.Name); c != nil {
						r := vpcRange(c)
						where = fmt.Sprintf(" (%s:%d)", r.Filename, r.Start.Line)
					}
					subject := &m.DeclRange
					if c := m.Cluster(b.Name); c != nil {
						subject = vpcRange(c)
					}
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError,
						Summary:  "Overlapping CIDR blocks",
						Detail: fmt.Sprintf("VPC %s of cluster %q has %s, which overlaps %s of VPC %s of cluster %q%s. "+
							"AWS refuses to peer two VPCs when any of their CIDR blocks overlap, meshed or not, so cidr_blocks cannot work around it: "+
							"give one of the clusters a VPC whose blocks are disjoint from the other's, or disassociate the overlapping block from its VPC if it is a secondary one.",
							b.VPCID, b.Name, cb, ca, a.VPCID, a.Name, where),
						Subject: subject,
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
	// Routes per table: every route but the local one and those a gateway propagated (AWS's quota is of
	// non-propagated routes).
	routes := map[string]int{}
	for id, rt := range obs.RouteTables {
		for _, r := range rt.Routes {
			if r.Target != "local" && !r.Propagated {
				routes[id]++
			}
		}
	}
	// Inbound rules per group: CIDR rules and the rules referencing a group or a prefix list alike.
	rules := map[string]int{}
	for g, rs := range obs.Rules {
		rules[g] = len(rs)
	}
	for g, n := range obs.ReferencingRules {
		rules[g] += n
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

package spec

import (
	"math/big"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// LoadBalancer is a load_balancer block: one NLB target group, made by the AWS Load Balancer Controller for
// the primary's Service, that the secondaries' Pods are registered in as well (LBC v2.10+
// multiClusterTargetGroup). meshd annotates the primary's Service and writes a TargetGroupBinding in each
// secondary; it never creates or deletes the Service, the NLB or the target group.
type LoadBalancer struct {
	Name      string
	Primary   string
	Namespace string
	Service   string
	// Secondaries as written; empty means every other member (see SecondariesOf).
	Secondaries []string
	// DeletionProtection (default true) merges deletion_protection.enabled=true into the Service's
	// aws-load-balancer-attributes annotation.
	DeletionProtection bool
	// Port picks the Service port (and so the primary's TargetGroupBinding) when the Service has several;
	// 0: the Service's only port.
	Port int32

	BlockRanges
}

// SecondariesOf are the clusters whose Pods join the target group: Secondaries, or every AWS member but
// the primary (an external member's Pods are not reachable from the load balancer's VPC through meshd).
func (lb *LoadBalancer) SecondariesOf(m *Mesh) []string {
	if len(lb.Secondaries) > 0 {
		return lb.Secondaries
	}
	var out []string
	for _, c := range m.Clusters {
		if c.Name != lb.Primary && !c.External() {
			out = append(out, c.Name)
		}
	}
	return out
}

// LoadBalancer returns the load_balancer block with the given name, or nil.
func (m *Mesh) LoadBalancer(name string) *LoadBalancer {
	for _, lb := range m.LoadBalancers {
		if lb.Name == name {
			return lb
		}
	}
	return nil
}

var loadBalancerSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "primary"}, {Name: "namespace"}, {Name: "service"}, {Name: "secondaries"},
		{Name: "deletion_protection"}, {Name: "port"},
	},
}

func (d *decoder) decodeLoadBalancer(b *hcl.Block) {
	lb := &LoadBalancer{Name: b.Labels[0], DeletionProtection: true, BlockRanges: newBlockRanges(b.DefRange)}
	if !isDNSLabel(lb.Name) {
		d.errorf(b.LabelRanges[0], "Invalid load_balancer name", "%s", labelDetail("load_balancer", lb.Name))
	}
	content, diags := b.Body.Content(loadBalancerSchema)
	d.diags = append(d.diags, diags...)
	attrs := content.Attributes
	lb.Primary, _, _ = d.strIn(lb.Attrs, attrs, "primary")
	if s, rg, ok := d.strIn(lb.Attrs, attrs, "namespace"); ok {
		lb.Namespace = s
		if !isDNSLabel(s) {
			d.errorf(rg, "Invalid namespace", "%q is not a Kubernetes namespace name: it must be a DNS-1123 label.", s)
		}
	}
	if s, rg, ok := d.strIn(lb.Attrs, attrs, "service"); ok {
		lb.Service = s
		if !isDNSLabel(s) {
			d.errorf(rg, "Invalid Service name", "%q is not a Kubernetes Service name: it must be a DNS-1035 label (lowercase letters, digits and '-').", s)
		}
	}
	if l, _, ok := d.strListIn(lb.Attrs, lb.Elems, attrs, "secondaries"); ok {
		lb.Secondaries = l
	}
	if a := attrs["deletion_protection"]; a != nil {
		if v, st := d.value(a, cty.Bool); st == valOK {
			lb.DeletionProtection = v.True()
			lb.Attrs["deletion_protection"] = a.Expr.Range()
		}
	}
	if a := attrs["port"]; a != nil {
		if v, st := d.value(a, cty.Number); st == valOK {
			rg := a.Expr.Range()
			lb.Attrs["port"] = rg
			n, acc := v.AsBigFloat().Int64()
			if acc != big.Exact || n < 1 || n > 65535 {
				d.errorf(rg, "Invalid port", "port must be a port of the Service, a whole number from 1 to 65535.")
			} else {
				lb.Port = int32(n)
			}
		}
	}
	if prev := d.m.LoadBalancer(lb.Name); prev != nil {
		d.errorf(b.DefRange, "Duplicate load_balancer name",
			"A load_balancer block named %q was already declared at %s. Rename one of them.", lb.Name, pos(prev.DeclRange))
		return
	}
	d.m.LoadBalancers = append(d.m.LoadBalancers, lb)
}

// validateLoadBalancers checks each load_balancer block against the clusters, once every file is read.
func (d *decoder) validateLoadBalancers() {
	m := d.m
	type binding struct{ cluster, namespace, name string }
	bindings := map[binding]*LoadBalancer{}
	for _, lb := range m.LoadBalancers {
		var missing []string
		for _, a := range []string{"primary", "namespace", "service"} {
			if _, ok := lb.Attrs[a]; !ok {
				missing = append(missing, a)
			}
		}
		if len(missing) > 0 {
			d.errorf(lb.DeclRange, "Missing required argument", "load_balancer %q has no %s: a load_balancer names the primary cluster and the namespace and name of its LoadBalancer Service.",
				lb.Name, strings.Join(missing, ", "))
		}
		if _, ok := lb.Attrs["primary"]; ok && m.Cluster(lb.Primary) == nil {
			d.errorf(lb.AttrRange("primary"), "Unknown cluster",
				"load_balancer %q names primary %q, which is not a cluster of this mesh (%s).", lb.Name, lb.Primary, m.ClusterList())
		} else if c := m.Cluster(lb.Primary); c != nil && c.External() {
			d.errorf(lb.AttrRange("primary"), "External member in a load balancer",
				`load_balancer %q names primary %q, whose network is external: its Service gets no AWS NLB from the AWS Load Balancer Controller. The primary must be an AWS member.`, lb.Name, lb.Primary)
		}
		seen := map[string]bool{}
		for i, s := range lb.Secondaries {
			rg := lb.ElemRange("secondaries", i)
			switch {
			case m.Cluster(s) == nil:
				// Only a member is peered with the primary's VPC by meshd, which IP targets outside the load
				// balancer's VPC need.
				d.errorf(rg, "Unknown cluster",
					"load_balancer %q names secondary %q, which is not a cluster of this mesh (%s). A secondary must be a member: meshd peers its VPC with the primary's, which the target group needs to reach its Pods.",
					lb.Name, s, m.ClusterList())
			case m.Cluster(s).External():
				d.errorf(rg, "External member in a load balancer",
					`load_balancer %q names secondary %q, whose network is external: meshd does not connect it to the load balancer's VPC, so the target group could not reach its Pods. Remove it from secondaries.`, lb.Name, s)
			case s == lb.Primary:
				d.errorf(rg, "Primary listed as a secondary",
					"%q is load_balancer %q's primary: LBC registers its Pods already. Remove it from secondaries.", s, lb.Name)
			case seen[s]:
				d.errorf(rg, "Duplicate list entry", "Cluster %q is listed twice in secondaries.", s)
			}
			seen[s] = true
		}
		if _, set := lb.Attrs["secondaries"]; !set && len(lb.SecondariesOf(m)) == 0 && m.Cluster(lb.Primary) != nil {
			d.errorf(lb.DeclRange, "No secondary",
				"Every member of the mesh but load_balancer %q's primary %q is external, so no other cluster can join its target group. Add an AWS member, or remove the load_balancer block.", lb.Name, lb.Primary)
		}
		if _, set := lb.Attrs["secondaries"]; set && len(lb.Secondaries) == 0 {
			d.errorf(lb.AttrRange("secondaries"), "Empty secondary list",
				"load_balancer %q has no secondaries, so no other cluster joins its target group. Name them, or remove secondaries to use every other member.", lb.Name)
		}
		for _, s := range lb.SecondariesOf(m) {
			k := binding{s, lb.Namespace, lb.Name}
			if prev := bindings[k]; prev != nil && prev != lb {
				d.errorf(lb.DeclRange, "Two load balancers write one TargetGroupBinding",
					"load_balancer %q and %q (%s) would both write TargetGroupBinding %s/%s in cluster %q.", lb.Name, prev.Name, pos(prev.DeclRange), lb.Namespace, lb.Name, s)
			}
			bindings[k] = lb
		}
	}
}

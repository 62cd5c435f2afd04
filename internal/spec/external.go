package spec

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/meshd-io/meshd/internal/corefile"
)

// The annotations of an AWS member's DNS Service that make its internal NLB: the AWS Load Balancer
// Controller (or the in-tree cloud provider) reads them. dns { service_annotations } may add others but not
// change these: an internet-facing or classic load balancer in front of CoreDNS is not what the mesh needs.
const (
	AnnotationLBType      = "service.beta.kubernetes.io/aws-load-balancer-type"
	AnnotationLBInternal  = "service.beta.kubernetes.io/aws-load-balancer-internal"
	AnnotationLBCrossZone = "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled"
)

// NLBAnnotations are the annotations above with the values meshd sets.
func NLBAnnotations() map[string]string {
	return map[string]string{AnnotationLBType: "nlb", AnnotationLBInternal: "true", AnnotationLBCrossZone: "true"}
}

// AnnotationOwnedKeys is the annotation in which meshd records the keys of dns { service_annotations } it
// set, so that a key removed from the spec is removed from the Service too.
const AnnotationOwnedKeys = "meshd.io/service-annotations"

// awsAttributes are the cluster attributes that name AWS objects or reach AWS: an external member has none.
var awsAttributes = []string{"region", "eks_cluster", "vpc_id", "security_group_id", "route_table_ids", "cidr_blocks", "assume_role", "external_id"}

// A Kubernetes annotation key: an optional DNS-subdomain prefix and "/", then a name of at most 63
// characters.
var annotationNameRe = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)

// decodeNetwork reads a cluster's network attribute.
func (d *decoder) decodeNetwork(c *Cluster, a *hcl.Attribute) {
	s, r, ok := d.strIn(c.Attrs, hcl.Attributes{"network": a}, "network")
	if a == nil || !ok {
		return
	}
	switch s {
	case NetworkAWS, NetworkExternal:
		c.Network = s
	default:
		d.errorf(r, "Invalid network",
			`network is %q; set it to "aws" (the default: meshd peers the cluster's VPC with the other members') or "external" (a network meshd does not manage, such as Cilium ClusterMesh between your own data centres: meshd then makes no peerings, routes or rules for the cluster).`, s)
	}
}

// decodeClusterDNS reads a cluster's dns block. The attributes' ranges go into c.Attrs as "dns.<name>".
func (d *decoder) decodeClusterDNS(c *Cluster, blocks hcl.Blocks) {
	var first *hcl.Block
	for _, b := range blocks {
		if first != nil {
			d.errorf(b.DefRange, "Duplicate dns block",
				"Cluster %q already has a dns block at %s. Merge the two into one block.", c.Name, pos(first.DefRange))
			continue
		}
		first = b
		c.Attrs["dns"] = b.DefRange
		content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
			{Name: "service_type"}, {Name: "node_addresses"}, {Name: "service_annotations"},
			{Name: "corefile"}, {Name: "corefile_import"}}})
		d.diags = append(d.diags, diags...)
		set := map[string]hcl.Range{}
		elems := map[string][]hcl.Range{}
		if s, r, ok := d.strIn(set, content.Attributes, "service_type"); ok {
			if s == ServiceTypeLoadBalancer || s == ServiceTypeNodePort {
				c.DNS.ServiceType = s
			} else {
				d.errorf(r, "Invalid DNS Service type",
					`service_type is %q; set it to "LoadBalancer" (a load balancer in front of CoreDNS: an internal NLB on AWS, MetalLB or the like on an external member) or "NodePort" (an external member's nodes, named by node_addresses).`, s)
			}
		}
		if l, rs, ok := d.strListIn(set, elems, content.Attributes, "node_addresses"); ok {
			c.DNS.NodeAddresses = d.checkNodeAddresses(c, l, rs, set["node_addresses"])
		}
		if a := content.Attributes["service_annotations"]; a != nil {
			c.DNS.ServiceAnnotations = d.annotations(a, set)
		}
		c.DNS.Corefile, _ = d.decodeCorefileLocation(content.Attributes, set)
		for k, r := range set {
			c.Attrs["dns."+k] = r
		}
		for k, rs := range elems {
			c.Elems["dns."+k] = rs
		}
	}
}

// checkNodeAddresses keeps the node addresses that are IP addresses, reporting the others and repeats.
func (d *decoder) checkNodeAddresses(c *Cluster, l []string, rs []hcl.Range, attr hcl.Range) []string {
	var out []string
	seen := map[netip.Addr]bool{}
	for i, s := range l {
		r := elem(rs, i, attr)
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil || a.Zone() != "":
			d.errorf(r, "Invalid node address",
				"%q is not an IP address. node_addresses are the addresses of cluster %q's nodes that the other clusters reach (CoreDNS forwards to addresses, not names), like \"192.168.10.11\".", s, c.Name)
		case a.IsUnspecified() || a.IsMulticast():
			d.errorf(r, "Invalid node address",
				"%s is not the address of a node: name addresses of cluster %q's nodes that the other clusters reach, like \"192.168.10.11\".", s, c.Name)
		case seen[a.Unmap()]:
			d.errorf(r, "Duplicate list entry", "Node address %s is listed twice.", s)
		default:
			seen[a.Unmap()] = true
			out = append(out, a.Unmap().String())
		}
	}
	if len(l) == 0 {
		d.errorf(attr, "Empty node address list",
			"Cluster %q's node_addresses is empty, so the other clusters cannot reach its DNS. Name the addresses of two or more of its nodes, or remove node_addresses.", c.Name)
	}
	if len(out) > corefile.MaxUpstreams {
		d.errorf(attr, "Too many node addresses",
			"Cluster %q names %d node addresses; each is an upstream of the other clusters' Corefile blocks, and CoreDNS forwards to at most %d. Name %d or fewer.",
			c.Name, len(out), corefile.MaxUpstreams, corefile.MaxUpstreams)
	}
	return out
}

// annotations decodes a map of annotation values, checking each key where it is written.
func (d *decoder) annotations(a *hcl.Attribute, set map[string]hcl.Range) map[string]string {
	v, st := d.value(a, cty.Map(cty.String))
	if st != valOK {
		return nil
	}
	set[a.Name] = a.Expr.Range()
	keyRange := map[string]hcl.Range{}
	if pairs, diags := hcl.ExprMap(a.Expr); !diags.HasErrors() {
		for _, p := range pairs {
			if k, diags := p.Key.Value(nil); !diags.HasErrors() && k.Type() == cty.String {
				keyRange[k.AsString()] = p.Key.Range()
			}
		}
	}
	out := map[string]string{}
	for k, ev := range v.AsValueMap() {
		r, ok := keyRange[k]
		if !ok {
			r = a.Expr.Range()
		}
		if ev.IsNull() {
			d.errorf(r, "Incorrect attribute value type", "Annotation %q is null. Remove it, or write a string.", k)
			continue
		}
		if why := annotationKeyProblem(k); why != "" {
			d.errorf(r, "Invalid annotation key", "%q is not an annotation key meshd can set: %s.", k, why)
			continue
		}
		out[k] = ev.AsString()
	}
	return out
}

// annotationKeyProblem says why k cannot be a DNS Service annotation meshd sets, or "".
func annotationKeyProblem(k string) string {
	prefix, name, hasPrefix := strings.Cut(k, "/")
	if !hasPrefix {
		prefix, name = "", k
	}
	switch {
	case !annotationNameRe.MatchString(name):
		return "a key is an optional DNS-subdomain prefix and '/', then a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
	case hasPrefix && (prefix == "" || !isDNSSubdomain(prefix)):
		return fmt.Sprintf("its prefix %q is not a DNS subdomain", prefix)
	case k == AnnotationOwnedKeys:
		return "meshd records there which annotations it set"
	}
	return ""
}

// checkNetwork checks a cluster's network against its other attributes and its dns block: an external
// member names nothing of AWS and says how the others reach its DNS; an AWS member's DNS is an internal NLB.
func (d *decoder) checkNetwork(c *Cluster) {
	if _, set := c.Attrs["dns.service_type"]; set && c.DNS.ServiceType == "" {
		return // an invalid service_type, reported already: which settings go with it is not known
	}
	dnsOn := !d.m.DNSDisabled
	if !c.External() {
		for _, a := range []string{"dns.service_type", "dns.node_addresses"} {
			if _, set := c.Attrs[a]; set && (a != "dns.service_type" || c.DNS.ServiceType != ServiceTypeLoadBalancer) {
				d.errorf(c.AttrRange(a), "Not possible on an AWS member",
					`Cluster %q is in an AWS VPC, whose DNS meshd exposes to the other members through an internal NLB, so %s does not apply. Remove it, or set network = "external" if meshd is not to manage the cluster's network.`,
					c.Name, strings.TrimPrefix(a, "dns."))
			}
		}
		for k := range NLBAnnotations() {
			if _, set := c.DNS.ServiceAnnotations[k]; set {
				d.errorf(c.AttrRange("dns.service_annotations"), "Annotation meshd sets",
					"service_annotations sets %q, which meshd sets itself on an AWS member's DNS Service (the internal NLB in front of CoreDNS). Remove it; other annotations are added to meshd's.", k)
			}
		}
		return
	}
	for _, a := range awsAttributes {
		if _, set := c.Attrs[a]; set {
			d.errorf(c.AttrRange(a), "AWS attribute on an external member",
				`Cluster %q has network = "external" (at %s): meshd does not manage its network and talks to no AWS API for it, so %s has no effect. Remove %s, or remove network = "external" to have meshd peer the cluster's VPC.`,
				c.Name, pos(c.AttrRange("network")), a, a)
		}
	}
	if !dnsOn {
		return
	}
	_, hasNodes := c.Attrs["dns.node_addresses"]
	switch c.DNS.ServiceType {
	case "":
		if !hasNodes {
			d.errorf(c.AttrRange("dns"), "No way to reach the cluster's DNS",
				`Cluster %q is external, so the other clusters cannot reach its CoreDNS through an NLB. Say how they reach it in a dns block: service_type = "LoadBalancer" for a load balancer that publishes an IP address (MetalLB; its address pool may go in service_annotations), or node_addresses = ["<node IP>", ...] for a NodePort Service on those nodes.`, c.Name)
		}
	case ServiceTypeNodePort:
		if !hasNodes {
			d.errorf(c.AttrRange("dns.service_type"), "No way to reach the cluster's DNS",
				`Cluster %q's DNS Service is of type NodePort, but no node_addresses say where the other clusters reach it. Set node_addresses to the IP addresses of its nodes that the other clusters can reach.`, c.Name)
		}
	case ServiceTypeLoadBalancer:
		if hasNodes {
			d.errorf(c.AttrRange("dns.node_addresses"), "Conflicting DNS Service settings",
				`Cluster %q's DNS Service is of type LoadBalancer, whose address the load balancer publishes, so node_addresses has no effect. Remove node_addresses, or set service_type = "NodePort".`, c.Name)
		}
	}
}

package plan

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
)

// KindDNSService is a member's Service kube-system/across-cluster-dns-tcp, whose internal NLB exposes the
// cluster's CoreDNS to the other members. Ownership: meshd's labels. Its change's ID is the NLB's addresses,
// which the other members' Corefile changes wait for.
const KindDNSService Kind = "dns_service"

func init() {
	Register(KindInfo{
		Kind: KindDNSService, Address: "dns_service[<cluster>]", Rank: 3,
		// One planner for the DNS kinds: a Corefile forwards to the Services, in the ConfigMap or the add-on.
		planner: (*computer).dns,
		First:   true, Provider: ProviderKube, Decode: decodeAs[DNSService], RepeatHint: hintKube,
		Touches: func(r Resource) ObjectRef {
			return ObjectRef{Cluster: r.(DNSService).Cluster, APIVersion: "v1", Kind: "Service",
				Namespace: DNSNamespace, Name: DNSServiceName}
		},
		Watches: func(m *spec.Mesh) []Watch {
			return everyMember(m, Watch{APIVersion: "v1", Resource: "services", Namespace: DNSNamespace, Name: DNSServiceName,
				IgnoreForeignAnnotations: true})
		},
		RBAC: dnsServiceRBAC,
	})
}

// dnsServiceRBAC: each member's DNS Service, read at every pass (and while its load balancer comes up),
// created, updated in place and deleted, only ever while it carries meshd's labels.
func dnsServiceRBAC(m *spec.Mesh) []access.Rule {
	return everyMemberRules(m, func(c string) []access.Rule {
		return []access.Rule{
			rbacRule(c, DNSNamespace, "", "services", []string{DNSServiceName},
				"meshd's DNS Service: read at every pass and while its load balancer comes up, updated in place, deleted on destroy; never touched without meshd's labels.",
				"get", "update", "delete"),
			rbacRule(c, DNSNamespace, "", "services", nil, whyCreate+" Here: the DNS Service "+DNSServiceName+".", "create"),
		}
	})
}

// Annotations of the DNS Service: the AWS load balancer controller (or the in-tree cloud provider) makes
// an internal network load balancer with cross-zone balancing for it.
const (
	AnnotationLBType      = spec.AnnotationLBType
	AnnotationLBInternal  = spec.AnnotationLBInternal
	AnnotationLBCrossZone = spec.AnnotationLBCrossZone
)

// DNSServiceAddress is the address of a cluster's DNS Service.
func DNSServiceAddress(cluster string) string { return fmt.Sprintf("%s[%s]", KindDNSService, cluster) }

// DesiredDNSService is the part of the DNS Service meshd sets: labels, the internal-NLB annotations, type
// LoadBalancer, the CoreDNS selector and port 53/TCP.
func DesiredDNSService(mesh string) model.ServiceSpec {
	return model.ServiceSpec{
		Type:        spec.ServiceTypeLoadBalancer,
		Annotations: spec.NLBAnnotations(),
		Labels:      OwnerLabels(mesh),
		Selector:    map[string]string{"k8s-app": "kube-dns"},
		Ports:       []model.ServicePort{{Name: "dns-tcp", Protocol: "TCP", Port: 53, TargetPort: "53"}},
	}
}

// desiredService is the part of m's DNS Service meshd sets: DesiredDNSService with the dns block's
// annotations added and the source ranges that admit the other members (DNSSourceRanges), or, on an
// external member, with the dns block's type and annotations instead of the NLB's. The keys of the dns
// block's annotations are recorded in spec.AnnotationOwnedKeys, so that one removed from the spec is removed
// from the Service.
func desiredService(mesh string, m model.Member, members []model.Member) model.ServiceSpec {
	want := DesiredDNSService(mesh)
	want.SourceRanges = DNSSourceRanges(m, members)
	var extra map[string]string
	if m.DNS != nil {
		extra = m.DNS.Annotations
	}
	if m.External {
		want.Annotations = map[string]string{}
		if m.DNS != nil && m.DNS.ServiceType != "" {
			want.Type = m.DNS.ServiceType
		}
	}
	maps.Copy(want.Annotations, extra)
	if len(extra) > 0 {
		want.Annotations[spec.AnnotationOwnedKeys] = strings.Join(slices.Sorted(maps.Keys(extra)), ",")
	}
	if len(want.Annotations) == 0 {
		want.Annotations = nil
	}
	return want
}

// DNSSourceRanges is what meshd sets as spec.loadBalancerSourceRanges of m's DNS Service: the blocks the
// other members' queries come from (SourceBlocks), sorted, without repeats.
//
// Why: the AWS Load Balancer Controller v2.6+ gives each NLB it makes a frontend security group, which admits
// the listener port from the Service's loadBalancerSourceRanges, or, when there are none, from the VPC's own
// CIDR for an internal NLB (0.0.0.0/0 for an internet-facing one). The other members' CoreDNS Pods query
// from the peered VPCs, so without the ranges their queries are dropped.
//
// m's own VPC is left out: m's Pods query their CoreDNS through the kube-dns Service, never through this
// NLB, and the NLB's health checks are traffic from the NLB to its targets, which the frontend group does
// not filter (the backend group and the node group rules, which the controller manages, admit them).
// Without frontend groups (an older controller, the in-tree cloud provider) the ranges, where honoured at
// all, narrow the node group rules the controller adds for the NLB's clients to the same blocks, which
// meshd's own sg_rule rules admit anyway.
//
// An external member's Service gets none: kube-proxy enforces the field on the address a load balancer like
// MetalLB publishes, and meshd cannot know which addresses the other members' queries arrive from there;
// for a NodePort Service the API server refuses the field. With no other member the list is empty, and the
// controller's default applies.
func DNSSourceRanges(m model.Member, members []model.Member) []string {
	if m.External {
		return nil
	}
	var out []string
	for _, o := range members {
		if o.Name != m.Name {
			out = append(out, SourceBlocks(o)...)
		}
	}
	return SortRanges(out)
}

// SourceBlocks are the blocks the DNS queries of member m's CoreDNS come from, as a load balancer in another
// member sees them: an AWS member's VPC CIDR blocks (the peering carries its Pod addresses unchanged), or
// an external member's node addresses, one /32 (/128) each, since its nodes masquerade what leaves the
// cluster; none for an external member without node_addresses.
func SourceBlocks(m model.Member) []string {
	if !m.External {
		return slices.Clone(m.CIDRs)
	}
	if m.DNS == nil {
		return nil
	}
	var out []string
	for _, a := range m.DNS.NodeAddresses {
		if ip, err := netip.ParseAddr(a); err == nil {
			out = append(out, netip.PrefixFrom(ip, ip.BitLen()).String())
		}
	}
	return out
}

// SortRanges sorts CIDR blocks by address, then prefix length (ones that do not parse last, as text), and
// drops repeats: the one order in which source ranges are set and compared, so that neither the order the
// API server returns nor the order of the members shows as a difference.
func SortRanges(ranges []string) []string {
	if len(ranges) == 0 {
		return nil
	}
	out := slices.Clone(ranges)
	slices.SortFunc(out, func(a, b string) int {
		pa, ea := netip.ParsePrefix(a)
		pb, eb := netip.ParsePrefix(b)
		switch {
		case ea != nil && eb != nil:
			return strings.Compare(a, b)
		case ea != nil:
			return 1
		case eb != nil:
			return -1
		}
		if c := pa.Addr().Compare(pb.Addr()); c != 0 {
			return c
		}
		return pa.Bits() - pb.Bits()
	})
	return slices.Compact(out)
}

// MeshdAnnotation reports whether meshd sets (or removes) the annotation key on a DNS Service annotated
// with annotations: the internal-NLB ones, those of dns { service_annotations } it recorded, and that
// record. Every other annotation is someone else's.
func MeshdAnnotation(key string, annotations map[string]string) bool {
	if _, nlb := spec.NLBAnnotations()[key]; nlb || key == spec.AnnotationOwnedKeys {
		return true
	}
	return slices.Contains(OwnedAnnotationKeys(annotations), key)
}

// staleAnnotations are the internal-NLB annotations meshd set on m's Service while the state recorded m as
// an AWS member, now that m is external: only those that still have meshd's values, and not those the
// dns block now asks for. Anyone else's annotation, under those keys too, is left alone.
func (d *dnsPlanner) staleAnnotations(m model.Member, o model.DNSObserved) []string {
	prev, recorded := d.c.in.State.Members[m.Name]
	if !m.External || !recorded || prev.External || o.Service == nil {
		return nil
	}
	var wanted map[string]string
	if m.DNS != nil {
		wanted = m.DNS.Annotations
	}
	var out []string
	for k, v := range spec.NLBAnnotations() {
		if _, asked := wanted[k]; !asked && o.Service.Spec.Annotations[k] == v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// MergeServiceAnnotations is what the annotations cur of meshd's DNS Service become when meshd writes want:
// the keys it set from the spec before and no longer wants, its record of them and the stale ones are
// removed, want is added, and everyone else's stay. cur is changed in place (made when nil) and returned.
func MergeServiceAnnotations(cur, want map[string]string, stale []string) map[string]string {
	if cur == nil {
		cur = map[string]string{}
	}
	for _, k := range OwnedAnnotationKeys(cur) {
		if _, keep := want[k]; !keep {
			delete(cur, k)
		}
	}
	delete(cur, spec.AnnotationOwnedKeys)
	for _, k := range stale {
		delete(cur, k)
	}
	maps.Copy(cur, want)
	return cur
}

// OwnedAnnotationKeys are the keys of dns { service_annotations } that meshd recorded on a Service it set
// them on.
func OwnedAnnotationKeys(annotations map[string]string) []string {
	v := annotations[spec.AnnotationOwnedKeys]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// DNSService is a cluster's DNS Service and what its load balancer resolved to. Spec holds only what meshd
// sets: the desired spec in After, the observed one normalised to the same fields in Before.
type DNSService struct {
	Cluster     string            `json:"cluster"`
	Region      string            `json:"region"`
	KubeContext string            `json:"kube_context"`
	Spec        model.ServiceSpec `json:"spec"`
	// Hostname is the load balancer's DNS name from the Service status; LoadBalancer the NLB's name;
	// Addresses its private IPs, sorted. Empty until known.
	Hostname     string   `json:"hostname,omitempty"`
	LoadBalancer string   `json:"load_balancer,omitempty"`
	Addresses    []string `json:"addresses,omitempty"`
	// External marks an external member's Service: Addresses are then what its load balancer published
	// (status.loadBalancer.ingress[].ip) or, for a NodePort Service, NodeAddresses with its node port.
	External      bool     `json:"external,omitempty"`
	NodeAddresses []string `json:"node_addresses,omitempty"`
	// StaleAnnotations are annotations meshd set and removes now (see staleAnnotations).
	StaleAnnotations []string `json:"stale_annotations,omitempty"`
	// Access reaches the cluster's account, where its load balancer is.
	model.Access
}

func (DNSService) Kind() Kind { return KindDNSService }

func (s DNSService) Attrs() []Attr {
	var ports []string
	for _, p := range s.Spec.Ports {
		ports = append(ports, fmt.Sprintf("%s %d/%s -> %s", p.Name, p.Port, p.Protocol, p.TargetPort))
	}
	attrs := []Attr{
		{Name: "service", Value: DNSNamespace + "/" + DNSServiceName},
		{Name: "type", Value: s.Spec.Type},
		{Name: "annotations", Value: joinMap(s.Spec.Annotations)},
		{Name: "labels", Value: joinMap(s.Spec.Labels)},
		{Name: "selector", Value: joinMap(s.Spec.Selector)},
		{Name: "ports", Value: strings.Join(ports, ", ")},
	}
	if !s.External || len(s.Spec.SourceRanges) > 0 {
		attrs = append(attrs, Attr{Name: "source_ranges", Value: strings.Join(s.Spec.SourceRanges, ", ")})
	}
	if !s.External { // an external member's load balancer publishes addresses, not a hostname
		attrs = append(attrs, Attr{Name: "hostname", Value: s.Hostname, Unknown: s.Hostname == ""})
	}
	return append(attrs, Attr{Name: "addresses", Value: strings.Join(s.Addresses, ", "), Unknown: len(s.Addresses) == 0})
}

// service plans the DNS Service of a desired member and records where its addresses come from.
func (d *dnsPlanner) service(m model.Member) {
	addr := DNSServiceAddress(m.Name)
	o := d.obs[m.Name]
	want := desiredService(d.mesh(), m, d.wanted)
	after := DNSService{Cluster: m.Name, Region: m.Region, KubeContext: m.KubeContext, Spec: want, Access: m.Access,
		External: m.External}
	if m.External && m.DNS != nil && want.Type == spec.ServiceTypeNodePort {
		after.NodeAddresses = m.DNS.NodeAddresses
	}

	if o.Service == nil {
		d.c.add(Change{Action: Create, Address: addr, Kind: KindDNSService, Reason: "DNS Service missing", After: after})
		d.sources[m.Name] = upstreamSource{pending: addr}
		return
	}
	labels := o.Service.Spec.Labels
	adopting := !model.OwnedBy(labels, d.mesh()) && d.adoptableService(labels)
	if !model.OwnedBy(labels, d.mesh()) && !adopting {
		owner, hint := "it does not carry meshd's labels", " Or set adopt = true in the mesh block to let meshd take it over (the Service and its load balancer stay)."
		if labels[model.LabelManagedBy] == model.ManagedByMeshd && labels[model.LabelMesh] != "" {
			owner, hint = fmt.Sprintf("it belongs to mesh %q", labels[model.LabelMesh]), ""
		}
		d.conflict(addr,
			fmt.Sprintf("Cluster %s already has a Service %s/%s that meshd does not own", m.Name, DNSNamespace, DNSServiceName),
			fmt.Sprintf("meshd wants to create its DNS Service there, but %s (%s=%s, %s=%s), so it is left alone. "+
				"Delete or rename it yourself; meshd will then create its own.%s",
				owner, model.LabelManagedBy, model.ManagedByMeshd, model.LabelMesh, d.mesh(), hint))
		d.sources[m.Name] = upstreamSource{keep: true}
		return
	}

	stale := d.staleAnnotations(m, o)
	before, lb, waiting := d.observedService(m, o, want, stale)
	if m.External && want.Type == spec.ServiceTypeLoadBalancer && o.Service.Hostname != "" && len(o.Service.IPs) == 0 {
		d.conflict(addr,
			fmt.Sprintf("The load balancer of cluster %s's DNS Service publishes a hostname, not an IP address", m.Name),
			fmt.Sprintf("Its status.loadBalancer.ingress has the hostname %s and no ip. CoreDNS forwards to addresses, so meshd "+
				"cannot write the other clusters' blocks for %s. Use a load balancer that publishes IP addresses (MetalLB), "+
				"or set dns { node_addresses } for a NodePort Service.", o.Service.Hostname, DNSZone(d.in.ForwardBy, m)))
		d.sources[m.Name] = upstreamSource{keep: true}
		return
	}
	after.StaleAnnotations = stale
	diff := serviceDiff(want, before.Spec)
	after.Hostname, after.LoadBalancer, after.Addresses = before.Hostname, before.LoadBalancer, before.Addresses
	switch {
	case adopting:
		// The Service is changed in place, never replaced: its NLB, which the runbook's Corefile blocks
		// forward to, stays, and so do its addresses.
		reason := "exists, not owned (made by hand, as the runbook does): adopt (label as meshd's)"
		if rest := slices.DeleteFunc(diff, func(f string) bool { return f == "labels" }); len(rest) > 0 {
			reason += "; its " + strings.Join(rest, ", ") + " are set to meshd's in place"
		}
		if waiting != "" {
			reason += "; " + waiting
		}
		d.c.add(Change{Action: Adopt, Address: addr, Kind: KindDNSService, Before: before, After: after, Reason: reason})
		if waiting != "" {
			d.sources[m.Name] = upstreamSource{pending: addr}
			return
		}
	case len(diff) > 0:
		after.Hostname, after.LoadBalancer, after.Addresses = "", "", nil
		verb := "differ"
		if len(diff) == 1 && !strings.HasSuffix(diff[0], "s") { // "type differs", "ports differ"
			verb = "differs"
		}
		d.c.add(Change{Action: Update, Address: addr, Kind: KindDNSService, Before: before, After: after,
			Reason: fmt.Sprintf("the Service's %s %s from meshd's", strings.Join(diff, ", "), verb)})
		if waiting != "" {
			d.sources[m.Name] = upstreamSource{pending: addr}
			return
		}
	case waiting != "":
		d.c.add(Change{Action: Update, Address: addr, Kind: KindDNSService, Before: before, After: after, Reason: waiting})
		d.sources[m.Name] = upstreamSource{pending: addr}
		return
	}
	// The load balancer is ready: the others' Corefiles use its addresses now. (After an update that
	// changes them, the next plan updates the Corefiles.)
	if n := len(lb.Addresses); n > corefile.MaxUpstreams && m.External {
		d.conflict(addr,
			fmt.Sprintf("The DNS Service of cluster %s has %d addresses; CoreDNS forwards to at most %d", m.Name, n, corefile.MaxUpstreams),
			fmt.Sprintf("Its load balancer published %d addresses in status.loadBalancer.ingress. CoreDNS's forward plugin accepts at most %d upstreams, "+
				"so meshd refuses to write the other clusters' blocks for %s. Have the load balancer publish %d or fewer.",
				n, corefile.MaxUpstreams, DNSZone(d.in.ForwardBy, m), corefile.MaxUpstreams))
		d.sources[m.Name] = upstreamSource{keep: true}
		return
	} else if n > corefile.MaxUpstreams {
		d.conflict(addr,
			fmt.Sprintf("The DNS load balancer of cluster %s has %d addresses; CoreDNS forwards to at most %d", m.Name, n, corefile.MaxUpstreams),
			fmt.Sprintf("NLB %s has network interfaces in %d subnets. CoreDNS's forward plugin accepts at most %d upstreams, so meshd "+
				"refuses to write the other clusters' blocks for %s. Limit the NLB to %d subnets or fewer "+
				"(annotation service.beta.kubernetes.io/aws-load-balancer-subnets).",
				lb.Name, n, corefile.MaxUpstreams, DNSZone(d.in.ForwardBy, m), corefile.MaxUpstreams))
		d.sources[m.Name] = upstreamSource{keep: true}
		return
	}
	d.sources[m.Name] = upstreamSource{addresses: lb.Addresses}
}

// serviceDelete removes meshd's DNS Service of a cluster that is no longer desired, once every other
// Corefile change (which drops the blocks forwarding to it) is done.
func (d *dnsPlanner) serviceDelete(m model.Member) {
	o := d.obs[m.Name]
	if o.Service == nil || !model.OwnedBy(o.Service.Spec.Labels, d.mesh()) {
		return
	}
	if holders := d.stillForwardingTo(m); len(holders) > 0 {
		d.c.plan.Retain = append(d.c.plan.Retain, m.Name)
		d.c.plan.Warnings = append(d.c.plan.Warnings, fmt.Sprintf(
			"The DNS Service of cluster %s is kept: the Corefile of %s may still forward to it and is not corrected in this plan "+
				"(see the conflicts and warnings). It is deleted once no Corefile forwards to it.",
			m.Name, strings.Join(holders, ", ")))
		return
	}
	var deps []string
	for cluster, addr := range d.corefileChanges {
		if cluster != m.Name {
			deps = append(deps, addr)
		}
	}
	sort.Strings(deps)
	d.c.add(Change{Action: Delete, Address: DNSServiceAddress(m.Name), Kind: KindDNSService, Reason: d.goneReason(),
		Before: d.observedServiceOf(m, o), DependsOn: deps})
}

// normalizeService keeps of an observed spec what meshd sets, so that server-set annotations, labels and
// node ports never show as a difference.
//
// Annotations meshd set from dns { service_annotations } (listed in spec.AnnotationOwnedKeys) and the stale
// ones are kept too, so that one the spec no longer has shows as a difference.
func normalizeService(want, got model.ServiceSpec, stale ...string) model.ServiceSpec {
	// meshd owns the whole of loadBalancerSourceRanges on its Service; compared as a set.
	out := model.ServiceSpec{Type: got.Type, Selector: got.Selector, SourceRanges: SortRanges(got.SourceRanges)}
	pick := func(w, g map[string]string) map[string]string {
		var m map[string]string
		for k := range w {
			if v, ok := g[k]; ok {
				if m == nil {
					m = map[string]string{}
				}
				m[k] = v
			}
		}
		return m
	}
	keys := maps.Clone(want.Annotations)
	if keys == nil {
		keys = map[string]string{}
	}
	if owned := OwnedAnnotationKeys(got.Annotations); len(owned) > 0 {
		keys[spec.AnnotationOwnedKeys] = ""
		for _, k := range owned {
			keys[k] = ""
		}
	}
	for _, k := range stale {
		keys[k] = ""
	}
	out.Annotations = pick(keys, got.Annotations)
	out.Labels = pick(want.Labels, got.Labels)
	out.Ports = slices.Clone(got.Ports)
	slices.SortFunc(out.Ports, func(a, b model.ServicePort) int {
		if a.Port != b.Port {
			return int(a.Port) - int(b.Port)
		}
		return strings.Compare(a.Protocol, b.Protocol)
	})
	return out
}

// serviceDiff names the fields of a normalised observed spec that differ from the desired one.
func serviceDiff(want, got model.ServiceSpec) []string {
	var out []string
	if want.Type != got.Type {
		out = append(out, "type")
	}
	if !maps.Equal(want.Annotations, got.Annotations) {
		out = append(out, "annotations")
	}
	if !maps.Equal(want.Labels, got.Labels) {
		out = append(out, "labels")
	}
	if !maps.Equal(want.Selector, got.Selector) {
		out = append(out, "selector")
	}
	if !slices.Equal(want.Ports, got.Ports) {
		out = append(out, "ports")
	}
	if !slices.Equal(SortRanges(want.SourceRanges), SortRanges(got.SourceRanges)) {
		out = append(out, "source ranges")
	}
	return out
}

// loadBalancer returns the NLB addresses of an observed Service, or why they are not there yet.
func loadBalancer(o model.DNSObserved) (lb model.LoadBalancer, waiting string) {
	switch {
	case o.Service == nil || o.Service.Hostname == "":
		return lb, "waiting for its load balancer: the Service has no load balancer hostname yet"
	case o.LoadBalancer == nil:
		return lb, fmt.Sprintf("waiting for its load balancer: no NLB has the DNS name %s yet", o.Service.Hostname)
	case o.LoadBalancer.State != model.LoadBalancerActive:
		return *o.LoadBalancer, fmt.Sprintf("waiting for its load balancer: NLB %s is %s", o.LoadBalancer.Name, o.LoadBalancer.State)
	case len(o.LoadBalancer.Addresses) == 0:
		return *o.LoadBalancer, fmt.Sprintf("waiting for its load balancer: NLB %s has no network interfaces yet", o.LoadBalancer.Name)
	}
	lb = *o.LoadBalancer
	lb.Addresses = slices.Sorted(slices.Values(lb.Addresses))
	return lb, ""
}

// ReachAt returns where the other members reach m's CoreDNS through its observed Service, or why that is
// not known yet: the NLB's private addresses (AWS), the addresses its load balancer published (an external
// member's LoadBalancer Service: MetalLB), or its node addresses with the Service's node port (an external
// member's NodePort Service).
func ReachAt(m model.Member, o model.DNSObserved) (lb model.LoadBalancer, waiting string) {
	if !m.External {
		return loadBalancer(o)
	}
	switch {
	case o.Service == nil:
		return lb, "waiting for the Service"
	case m.DNS != nil && m.DNS.ServiceType == spec.ServiceTypeNodePort:
		if o.Service.NodePort == 0 {
			return lb, "waiting for its node port: the Service has none for 53/TCP yet"
		}
		lb.Addresses = NodeUpstreams(m.DNS.NodeAddresses, o.Service.NodePort)
	case len(o.Service.IPs) == 0:
		return lb, "waiting for its load balancer: the Service has no load balancer IP yet (status.loadBalancer.ingress[].ip)"
	default:
		lb.Addresses = slices.Clone(o.Service.IPs)
	}
	return lb, ""
}

// NodeUpstreams are the upstreams of a NodePort DNS Service: each node address with the node port.
func NodeUpstreams(nodes []string, port int32) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, net.JoinHostPort(n, strconv.Itoa(int(port))))
	}
	slices.Sort(out)
	return out
}

// observedService is m's Service as observed, normalised to the fields meshd sets (want, and the stale
// annotations it removes), with where it is reached (ReachAt: lb, or why not yet).
func (d *dnsPlanner) observedService(m model.Member, o model.DNSObserved, want model.ServiceSpec, stale []string) (s DNSService, lb model.LoadBalancer, waiting string) {
	s = DNSService{Cluster: m.Name, Region: m.Region, KubeContext: m.KubeContext, Access: m.Access, External: m.External,
		Spec: normalizeService(want, o.Service.Spec, stale...), Hostname: o.Service.Hostname}
	lb, waiting = ReachAt(m, o)
	if waiting == "" {
		s.LoadBalancer, s.Addresses = lb.Name, lb.Addresses
	} else if lb.Name != "" {
		s.LoadBalancer = lb.Name
	}
	return s, lb, waiting
}

// observedServiceOf is observedService for what meshd wants of m now.
func (d *dnsPlanner) observedServiceOf(m model.Member, o model.DNSObserved) DNSService {
	s, _, _ := d.observedService(m, o, desiredService(d.mesh(), m, d.wanted), d.staleAnnotations(m, o))
	return s
}

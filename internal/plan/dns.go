package plan

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
)

// The DNS part of the mesh (design steps 5 and 6): in every member cluster a Service whose internal NLB
// exposes the cluster's CoreDNS over TCP, and in every member's Corefile one server block per OTHER member
// that forwards that member's zone to its NLB's addresses.
const (
	KindDNSService Kind = "dns_service"
	KindCorefile   Kind = "corefile"
)

// Names of the Kubernetes objects meshd manages or reads for DNS.
const (
	DNSNamespace     = "kube-system"
	DNSServiceName   = "across-cluster-dns-tcp"
	CoreDNSConfigMap = "coredns"
	BackupConfigMap  = "coredns-meshd-backup"
	CorefileKey      = "Corefile"
	// EKSManager is the field manager of the EKS CoreDNS managed add-on, which may revert the Corefile.
	EKSManager = "eks"
)

// Annotations of the DNS Service: the AWS load balancer controller (or the in-tree cloud provider) makes
// an internal network load balancer with cross-zone balancing for it.
const (
	AnnotationLBType      = "service.beta.kubernetes.io/aws-load-balancer-type"
	AnnotationLBInternal  = "service.beta.kubernetes.io/aws-load-balancer-internal"
	AnnotationLBCrossZone = "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled"
)

func init() {
	RegisterKind(KindDNSService, func(raw json.RawMessage) (Resource, error) {
		var v DNSService
		err := json.Unmarshal(raw, &v)
		return v, err
	})
	RegisterKind(KindCorefile, func(raw json.RawMessage) (Resource, error) {
		var v Corefile
		err := json.Unmarshal(raw, &v)
		return v, err
	})
}

// DNSInput is what the DNS part of Compute needs besides the members: the forwarding mode and what was
// observed in each cluster, members and former members alike (by cluster name). A former member without an
// entry could not be observed: its DNS objects are left alone, with a warning.
type DNSInput struct {
	ForwardBy string // spec.ForwardByNamespace ("" means the same) or spec.ForwardByClusterDomain
	Clusters  map[string]model.DNSObserved
	// Unobserved are members whose Kubernetes side could not be read this time (meshd, the daemon, plans
	// without them rather than not at all). Their DNS Service and Corefile are left alone, and the other
	// Corefiles keep their blocks for them as they are.
	Unobserved map[string]bool
}

// DNSServiceAddress is the address of a cluster's DNS Service.
func DNSServiceAddress(cluster string) string { return fmt.Sprintf("%s[%s]", KindDNSService, cluster) }

// CorefileAddress is the address of a cluster's Corefile.
func CorefileAddress(cluster string) string { return fmt.Sprintf("%s[%s]", KindCorefile, cluster) }

// DesiredDNSService is the part of the DNS Service meshd sets (design step 5).
func DesiredDNSService(mesh string) model.ServiceSpec {
	return model.ServiceSpec{
		Type: "LoadBalancer",
		Annotations: map[string]string{
			AnnotationLBType:      "nlb",
			AnnotationLBInternal:  "true",
			AnnotationLBCrossZone: "true",
		},
		Labels:   OwnerLabels(mesh),
		Selector: map[string]string{"k8s-app": "kube-dns"},
		Ports:    []model.ServicePort{{Name: "dns-tcp", Protocol: "TCP", Port: 53, TargetPort: "53"}},
	}
}

// OwnerLabels are the labels that make a Kubernetes object meshd's.
func OwnerLabels(mesh string) map[string]string {
	return map[string]string{model.LabelManagedBy: model.ManagedByMeshd, model.LabelMesh: mesh}
}

// DNSZone is the zone that the other members forward to m: <namespace>.svc.<cluster domain> when
// forwarding by namespace (the cluster domain is cluster.local on EKS), else m's cluster domain.
func DNSZone(forwardBy string, m model.Member) string {
	domain := m.ClusterDomain
	if domain == "" {
		domain = spec.DefaultClusterDomain
	}
	if forwardBy == spec.ForwardByClusterDomain {
		return domain
	}
	return m.Namespace + ".svc." + domain
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
}

func (DNSService) Kind() Kind { return KindDNSService }

func (s DNSService) Attrs() []Attr {
	var ports []string
	for _, p := range s.Spec.Ports {
		ports = append(ports, fmt.Sprintf("%s %d/%s -> %s", p.Name, p.Port, p.Protocol, p.TargetPort))
	}
	return []Attr{
		{Name: "service", Value: DNSNamespace + "/" + DNSServiceName},
		{Name: "type", Value: s.Spec.Type},
		{Name: "annotations", Value: joinMap(s.Spec.Annotations)},
		{Name: "labels", Value: joinMap(s.Spec.Labels)},
		{Name: "selector", Value: joinMap(s.Spec.Selector)},
		{Name: "ports", Value: strings.Join(ports, ", ")},
		{Name: "hostname", Value: s.Hostname, Unknown: s.Hostname == ""},
		{Name: "addresses", Value: strings.Join(s.Addresses, ", "), Unknown: len(s.Addresses) == 0},
	}
}

func joinMap(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ", ")
}

// Corefile is the data.Corefile of a cluster's kube-system/coredns ConfigMap, as far as meshd's blocks go.
// Before holds the observed text and meshd's blocks in it; After the blocks meshd wants, and the merged
// text when every address is known (apply merges again, into the Corefile it reads then).
type Corefile struct {
	Cluster     string          `json:"cluster"`
	KubeContext string          `json:"kube_context"`
	Blocks      []CorefileBlock `json:"blocks,omitempty"`
	// Owned are the zones the state records as meshd's in this Corefile (After: what Merge is given).
	Owned []string `json:"owned,omitempty"`
	// Removed are meshd's zones that the change cuts out (After only, for display).
	Removed []string `json:"removed,omitempty"`
	// Text is the whole Corefile (Before: observed; After: merged, when every address is known). It is for
	// the planner and its tests only and never leaves the process: a Corefile can hold other people's
	// settings and credentials (route53 keys, TLS files), which have no place in plan files or --json.
	// Apply merges again into the Corefile it reads then.
	Text string `json:"-"`
	// Backup reports that kube-system/coredns-meshd-backup exists (Before) or will (After): the first
	// change saves the original Corefile there; destroy deletes it (DeleteBackup).
	Backup       bool `json:"backup,omitempty"`
	DeleteBackup bool `json:"delete_backup,omitempty"`
}

// CorefileBlock is one of meshd's server blocks: forward Zone to Upstreams, or, while those are not
// known, to the addresses the dns_service change at Pending finds (its ID, comma-separated).
type CorefileBlock struct {
	Zone      string   `json:"zone"`
	Upstreams []string `json:"upstreams,omitempty"`
	Pending   string   `json:"pending,omitempty"`
}

func (Corefile) Kind() Kind { return KindCorefile }

func (c Corefile) Attrs() []Attr {
	backup := "none"
	if c.Backup {
		backup = DNSNamespace + "/" + BackupConfigMap
	}
	attrs := []Attr{{Name: "configmap", Value: DNSNamespace + "/" + CoreDNSConfigMap}, {Name: "backup", Value: backup}}
	for _, b := range c.Blocks {
		if b.Pending != "" {
			attrs = append(attrs, Attr{Name: b.Zone, Value: b.Pending, Unknown: true})
		} else {
			attrs = append(attrs, Attr{Name: b.Zone, Value: "forward to " + strings.Join(b.Upstreams, " ")})
		}
	}
	for _, z := range c.Removed {
		attrs = append(attrs, Attr{Name: z, Value: "(removed)"})
	}
	return attrs
}

// dnsPlanner plans the DNS part of one Compute.
type dnsPlanner struct {
	c   *computer
	in  *DNSInput
	obs map[string]model.DNSObserved
	// wanted are the desired members (none when destroying); clusters are every member and former member
	// that was observed, sorted by name.
	wanted   []model.Member
	clusters []model.Member
	// sources say, per wanted cluster, where the addresses of its NLB come from.
	sources map[string]upstreamSource
	// corefileChanges are the addresses of planned corefile changes by cluster.
	corefileChanges map[string]string
	// blocks are meshd's blocks in each observed Corefile, parsed once (see blocksIn).
	blocks map[string][]CorefileBlock
}

type upstreamSource struct {
	addresses []string // known now
	pending   string   // else: the dns_service change that finds them
	keep      bool     // neither (a conflict on its Service, or it was not observed): blocks stay as they are
	// lastKnown, for a member that was not observed, are the upstreams every other Corefile's block for it
	// agrees on: a Corefile that lost its block gets it back with them.
	lastKnown []string
}

// dns plans the DNS Services and the Corefiles (design steps 5 and 6):
//
//	object      | meshd's when                               | desired, missing | desired, differs               | not desired
//	------------+--------------------------------------------+------------------+--------------------------------+------------------------------
//	dns_service | labels managed-by=meshd, meshd.io/mesh=mesh| + create         | ~ update (also: waiting for    | - delete, after the others'
//	            | (else: conflict, never touched)            |                  |   its load balancer)           |   Corefiles dropped its block
//	corefile    | blocks with meshd's marker, or in a zone   | ~ update (merge) | ~ update (merge)               | ~ update: meshd's blocks cut,
//	            | the state records (user blocks: conflict)  |                  |                                |   backup deleted
//
// A Corefile block for a member whose NLB addresses are known only after apply waits for that member's
// dns_service change. A member whose addresses meshd cannot know (its Service is a conflict, or, with
// DNSInput.Unobserved, it could not be read) keeps its blocks as they are in the other Corefiles; a member
// that was not observed is not planned at all, and a Service of a cluster that left waits while a Corefile
// that is not corrected may still forward to it.
func (c *computer) dns() {
	if c.in.DNS == nil {
		return
	}
	d := &dnsPlanner{c: c, in: c.in.DNS, obs: c.in.DNS.Clusters, wanted: c.members,
		sources: map[string]upstreamSource{}, corefileChanges: map[string]string{}, blocks: map[string][]CorefileBlock{}}
	if d.obs == nil {
		d.obs = map[string]model.DNSObserved{}
	}
	seen := map[string]bool{}
	for _, m := range c.in.Members {
		seen[m.Name] = true
		d.clusters = append(d.clusters, m)
	}
	for _, name := range sortedNames(c.in.State.Members) {
		m := c.in.State.Members[name]
		if seen[name] || m.KubeContext == "" {
			continue // a member of an apply made before meshd managed DNS has nothing to clean up
		}
		if _, ok := d.obs[name]; !ok {
			c.plan.Warnings = append(c.plan.Warnings, fmt.Sprintf(
				"Cluster %q left the mesh but could not be observed through kube context %q: its DNS Service and Corefile blocks are left alone.",
				name, m.KubeContext))
			continue
		}
		d.clusters = append(d.clusters, m)
	}
	sort.Slice(d.clusters, func(i, j int) bool { return d.clusters[i].Name < d.clusters[j].Name })

	wanted := map[string]bool{}
	for _, m := range d.wanted {
		wanted[m.Name] = true
		if d.in.Unobserved[m.Name] {
			c.plan.Unobserved = append(c.plan.Unobserved, m.Name)
			c.plan.Warnings = append(c.plan.Warnings, fmt.Sprintf(
				"Cluster %q could not be observed through kube context %q: its DNS Service and Corefile are left as they are, "+
					"and the other clusters' Corefiles keep their blocks for it unchanged.", m.Name, m.KubeContext))
			d.sources[m.Name] = upstreamSource{keep: true, lastKnown: d.agreedUpstreams(m)}
			continue
		}
		d.service(m)
	}
	for _, m := range d.clusters {
		if d.in.Unobserved[m.Name] {
			continue
		}
		if wanted[m.Name] {
			d.corefile(m)
		} else {
			d.corefileRemove(m)
		}
	}
	for _, m := range d.clusters {
		if !wanted[m.Name] {
			d.serviceDelete(m)
		}
	}
}

func (d *dnsPlanner) mesh() string { return d.c.in.Mesh }

func (d *dnsPlanner) conflict(address, summary, detail string) {
	d.c.plan.Conflicts = append(d.c.plan.Conflicts, Conflict{Address: address, Summary: summary, Detail: detail})
}

// normalizeService keeps of an observed spec what meshd sets, so that server-set annotations, labels and
// node ports never show as a difference.
func normalizeService(want, got model.ServiceSpec) model.ServiceSpec {
	out := model.ServiceSpec{Type: got.Type, Selector: got.Selector}
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
	out.Annotations = pick(want.Annotations, got.Annotations)
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

func (d *dnsPlanner) observedService(m model.Member, o model.DNSObserved) DNSService {
	s := DNSService{Cluster: m.Name, Region: m.Region, KubeContext: m.KubeContext,
		Spec: normalizeService(DesiredDNSService(d.mesh()), o.Service.Spec), Hostname: o.Service.Hostname}
	if lb, waiting := loadBalancer(o); waiting == "" {
		s.LoadBalancer, s.Addresses = lb.Name, lb.Addresses
	} else if lb.Name != "" {
		s.LoadBalancer = lb.Name
	}
	return s
}

// service plans the DNS Service of a desired member and records where its addresses come from.
func (d *dnsPlanner) service(m model.Member) {
	addr := DNSServiceAddress(m.Name)
	o := d.obs[m.Name]
	want := DesiredDNSService(d.mesh())
	after := DNSService{Cluster: m.Name, Region: m.Region, KubeContext: m.KubeContext, Spec: want}

	if o.Service == nil {
		d.c.add(Change{Action: Create, Address: addr, Kind: KindDNSService, Reason: "DNS Service missing", After: after})
		d.sources[m.Name] = upstreamSource{pending: addr}
		return
	}
	labels := o.Service.Spec.Labels
	if !model.OwnedBy(labels, d.mesh()) {
		owner := "it does not carry meshd's labels"
		if labels[model.LabelManagedBy] == model.ManagedByMeshd && labels[model.LabelMesh] != "" {
			owner = fmt.Sprintf("it belongs to mesh %q", labels[model.LabelMesh])
		}
		d.conflict(addr,
			fmt.Sprintf("Cluster %s already has a Service %s/%s that meshd does not own", m.Name, DNSNamespace, DNSServiceName),
			fmt.Sprintf("meshd wants to create its DNS Service there, but %s (%s=%s, %s=%s), so it is left alone. "+
				"Delete or rename it yourself; meshd will then create its own.",
				owner, model.LabelManagedBy, model.ManagedByMeshd, model.LabelMesh, d.mesh()))
		d.sources[m.Name] = upstreamSource{keep: true}
		return
	}

	before := d.observedService(m, o)
	lb, waiting := loadBalancer(o)
	diff := serviceDiff(want, before.Spec)
	after.Hostname, after.LoadBalancer, after.Addresses = before.Hostname, before.LoadBalancer, before.Addresses
	switch {
	case len(diff) > 0:
		after.Hostname, after.LoadBalancer, after.Addresses = "", "", nil
		verb := "differ"
		if len(diff) == 1 {
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
	if n := len(lb.Addresses); n > corefile.MaxUpstreams {
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
		Before: d.observedService(m, o), DependsOn: deps})
}

// agreedUpstreams returns the upstreams of meshd's blocks for m in the other observed Corefiles, when there
// is at least one such block and they all agree; else nil. They are the addresses of m's load balancer as
// meshd last wrote them, the best meshd knows while m cannot be observed.
func (d *dnsPlanner) agreedUpstreams(m model.Member) []string {
	zone := corefile.NormalizeZone(DNSZone(d.in.ForwardBy, m))
	var agreed []string
	for _, other := range d.clusters {
		if other.Name == m.Name {
			continue
		}
		for _, b := range d.blocksIn(other.Name) {
			if b.Zone != zone {
				continue
			}
			ups := slices.Sorted(slices.Values(b.Upstreams))
			if agreed != nil && !slices.Equal(agreed, ups) {
				return nil
			}
			agreed = ups
		}
	}
	return agreed
}

// stillForwardingTo lists the other clusters whose Corefile keeps a block of meshd's for m after this plan:
// the ones not observed (their blocks are left as they are) and the observed ones with such a block and no
// Corefile change (a conflict held it back). Deleting m's Service then would leave them forwarding to a
// load balancer that is gone.
func (d *dnsPlanner) stillForwardingTo(m model.Member) []string {
	zone := corefile.NormalizeZone(DNSZone(d.in.ForwardBy, m))
	var out []string
	for _, name := range d.dnsMembers() {
		if name == m.Name || d.corefileChanges[name] != "" {
			continue
		}
		if _, observed := d.obs[name]; !observed ||
			slices.ContainsFunc(d.blocksIn(name), func(b CorefileBlock) bool { return b.Zone == zone }) {
			out = append(out, name)
		}
	}
	return out
}

// dnsMembers are the names of the members and former members that have a Kubernetes side, sorted.
func (d *dnsPlanner) dnsMembers() []string {
	names := map[string]bool{}
	for _, m := range d.c.in.Members {
		names[m.Name] = true
	}
	for name, m := range d.c.in.State.Members {
		if m.KubeContext != "" {
			names[name] = true
		}
	}
	return slices.Sorted(maps.Keys(names))
}

func (d *dnsPlanner) goneReason() string {
	if d.c.in.Destroy {
		return "destroy"
	}
	return "cluster left the mesh"
}

// placeholderUpstream stands in for addresses known only after apply when the plan merges to find
// conflicts (TEST-NET-1, never a real upstream).
const placeholderUpstream = "192.0.2.1"

// blocksIn lists meshd's blocks in a cluster's observed Corefile, with what they forward to now. Several
// steps read them (the cluster's own change, and the others' when a member cannot be observed), so each
// Corefile is parsed once.
func (d *dnsPlanner) blocksIn(cluster string) []CorefileBlock {
	if out, ok := d.blocks[cluster]; ok {
		return out
	}
	var out []CorefileBlock
	if o := d.obs[cluster]; o.CoreDNS != nil {
		text := o.CoreDNS.Data[CorefileKey]
		owned := d.c.in.State.CorefileZones(cluster)
		if blocks, err := corefile.Blocks(text); err == nil {
			for _, b := range blocks {
				if b.OwnedBy(d.mesh(), owned) {
					out = append(out, CorefileBlock{Zone: b.Zones[0], Upstreams: corefile.ForwardUpstreams(text, b)})
				}
			}
		}
	}
	d.blocks[cluster] = out
	return out
}

// coreDNSText returns the observed Corefile of a cluster, or reports a conflict when there is none.
func (d *dnsPlanner) coreDNSText(m model.Member, o model.DNSObserved) (string, bool) {
	if o.CoreDNS != nil {
		if text, ok := o.CoreDNS.Data[CorefileKey]; ok {
			return text, true
		}
	}
	d.conflict(CorefileAddress(m.Name),
		fmt.Sprintf("Cluster %s has no Corefile in the ConfigMap %s/%s", m.Name, DNSNamespace, CoreDNSConfigMap),
		"meshd adds its server blocks to the cluster's CoreDNS configuration and never creates one of its own. "+
			"Check that CoreDNS is installed in kube-system (on EKS: the CoreDNS add-on).")
	return "", false
}

// corefile plans a desired member's Corefile: a block per other member.
func (d *dnsPlanner) corefile(m model.Member) {
	addr := CorefileAddress(m.Name)
	o := d.obs[m.Name]
	text, ok := d.coreDNSText(m, o)
	if !ok {
		return
	}
	owned := d.c.in.State.CorefileZones(m.Name)
	var want []CorefileBlock
	var deps []string
	for _, b := range d.wanted {
		if b.Name == m.Name {
			continue
		}
		src := d.sources[b.Name]
		zone := corefile.NormalizeZone(DNSZone(d.in.ForwardBy, b))
		switch {
		case src.keep:
			// meshd does not know b's addresses now (a conflict or a warning says why): b's block stays as
			// it is. Where it is missing, it is added back only with addresses the other Corefiles agree on.
			// The rest of this Corefile is still corrected.
			current := d.blocksIn(m.Name)
			if i := slices.IndexFunc(current, func(cur CorefileBlock) bool { return cur.Zone == zone }); i >= 0 {
				want = append(want, current[i])
			} else if src.lastKnown != nil {
				want = append(want, CorefileBlock{Zone: zone, Upstreams: src.lastKnown})
			}
		case src.pending != "":
			want = append(want, CorefileBlock{Zone: zone, Pending: src.pending})
			deps = append(deps, src.pending)
		default:
			want = append(want, CorefileBlock{Zone: zone, Upstreams: src.addresses})
		}
	}
	blocks := make([]corefile.Block, len(want))
	for i, b := range want {
		blocks[i] = corefile.Block{Zone: b.Zone, Upstreams: b.Upstreams}
		if b.Pending != "" {
			blocks[i].Upstreams = []string{placeholderUpstream}
		}
	}
	merged, rep, err := corefile.Merge(text, d.mesh(), owned, blocks)
	if err != nil {
		d.conflict(addr, fmt.Sprintf("Cannot update meshd's blocks in the Corefile of cluster %s", m.Name),
			fmt.Sprintf("%v. meshd writes a Corefile only when the result parses; nothing is changed.", err))
		return
	}
	conflicting := map[string]bool{}
	for _, cf := range rep.Conflicts {
		conflicting[cf.Zone] = true
		d.conflict(addr,
			fmt.Sprintf("The Corefile of cluster %s already serves zone %s in a block meshd did not write", m.Name, cf.Zone),
			fmt.Sprintf("Line %d (%s) of %s/%s is not meshd's, so meshd does not add its own block for %s next to it or replace it. "+
				"Remove that block, or let meshd own it by deleting it and planning again.",
				cf.Line, cf.Key, DNSNamespace, CoreDNSConfigMap, cf.Zone))
	}
	want = slices.DeleteFunc(want, func(b CorefileBlock) bool { return conflicting[b.Zone] })
	deps = nil
	for _, b := range want {
		if b.Pending != "" {
			deps = append(deps, b.Pending)
		}
	}
	if len(want) > 0 && o.CoreDNS != nil && slices.Contains(o.CoreDNS.Managers, EKSManager) {
		d.c.plan.Warnings = append(d.c.plan.Warnings, fmt.Sprintf(
			"The Corefile of cluster %s is managed by the EKS CoreDNS add-on (field manager %q): an add-on update may revert it, "+
				"removing meshd's blocks. meshd (the daemon) restores them on its next run; meshctl apply does the same.",
			m.Name, EKSManager))
	}
	if len(deps) == 0 && !rep.Changed() {
		return
	}

	before := Corefile{Cluster: m.Name, KubeContext: m.KubeContext, Blocks: d.blocksIn(m.Name), Owned: owned,
		Text: text, Backup: o.Backup != nil}
	after := Corefile{Cluster: m.Name, KubeContext: m.KubeContext, Blocks: want, Owned: owned, Backup: true}
	if len(deps) == 0 {
		after.Text = merged
	}
	for _, z := range rep.Removed {
		if !slices.ContainsFunc(want, func(b CorefileBlock) bool { return b.Zone == z }) {
			after.Removed = append(after.Removed, z)
		}
	}
	d.c.add(Change{Action: Update, Address: addr, Kind: KindCorefile, Before: before, After: after,
		Reason: d.corefileReason(before, after, rep), DependsOn: uniqueSorted(deps)})
	d.corefileChanges[m.Name] = addr
}

// corefileReason says what a Corefile change does, and whether meshd's blocks went missing outside meshd
// (the drift the daemon exists to correct).
func (d *dnsPlanner) corefileReason(before, after Corefile, rep corefile.Report) string {
	present := map[string]bool{}
	for _, b := range before.Blocks {
		present[b.Zone] = true
	}
	var add, update, missing []string
	for _, b := range after.Blocks {
		switch {
		case !present[b.Zone] && slices.Contains(before.Owned, b.Zone):
			missing = append(missing, b.Zone)
		case !present[b.Zone]:
			add = append(add, b.Zone)
		case b.Pending != "" || slices.Contains(rep.Updated, b.Zone):
			update = append(update, b.Zone)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "restore blocks removed outside meshd for "+strings.Join(missing, ", "))
	}
	if len(add) > 0 {
		parts = append(parts, "add blocks for "+strings.Join(add, ", "))
	}
	if len(update) > 0 {
		parts = append(parts, "update blocks for "+strings.Join(update, ", "))
	}
	if len(after.Removed) > 0 {
		parts = append(parts, "remove blocks for "+strings.Join(after.Removed, ", "))
	}
	if len(parts) == 0 {
		return "rewrite meshd's blocks"
	}
	return strings.Join(parts, "; ")
}

// corefileRemove plans the removal of meshd's blocks, and of the backup, from the Corefile of a cluster
// that is no longer desired.
func (d *dnsPlanner) corefileRemove(m model.Member) {
	o := d.obs[m.Name]
	if o.CoreDNS == nil {
		return
	}
	text, ok := o.CoreDNS.Data[CorefileKey]
	if !ok {
		return
	}
	addr := CorefileAddress(m.Name)
	owned := d.c.in.State.CorefileZones(m.Name)
	out, rep, err := corefile.Remove(text, d.mesh(), owned)
	if err != nil {
		d.conflict(addr, fmt.Sprintf("Cannot remove meshd's blocks from the Corefile of cluster %s", m.Name),
			fmt.Sprintf("%v. Nothing is changed; remove the blocks marked %q by hand.", err, corefile.Marker(d.mesh())))
		return
	}
	backup := o.Backup != nil && model.OwnedBy(o.Backup.Labels, d.mesh())
	if !rep.Changed() && !backup {
		return
	}
	before := Corefile{Cluster: m.Name, KubeContext: m.KubeContext, Blocks: d.blocksIn(m.Name), Owned: owned,
		Text: text, Backup: o.Backup != nil}
	after := Corefile{Cluster: m.Name, KubeContext: m.KubeContext, Owned: owned, Removed: rep.Removed, Text: out,
		DeleteBackup: backup}
	reason := d.goneReason() + ": remove meshd's blocks and the backup"
	if !rep.Changed() {
		reason = d.goneReason() + ": delete the backup (meshd's blocks are already gone)"
	}
	d.c.add(Change{Action: Update, Address: addr, Kind: KindCorefile, Reason: reason, Before: before, After: after})
	d.corefileChanges[m.Name] = addr
}

func uniqueSorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

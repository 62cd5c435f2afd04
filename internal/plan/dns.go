package plan

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
)

// Names of the Kubernetes objects meshd manages or reads for DNS.
const (
	DNSNamespace     = "kube-system"
	DNSServiceName   = "across-cluster-dns-tcp"
	CoreDNSConfigMap = "coredns"
	BackupConfigMap  = "coredns-meshd-backup"
	CorefileKey      = spec.CorefileKey // the spec names it too (dns { corefile }): one constant
	// EKSManager is the field manager of the EKS CoreDNS managed add-on, which may revert the Corefile.
	EKSManager = "eks"
)

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
	// CorefileVia is the spec's dns.corefile_via ("" means spec.CorefileViaConfigMap).
	CorefileVia string
	// Addons are the members' EKS CoreDNS add-ons that exist, by cluster (see addon.go); nil when they
	// were not observed, which leaves the add-ons alone. AddonUnknown are clusters whose add-on could not
	// be looked up this time: a recorded one is neither changed nor forgotten.
	Addons       map[string]model.Addon
	AddonUnknown map[string]bool
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

func joinMap(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ", ")
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

// dns plans the DNS Services and the Corefiles:
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
		d.checkServedDomain(m)
	}
	for _, m := range d.clusters {
		if d.in.Unobserved[m.Name] {
			continue
		}
		if wanted[m.Name] {
			d.corefile(m)
		} else {
			d.corefileRemove(m)
			d.addonRemove(m, d.goneReason())
		}
		d.nodeLocal(m, wanted[m.Name])
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

// blocksIn lists meshd's blocks in a cluster's observed Corefile, with what they forward to now. Several
// steps read them (the cluster's own change, and the others' when a member cannot be observed), so each
// Corefile is parsed once.
func (d *dnsPlanner) blocksIn(cluster string) []CorefileBlock {
	if out, ok := d.blocks[cluster]; ok {
		return out
	}
	var out []CorefileBlock
	if text, ok := SiteText(d.obs[cluster]); ok {
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

// DomainMismatch is a member whose CoreDNS does not serve the cluster domain the spec declares for it, in
// cluster-domain mode: the other members would forward that domain to a CoreDNS that does not answer for it.
// Check reports it at the cluster's cluster_domain.
type DomainMismatch struct {
	Cluster  string
	Declared string   // normalised
	Served   []string // the zones of its kubernetes plugin; none when it has none
}

// checkServedDomain compares, in cluster-domain mode, the domain declared for m with the zones the
// kubernetes plugin of m's own Corefile serves. A Corefile that is missing or does not parse is reported
// elsewhere (coreDNSText, Merge).
func (d *dnsPlanner) checkServedDomain(m model.Member) {
	o := d.obs[m.Name]
	if d.in.ForwardBy != spec.ForwardByClusterDomain || o.CoreDNS == nil {
		return
	}
	key := CorefileKey
	if !o.Site.Import && o.Site.Found() {
		key = o.Site.Key
	}
	text, ok := o.CoreDNS.Data[key]
	if !ok {
		return
	}
	served, _, err := corefile.KubernetesZones(text)
	declared := corefile.NormalizeZone(DNSZone(d.in.ForwardBy, m))
	if err != nil || slices.Contains(served, declared) {
		return
	}
	d.c.plan.DomainMismatches = append(d.c.plan.DomainMismatches, DomainMismatch{Cluster: m.Name, Declared: declared, Served: served})
}

// everyMember is w in each member cluster, or nothing when the spec turns DNS off (dns { enabled = false }).
// everyMemberRules is the RBAC rules of a DNS kind in every member, or none when DNS is off.
func everyMemberRules(m *spec.Mesh, rules func(cluster string) []access.Rule) []access.Rule {
	if m.DNSDisabled {
		return nil
	}
	var out []access.Rule
	for _, c := range m.Clusters {
		out = append(out, rules(c.Name)...)
	}
	return out
}

func everyMember(m *spec.Mesh, w Watch) []Watch {
	if m.DNSDisabled {
		return nil
	}
	out := make([]Watch, 0, len(m.Clusters))
	for _, c := range m.Clusters {
		w.Cluster = c.Name
		out = append(out, w)
	}
	return out
}

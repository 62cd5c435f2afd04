package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// KindNodeLocalDNS is meshd's server blocks in a member's NodeLocal DNSCache Corefile
// (kube-system/node-local-dns). Pods of such a cluster ask the cache on their node first; it forwards the
// cluster domain to CoreDNS and everything else upstream (the VPC resolver). A zone of another member that
// is not under the cluster's own domain (every zone in cluster-domain mode; in namespace mode, the zones of
// members with another cluster domain) would go upstream and never reach meshd's CoreDNS blocks, so meshd
// adds a block per such zone that forwards it where the cache forwards its own cluster domain. Namespace
// mode between clusters that share cluster.local (EKS) needs none. Ownership is the Corefile's: a marker
// comment in the block, or a zone the state records; every other byte is the user's, and the original is
// backed up before the first change.
const KindNodeLocalDNS Kind = "nodelocal_dns"

// NodeLocalConfigMap is the NodeLocal DNSCache's ConfigMap (the upstream node-local-dns addon's name).
const NodeLocalConfigMap = "node-local-dns"

// nodeLocalTable holds, per address, the zones meshd owns in a cache's Corefile.
var nodeLocalTable = state.Table[NodeLocalRecord]{Name: string(KindNodeLocalDNS)}

// NodeLocalRecord is what the state keeps of meshd's blocks in one cache Corefile.
type NodeLocalRecord struct {
	Cluster     string   `json:"cluster"`
	KubeContext string   `json:"kube_context"`
	Zones       []string `json:"zones"`
}

func init() {
	Register(KindInfo{
		Kind: KindNodeLocalDNS, Address: "nodelocal_dns[<cluster>]", Rank: 11,
		Provider: ProviderKube, Decode: decodeAs[NodeLocalDNS], RepeatHint: hintKube,
		Touches: func(r Resource) ObjectRef {
			return ObjectRef{Cluster: r.(NodeLocalDNS).Cluster, APIVersion: "v1", Kind: "ConfigMap",
				Namespace: DNSNamespace, Name: NodeLocalConfigMap}
		},
		Watches: func(m *spec.Mesh) []Watch {
			if !CacheNeedsBlocks(m) {
				return nil
			}
			return everyMember(m, Watch{APIVersion: "v1", Resource: "configmaps", Namespace: DNSNamespace, Name: NodeLocalConfigMap})
		},
		RBAC: nodeLocalRBAC,
		State: &Records{List: func(st *state.State) []state.Entry {
			var out []state.Entry
			for _, addr := range nodeLocalTable.Addresses(st) {
				r, _, _ := nodeLocalTable.Get(st, addr)
				out = append(out, state.Entry{Address: addr, Attrs: []state.Attr{{Name: "zones", Value: r.Zones}}})
			}
			return out
		}},
	})
}

// CacheNeedsBlocks reports whether a member's cache may need meshd's blocks: some member's zone lies
// outside another member's cluster domain.
func CacheNeedsBlocks(m *spec.Mesh) bool {
	if m.ForwardBy == spec.ForwardByClusterDomain {
		return true
	}
	for _, c := range m.Clusters {
		if c.ClusterDomain != m.Clusters[0].ClusterDomain {
			return true
		}
	}
	return false
}

// UnderDomain reports whether zone is domain or lies inside it.
func UnderDomain(zone, domain string) bool {
	return zone == domain || strings.HasSuffix(zone, "."+domain)
}

// nodeLocalRBAC: when a cache may need meshd's blocks (CacheNeedsBlocks), the cache's Corefile (read every
// pass, updated with meshd's blocks only) and meshd's backup of it; else only a read of the cache's
// Corefile, for verify.
func nodeLocalRBAC(m *spec.Mesh) []access.Rule {
	if !CacheNeedsBlocks(m) {
		return everyMemberRules(m, func(c string) []access.Rule {
			return []access.Rule{rbacRule(c, DNSNamespace, "", "configmaps", []string{NodeLocalConfigMap},
				"The NodeLocal DNSCache's Corefile, when the cluster runs one: read so that verify can tell how a Pod's query goes (namespace mode writes nothing there).", "get")}
		})
	}
	backup := BackupName(NodeLocalConfigMap)
	return everyMemberRules(m, func(c string) []access.Rule {
		return []access.Rule{
			rbacRule(c, DNSNamespace, "", "configmaps", []string{NodeLocalConfigMap},
				"The NodeLocal DNSCache's Corefile, when the cluster runs one: read at every pass; updated with meshd's server blocks only.", "get", "update"),
			rbacRule(c, DNSNamespace, "", "configmaps", []string{backup},
				"The backup of the cache's original Corefile: read, and deleted on destroy.", "get", "delete"),
			rbacRule(c, DNSNamespace, "", "configmaps", nil, whyCreate+" Here: "+backup+".", "create"),
		}
	})
}

// NodeLocalAddress is the address of a cluster's cache Corefile.
func NodeLocalAddress(cluster string) string { return fmt.Sprintf("%s[%s]", KindNodeLocalDNS, cluster) }

// NodeLocalZones returns the zones the state records as meshd's in a cluster's cache Corefile.
func NodeLocalZones(st *state.State, cluster string) []string {
	r, _, _ := nodeLocalTable.Get(st, NodeLocalAddress(cluster))
	return r.Zones
}

// NodeLocalDNS is meshd's part of a cache Corefile: a block per Zone, forwarding it where the cache
// forwards Domain, the cluster's own domain (apply reads that route again from the Corefile it writes).
type NodeLocalDNS struct {
	Cluster     string   `json:"cluster"`
	KubeContext string   `json:"kube_context"`
	Domain      string   `json:"domain"`
	Zones       []string `json:"zones,omitempty"`
	Owned       []string `json:"owned,omitempty"`
	Removed     []string `json:"removed,omitempty"`
	// Forward is where the cache forwards its own domain, for display (node-cache fills the
	// __PILLAR__CLUSTER__DNS__ placeholder with the cluster's CoreDNS Service address at run time).
	Forward string `json:"forward,omitempty"`
	// Text is the cache's whole Corefile, for the planner and its tests only (see Corefile.Text).
	Text         string `json:"-"`
	Backup       bool   `json:"backup,omitempty"`
	DeleteBackup bool   `json:"delete_backup,omitempty"`
}

func (NodeLocalDNS) Kind() Kind { return KindNodeLocalDNS }

func (n NodeLocalDNS) Attrs() []Attr {
	backup := "none"
	if n.Backup {
		backup = DNSNamespace + "/" + BackupName(NodeLocalConfigMap)
	}
	attrs := []Attr{{Name: "configmap", Value: DNSNamespace + "/" + NodeLocalConfigMap}, {Name: "backup", Value: backup}}
	for _, z := range n.Zones {
		attrs = append(attrs, Attr{Name: z, Value: "forward to " + n.Forward + " (as " + n.Domain + ")"})
	}
	for _, z := range n.Removed {
		attrs = append(attrs, Attr{Name: z, Value: "(removed)"})
	}
	return attrs
}

// Blocks are the blocks to merge into text, with the cache's route read from it.
func (n NodeLocalDNS) Blocks(text string) ([]corefile.Block, error) {
	if len(n.Zones) == 0 {
		return nil, nil
	}
	route, err := corefile.CacheRouteOf(text, n.Domain)
	if err != nil {
		return nil, err
	}
	return n.via(route), nil
}

// via are the blocks for n's zones, routed as route.
func (n NodeLocalDNS) via(route corefile.CacheRoute) []corefile.Block {
	out := make([]corefile.Block, len(n.Zones))
	for i, z := range n.Zones {
		out[i] = corefile.Block{Zone: z, Cache: &route}
	}
	return out
}

// nodeLocal plans meshd's blocks in a cluster's cache Corefile: the other desired members' zones that are
// not under the cluster's own domain; none when the cluster is not desired (then meshd's blocks are cut
// and the backup deleted).
func (d *dnsPlanner) nodeLocal(m model.Member, wanted bool) {
	o := d.obs[m.Name]
	if o.NodeLocal == nil {
		return
	}
	addr := NodeLocalAddress(m.Name)
	text := o.NodeLocal.Data[CorefileKey]
	owned := NodeLocalZones(d.c.in.State, m.Name)
	domain := corefile.NormalizeZone(DNSZone(spec.ForwardByClusterDomain, m))
	var zones []string
	if wanted {
		for _, b := range d.wanted {
			if z := corefile.NormalizeZone(DNSZone(d.in.ForwardBy, b)); b.Name != m.Name && !UnderDomain(z, domain) {
				zones = append(zones, z)
			}
		}
	}
	want := NodeLocalDNS{Cluster: m.Name, KubeContext: m.KubeContext, Domain: domain, Zones: uniqueSorted(zones), Owned: owned}
	route, routeErr := corefile.CacheRouteOf(text, domain)
	if routeErr != nil && len(want.Zones) > 0 {
		d.conflict(addr, fmt.Sprintf("Cannot tell how the NodeLocal DNSCache of cluster %s reaches its CoreDNS", m.Name),
			fmt.Sprintf("%v. meshd copies the bind and forward lines of the cache's block for %s into its blocks for the other clusters' domains; nothing is changed.", routeErr, domain))
		return
	}
	merged, rep, err := corefile.Merge(text, d.mesh(), owned, want.via(route))
	if err != nil {
		d.conflict(addr, fmt.Sprintf("Cannot update meshd's blocks in the NodeLocal DNSCache Corefile of cluster %s", m.Name),
			fmt.Sprintf("%v. meshd writes a Corefile only when the result parses; nothing is changed.", err))
		return
	}
	for _, cf := range rep.Conflicts {
		d.conflict(addr, fmt.Sprintf("The NodeLocal DNSCache Corefile of cluster %s already serves zone %s in a block meshd did not write", m.Name, cf.Zone),
			fmt.Sprintf("Line %d (%s) of %s/%s is not meshd's, so meshd leaves zone %s to it.", cf.Line, cf.Key, DNSNamespace, NodeLocalConfigMap, cf.Zone))
		want.Zones = slices.DeleteFunc(want.Zones, func(z string) bool { return z == cf.Zone })
	}
	deleteBackup := len(want.Zones) == 0 && o.NodeLocalBackup != nil && model.OwnedBy(o.NodeLocalBackup.Labels, d.mesh())
	if !rep.Changed() && !deleteBackup {
		return
	}
	before := NodeLocalDNS{Cluster: m.Name, KubeContext: m.KubeContext, Domain: domain, Zones: d.nodeLocalBlocks(text, owned),
		Owned: owned, Text: text, Backup: o.NodeLocalBackup != nil}
	want.Text, want.Removed = merged, rep.Removed
	want.Backup, want.DeleteBackup = len(want.Zones) > 0, deleteBackup
	if routeErr == nil {
		want.Forward, before.Forward = strings.Join(route.Forward, " "), strings.Join(route.Forward, " ")
	}
	var deps []string
	if ch := d.corefileChanges[m.Name]; ch != "" && len(want.Zones) > 0 {
		deps = append(deps, ch) // the cache forwards to CoreDNS: its blocks come first
	}
	var restored []string
	for _, z := range rep.Added {
		if slices.Contains(owned, z) {
			restored = append(restored, z)
		}
	}
	reason := "forward the other clusters' domains through the cache to CoreDNS: " + strings.Join(want.Zones, ", ")
	switch {
	case len(restored) > 0:
		reason = "restore blocks removed outside meshd for " + strings.Join(restored, ", ")
	case len(want.Zones) == 0 && len(rep.Removed) > 0:
		reason = "remove meshd's blocks for " + strings.Join(rep.Removed, ", ")
	case len(want.Zones) == 0:
		reason = "delete the backup (meshd's blocks are already gone)"
	}
	d.c.add(Change{Action: Update, Address: addr, Kind: KindNodeLocalDNS, Reason: reason, Before: before, After: want, DependsOn: deps})
}

// nodeLocalBlocks are the zones of meshd's blocks in a cache Corefile now.
func (d *dnsPlanner) nodeLocalBlocks(text string, owned []string) []string {
	blocks, err := corefile.Blocks(text)
	if err != nil {
		return nil
	}
	var out []string
	for _, b := range blocks {
		if b.OwnedBy(d.mesh(), owned) {
			out = append(out, b.Zones[0])
		}
	}
	return out
}

// RecordNodeLocal is what applying a change to a cache Corefile records: the zones meshd owns there now.
func RecordNodeLocal(st *state.State, n NodeLocalDNS, owned []string) {
	addr := NodeLocalAddress(n.Cluster)
	if len(owned) == 0 {
		nodeLocalTable.Forget(st, addr)
		return
	}
	_ = nodeLocalTable.Set(st, addr, NodeLocalRecord{Cluster: n.Cluster, KubeContext: n.KubeContext, Zones: owned})
}

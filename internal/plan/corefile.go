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

// KindCorefile is meshd's server blocks in a member's kube-system/coredns Corefile: one per other member,
// forwarding that member's zone to its DNS load balancer. Ownership: a marker comment in the block, or a
// zone the state records; every other byte of the Corefile is the user's.
const KindCorefile Kind = "corefile"

func init() {
	Register(KindInfo{
		Kind: KindCorefile, Address: "corefile[<cluster>]", Rank: 4,
		Provider: ProviderKube, Decode: decodeAs[Corefile], RepeatHint: hintKube + `; field manager "eks" is the EKS ` +
			`CoreDNS add-on, whose updates write its own Corefile: dns { corefile_via = "eks_addon" } puts meshd's blocks there`,
		Touches: func(r Resource) ObjectRef {
			site := r.(Corefile).Where()
			return ObjectRef{Cluster: r.(Corefile).Cluster, APIVersion: "v1", Kind: "ConfigMap",
				Namespace: site.Namespace, Name: site.Name}
		},
		Watches: func(m *spec.Mesh) []Watch {
			var out []Watch
			for _, c := range dnsMembers(m) {
				ns, edited, imported := CorefileCandidates(m, c)
				for _, name := range append(edited, imported...) {
					out = append(out, Watch{Cluster: c.Name, APIVersion: "v1", Resource: "configmaps", Namespace: ns, Name: name})
				}
			}
			return out
		},
		RBAC: corefileRBAC,
		State: &Records{List: func(st *state.State) []state.Entry {
			var out []state.Entry
			for cluster, zones := range st.Corefiles {
				if len(zones) > 0 {
					out = append(out, state.Entry{Address: CorefileAddress(cluster), Attrs: []state.Attr{{Name: "zones", Value: zones}}})
				}
			}
			return out
		}},
	})
}

// corefileRBAC: the ConfigMaps that may hold the cluster's Corefile (CorefileCandidates: the spec's, or
// the known layouts'); meshd writes only its own server blocks into an edited one, and only its own key
// into an imported one. The backup of an edited Corefile is created once and deleted on destroy, never
// updated.
func corefileRBAC(m *spec.Mesh) []access.Rule {
	var out []access.Rule
	for _, c := range dnsMembers(m) {
		ns, edited, imported := CorefileCandidates(m, c)
		var backups []string
		for _, name := range edited {
			backups = append(backups, BackupName(name))
		}
		if len(edited) > 0 {
			out = append(out,
				rbacRule(c.Name, ns, "", "configmaps", edited,
					"The Corefile: read at every pass; updated with meshd's server blocks only, every other byte kept.", "get", "update"),
				rbacRule(c.Name, ns, "", "configmaps", backups,
					"The backup of the original Corefile: read, and deleted on destroy.", "get", "delete"))
		}
		if len(imported) > 0 {
			out = append(out, rbacRule(c.Name, ns, "", "configmaps", imported,
				"The ConfigMap the Corefile imports *.server files from: meshd writes its own key "+spec.ImportKey+
					" only, and deletes the ConfigMap on destroy if it made it.", "get", "update", "delete"))
		}
		var created []string
		if len(backups) > 0 {
			created = append(created, "the Corefile backup "+strings.Join(backups, ", "))
		}
		if len(imported) > 0 {
			created = append(created, "the imported ConfigMap "+strings.Join(imported, ", ")+" when it is missing")
		}
		out = append(out, rbacRule(c.Name, ns, "", "configmaps", nil, whyCreate+" Here: "+strings.Join(created, "; ")+".", "create"))
	}
	return out
}

// dnsMembers are the spec's clusters, or none when the spec turns DNS off.
func dnsMembers(m *spec.Mesh) []*spec.Cluster {
	if m.DNSDisabled {
		return nil
	}
	return m.Clusters
}

// CorefileAddress is the address of a cluster's Corefile.
func CorefileAddress(cluster string) string { return fmt.Sprintf("%s[%s]", KindCorefile, cluster) }

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
	// Adopted are zones whose hand-written block (the runbook's) meshd takes over with adopt = true (After
	// only): apply checks that each still forwards to the planned upstreams, merges as if the state recorded
	// the zone, and so rewrites the block as meshd's in place.
	Adopted []string `json:"adopted,omitempty"`
	// Text is the whole Corefile (Before: observed; After: merged, when every address is known). It is for
	// the planner and its tests only and never leaves the process: a Corefile can hold other people's
	// settings and credentials (route53 keys, TLS files), which have no place in plan files or --json.
	// Apply merges again into the Corefile it reads then.
	Text string `json:"-"`
	// Backup reports that kube-system/coredns-meshd-backup exists (Before) or will (After): the first
	// change saves the original Corefile there; destroy deletes it (DeleteBackup).
	Backup       bool `json:"backup,omitempty"`
	DeleteBackup bool `json:"delete_backup,omitempty"`
	// Site is where the blocks go; zero in a plan saved before meshd knew other layouts, which means
	// kube-system/coredns (see Where).
	Site model.CorefileSite `json:"site"`
}

// DefaultCorefileSite is the EKS add-on's (and kubeadm's) Corefile.
var DefaultCorefileSite = model.CorefileSite{Namespace: DNSNamespace, Name: CoreDNSConfigMap, Key: CorefileKey}

// Where is the Corefile's site.
func (c Corefile) Where() model.CorefileSite {
	if !c.Site.Found() {
		return DefaultCorefileSite
	}
	return c.Site
}

// CorefileBlock is one of meshd's server blocks: forward Zone to Upstreams, or, while those are not
// known, to the addresses the dns_service change at Pending finds (its ID, comma-separated).
type CorefileBlock struct {
	Zone      string   `json:"zone"`
	Upstreams []string `json:"upstreams,omitempty"`
	Pending   string   `json:"pending,omitempty"`
}

func (Corefile) Kind() Kind { return KindCorefile }

// planningBlocks are the blocks of want to merge while planning: a block whose upstreams are found by
// apply forwards to placeholderUpstream for now.
func planningBlocks(want []CorefileBlock) []corefile.Block {
	blocks, _ := Corefile{Blocks: want}.Resolved(func(string) (string, bool) { return placeholderUpstream, true })
	return blocks
}

// Resolved returns the blocks to merge, with the addresses of each Pending block taken from the ID its
// dns_service change produced in this apply (known, as apply.Known looks it up).
func (c Corefile) Resolved(known func(address string) (string, bool)) ([]corefile.Block, error) {
	blocks := make([]corefile.Block, 0, len(c.Blocks))
	for _, b := range c.Blocks {
		ups := b.Upstreams
		if b.Pending != "" {
			id, ok := known(b.Pending)
			if !ok || id == "" {
				return nil, fmt.Errorf("the addresses of %s are not known", b.Pending)
			}
			ups = strings.Split(id, ",")
		}
		blocks = append(blocks, corefile.Block{Zone: b.Zone, Upstreams: ups})
	}
	return blocks, nil
}

func (c Corefile) Attrs() []Attr {
	site := c.Where()
	backup := "none"
	switch {
	case site.Import:
		backup = "none (meshd's own key)"
	case c.Backup:
		backup = site.Namespace + "/" + BackupName(site.Name)
	}
	attrs := []Attr{{Name: "configmap", Value: site.String()}, {Name: "backup", Value: backup}}
	for _, b := range c.Blocks {
		if b.Pending != "" {
			attrs = append(attrs, Attr{Name: b.Zone, Value: b.Pending, Unknown: true})
		} else if slices.Contains(c.Adopted, b.Zone) {
			attrs = append(attrs, Attr{Name: b.Zone, Value: "forward to " + strings.Join(b.Upstreams, " ") + " (adopted)"})
		} else {
			attrs = append(attrs, Attr{Name: b.Zone, Value: "forward to " + strings.Join(b.Upstreams, " ")})
		}
	}
	for _, z := range c.Removed {
		attrs = append(attrs, Attr{Name: z, Value: "(removed)"})
	}
	return attrs
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
	blocks := planningBlocks(want)
	merged, rep, err := corefile.Merge(text, d.mesh(), owned, blocks)
	if err != nil {
		d.conflict(addr, fmt.Sprintf("Cannot update meshd's blocks in the Corefile of cluster %s", m.Name),
			fmt.Sprintf("%v. meshd writes a Corefile only when the result parses; nothing is changed.", err))
		return
	}
	merged, rep, adopted, hints, err := d.adoptBlocks(text, owned, blocks, merged, rep)
	if err != nil {
		d.conflict(addr, fmt.Sprintf("Cannot adopt the hand-written blocks in the Corefile of cluster %s", m.Name),
			fmt.Sprintf("%v. meshd writes a Corefile only when the result parses; nothing is changed.", err))
		return
	}
	conflicting := map[string]bool{}
	for _, cf := range rep.Conflicts {
		conflicting[cf.Zone] = true
		d.conflict(addr,
			fmt.Sprintf("The Corefile of cluster %s already serves zone %s in a block meshd did not write", m.Name, cf.Zone),
			fmt.Sprintf("Line %d (%s) of %s/%s is not meshd's, so meshd does not add its own block for %s next to it or replace it. "+
				"Remove that block, or let meshd own it by deleting it and planning again.%s",
				cf.Line, cf.Key, DNSNamespace, CoreDNSConfigMap, cf.Zone, hints[cf.Zone]))
	}
	want = slices.DeleteFunc(want, func(b CorefileBlock) bool { return conflicting[b.Zone] })
	deps = nil
	for _, b := range want {
		if b.Pending != "" {
			deps = append(deps, b.Pending)
		}
	}
	if site := ObservedSite(o); !site.Import && site.Namespace == DNSNamespace && site.Name == CoreDNSConfigMap {
		d.addonCorefile(m, text, want) // the EKS add-on writes kube-system/coredns, nowhere else
	}
	// With the add-on observed, the plan's add-on note says what an update would do (addon.go).
	if _, addon := d.in.Addons[m.Name]; !addon && len(want) > 0 && o.CoreDNS != nil && slices.Contains(o.CoreDNS.Managers, EKSManager) {
		d.c.plan.Warnings = append(d.c.plan.Warnings, fmt.Sprintf(
			"The Corefile of cluster %s is managed by the EKS CoreDNS add-on (field manager %q): an add-on update may revert it, "+
				"removing meshd's blocks. meshd (the daemon) restores them on its next run; meshctl apply does the same.",
			m.Name, EKSManager))
	}
	if len(deps) == 0 && !rep.Changed() && len(adopted) == 0 {
		return
	}

	before := Corefile{Cluster: m.Name, KubeContext: m.KubeContext, Blocks: d.blocksIn(m.Name), Owned: owned,
		Text: text, Backup: o.Backup != nil, Site: ObservedSite(o)}
	after := Corefile{Cluster: m.Name, KubeContext: m.KubeContext, Blocks: want, Owned: owned, Adopted: adopted,
		Backup: !ObservedSite(o).Import, Site: ObservedSite(o)}
	if len(deps) == 0 {
		after.Text = merged
	}
	for _, z := range rep.Removed {
		if !slices.ContainsFunc(want, func(b CorefileBlock) bool { return b.Zone == z }) {
			after.Removed = append(after.Removed, z)
		}
	}
	action := Update
	if len(adopted) > 0 {
		action = Adopt
	}
	d.c.add(Change{Action: action, Address: addr, Kind: KindCorefile, Before: before, After: after,
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
	var adopt, add, update, missing []string
	for _, b := range after.Blocks {
		switch {
		case slices.Contains(after.Adopted, b.Zone):
			adopt = append(adopt, b.Zone)
		case !present[b.Zone] && slices.Contains(before.Owned, b.Zone):
			missing = append(missing, b.Zone)
		case !present[b.Zone]:
			add = append(add, b.Zone)
		case b.Pending != "" || slices.Contains(rep.Updated, b.Zone):
			update = append(update, b.Zone)
		}
	}
	var parts []string
	if len(adopt) > 0 {
		parts = append(parts, "adopt the hand-written blocks for "+strings.Join(adopt, ", ")+
			" (they forward to those clusters' load balancers; rewritten in place as meshd's)")
	}
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
	text, ok := SiteText(o)
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
		Text: text, Backup: o.Backup != nil, Site: ObservedSite(o)}
	after := Corefile{Cluster: m.Name, KubeContext: m.KubeContext, Owned: owned, Removed: rep.Removed, Text: out,
		DeleteBackup: backup, Site: ObservedSite(o)}
	reason := d.goneReason() + ": remove meshd's blocks and the backup"
	if !rep.Changed() {
		reason = d.goneReason() + ": delete the backup (meshd's blocks are already gone)"
	}
	d.c.add(Change{Action: Update, Address: addr, Kind: KindCorefile, Reason: reason, Before: before, After: after})
	d.corefileChanges[m.Name] = addr
}

// placeholderUpstream stands in for addresses known only after apply when the plan merges to find
// conflicts (TEST-NET-1, never a real upstream).
const placeholderUpstream = "192.0.2.1"

// SiteText is the text meshd merges its blocks into in a cluster: the edited Corefile, or meshd's own key
// of an import layout ("" while it does not exist). ok is false when no CoreDNS configuration was found.
func SiteText(o model.DNSObserved) (text string, ok bool) {
	site := ObservedSite(o)
	switch {
	case !site.Found():
		return "", false
	case site.Import:
		if o.Custom == nil {
			return "", true
		}
		return o.Custom.Data[site.Key], true
	case o.CoreDNS == nil:
		return "", false
	}
	text, ok = o.CoreDNS.Data[site.Key]
	return text, ok
}

// ObservedSite is o.Site, or kube-system/coredns for an observation that names no site but holds that
// ConfigMap (made by hand: tests, the simulated world).
func ObservedSite(o model.DNSObserved) model.CorefileSite {
	if !o.Site.Found() && o.CoreDNS != nil && len(o.Looked) == 0 {
		return DefaultCorefileSite
	}
	return o.Site
}

// coreDNSText returns the text meshd merges into in a cluster, or, when it found no CoreDNS configuration
// there, notes that for Check, which warns at the cluster: the rest of the mesh is planned as usual.
func (d *dnsPlanner) coreDNSText(m model.Member, o model.DNSObserved) (string, bool) {
	if text, ok := SiteText(o); ok {
		d.c.plan.CoreDNS = append(d.c.plan.CoreDNS, CoreDNSFound{Cluster: m.Name, Site: ObservedSite(o), NodeLocal: o.NodeLocal != nil})
		return text, true
	}
	d.c.plan.NoCoreDNS = append(d.c.plan.NoCoreDNS, NoCoreDNS{Cluster: m.Name, Looked: o.Looked,
		AutoMode: d.c.in.Observed != nil && d.c.in.Observed.EKSAutoMode[m.Name]})
	return "", false
}

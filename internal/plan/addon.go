package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// KindAddonCorefile is meshd's server blocks in the corefile of a member's EKS CoreDNS add-on
// configuration (configurationValues.corefile), written with dns { corefile_via = "eks_addon" } so that an
// add-on update, which writes that Corefile into the coredns ConfigMap, keeps them. Ownership is the
// Corefile's: blocks with meshd's marker, or in a zone the state records (state.Addons); every other byte
// of the configuration is the user's. The ConfigMap stays the corefile kind's, repaired as before.
const KindAddonCorefile Kind = "addon_corefile"

// hintAddon says who else writes an add-on's configuration when meshd's blocks keep disappearing from it.
const hintAddon = "another tool owns the coredns add-on's configuration_values and rewrites them: Terraform " +
	"(aws_eks_addon.configuration_values) or eksctl (addons[].configurationValues in the ClusterConfig) put back " +
	"their own on every apply; add meshd's blocks there, or leave the corefile key to meshd. AWS CloudTrail's " +
	"UpdateAddon events name the caller"

func init() {
	Register(KindInfo{
		Kind: KindAddonCorefile, Address: "addon_corefile[<cluster>]", Rank: 10,
		Provider: ProviderAWS, Decode: decodeAs[AddonCorefile], RepeatHint: hintAddon,
		IAM: addonIAM,
		State: &Records{
			List: func(st *state.State) []state.Entry {
				var out []state.Entry
				for cluster, r := range st.Addons {
					out = append(out, state.Entry{Address: AddonCorefileAddress(cluster), Attrs: []state.Attr{
						{Name: "region", Value: r.Region}, {Name: "eks_cluster", Value: r.EKSCluster}, {Name: "addon", Value: r.Addon},
						{Name: "zones", Value: r.Zones}, {Name: "had_corefile", Value: boolAttr(r.HadCorefile)},
						{Name: "base_hash", Value: r.BaseHash}, {Name: "original_hash", Value: r.OriginalHash},
						{Name: "written_hash", Value: r.WrittenHash}}})
				}
				return out
			},
			Fix: func(p *Plan, st *state.State) {
				for _, cluster := range p.ForgetAddons {
					st.RemoveAddon(cluster)
				}
			},
		},
	})
}

// AddonCorefileAddress is the address of a cluster's add-on Corefile.
func AddonCorefileAddress(cluster string) string {
	return fmt.Sprintf("%s[%s]", KindAddonCorefile, cluster)
}

// AddonCorefile is the corefile of a member's CoreDNS add-on configuration, as far as meshd's blocks go.
// It carries zones, upstreams, hashes and the version, never the configuration's text: that may hold
// credentials. Before is what was observed; After what meshd writes (its blocks, resolved at apply time
// like the ConfigMap's, merged into the configuration the executor reads then).
type AddonCorefile struct {
	Cluster     string          `json:"cluster"`
	Region      string          `json:"region"`
	EKSCluster  string          `json:"eks_cluster"`
	KubeContext string          `json:"kube_context"`
	Addon       string          `json:"addon"`
	Version     string          `json:"version"`
	Blocks      []CorefileBlock `json:"blocks,omitempty"`
	// Owned are the zones the state records as meshd's in the add-on's Corefile; Removed the ones this
	// change cuts out (After only).
	Owned   []string `json:"owned,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// HasCorefile: the configuration carries a corefile key (Before: now; After: after the change).
	HasCorefile bool `json:"has_corefile"`
	// ConfigHash is the SHA-256 of the configurationValues (Before: as observed; the executor refuses to
	// write over other ones. After: as planned, when every address is known).
	ConfigHash string `json:"config_hash,omitempty"`
	// Restore is what the state keeps of the configuration before meshd's first write (After of a write;
	// Before of a removal, which uses it to give the configuration back exactly).
	Restore corefile.AddonRestore `json:"restore"`
	// Restores (After of a removal): the result is the configuration as it was before meshd's first write,
	// byte for byte.
	Restores bool `json:"restores,omitempty"`
	// RemoveAll (After of a removal): every block of meshd's goes, and the state forgets the add-on.
	RemoveAll bool `json:"remove_all,omitempty"`
	// ConfigMapOwned are the zones the state records in the ConfigMap's Corefile: the executor takes them
	// out of the ConfigMap's text to find the add-on's default Corefile when the configuration has none.
	ConfigMapOwned []string `json:"configmap_owned,omitempty"`
}

func (AddonCorefile) Kind() Kind { return KindAddonCorefile }

func (a AddonCorefile) Attrs() []Attr {
	where := "configurationValues.corefile"
	if !a.HasCorefile {
		where = "(no corefile: the add-on's default Corefile)"
	}
	attrs := []Attr{
		{Name: "addon", Value: fmt.Sprintf("%s %s of EKS cluster %s (%s)", a.Addon, a.Version, a.EKSCluster, a.Region)},
		{Name: "corefile", Value: where},
	}
	if a.ConfigHash != "" {
		attrs = append(attrs, Attr{Name: "configuration", Value: "sha256:" + a.ConfigHash[:min(12, len(a.ConfigHash))], Sensitive: true})
	}
	for _, b := range a.Blocks {
		if b.Pending != "" {
			attrs = append(attrs, Attr{Name: b.Zone, Value: b.Pending, Unknown: true})
		} else {
			attrs = append(attrs, Attr{Name: b.Zone, Value: "forward to " + strings.Join(b.Upstreams, " ")})
		}
	}
	for _, z := range a.Removed {
		attrs = append(attrs, Attr{Name: z, Value: "(removed)"})
	}
	return attrs
}

// Record is what the state keeps after the change: the add-on's place, meshd's zones and hashes.
func (a AddonCorefile) Record(written string) state.AddonRecord {
	zones := make([]string, 0, len(a.Blocks))
	for _, b := range a.Blocks {
		zones = append(zones, b.Zone)
	}
	return state.AddonRecord{Region: a.Region, EKSCluster: a.EKSCluster, Addon: a.Addon, Zones: zones,
		HadCorefile: a.Restore.HadCorefile, BaseHash: a.Restore.BaseHash, OriginalHash: a.Restore.OriginalHash,
		WrittenHash: corefile.Hash(written)}
}

// AddonNote tells, per member whose CoreDNS is an EKS managed add-on, what the plan knows of it and
// what an add-on update with resolveConflicts=OVERWRITE (which writes the add-on's Corefile into the
// ConfigMap) would do to meshd's blocks once the plan is applied.
type AddonNote struct {
	Cluster     string `json:"cluster"`
	EKSCluster  string `json:"eks_cluster"`
	Addon       string `json:"addon"`
	Version     string `json:"version"`
	Status      string `json:"status,omitempty"`
	HasCorefile bool   `json:"has_corefile"`
	CorefileVia string `json:"corefile_via"`
	// OnOverwrite is what such an update does to meshd's blocks.
	OnOverwrite string `json:"on_overwrite"`
	// Lost are meshd's zones such an update would take out of the ConfigMap.
	Lost []string `json:"lost,omitempty"`
}

func (n AddonNote) String() string {
	has := "without a corefile"
	if n.HasCorefile {
		has = "with a corefile"
	}
	status := ""
	if n.Status != "" {
		status = ", " + n.Status
	}
	return fmt.Sprintf("%s: %s %s (EKS cluster %s%s), configurationValues %s, corefile_via = %q: %s",
		n.Cluster, n.Addon, n.Version, n.EKSCluster, status, has, n.CorefileVia, n.OnOverwrite)
}

// addonCorefile plans meshd's blocks in the add-on configuration of a desired member, given the blocks
// the ConfigMap gets (want) and the ConfigMap's observed Corefile (cmText), and notes what an add-on
// update would do.
func (d *dnsPlanner) addonCorefile(m model.Member, cmText string, want []CorefileBlock) {
	a, ok := d.in.Addons[m.Name]
	if !ok {
		return
	}
	rec, recorded := d.c.in.State.Addon(m.Name)
	via := d.in.CorefileVia
	if via == "" {
		via = spec.CorefileViaConfigMap
	}
	addr := AddonCorefileAddress(m.Name)
	current, had, err := d.addonBlocks(a, rec.Zones)
	if err != nil {
		d.conflict(addr, fmt.Sprintf("Cannot read the CoreDNS add-on configuration of cluster %s", m.Name),
			fmt.Sprintf("%v. meshd leaves configurationValues alone.", err))
		return
	}
	inAddon, planned := current, false
	defer func() { d.noteAddon(m, a, via, had, planned, want, inAddon) }()

	if via != spec.CorefileViaEKSAddon {
		if recorded {
			inAddon = nil
			d.addonRemove(m, "corefile_via is \"configmap\"")
		}
		return
	}
	if a.SchemaChecked && !a.SchemaHasCorefile {
		return // the engine reported it against the spec (dns.corefile_via)
	}
	cmOwned := d.c.in.State.CorefileZones(m.Name)
	base, _, err := corefile.Remove(cmText, d.mesh(), cmOwned)
	if err != nil {
		return // the corefile kind reported the ConfigMap's problem
	}
	blocks := planningBlocks(want)
	var deps []string
	for _, b := range want {
		if b.Pending != "" {
			deps = append(deps, b.Pending)
		}
	}
	out, merged, rep, err := corefile.MergeAddonConfig(a.ConfigurationValues, base, d.mesh(), rec.Zones, blocks)
	if err != nil {
		d.conflict(addr, fmt.Sprintf("Cannot write meshd's blocks into the CoreDNS add-on configuration of cluster %s", m.Name),
			fmt.Sprintf("%v. meshd writes configurationValues only when its corefile parses; nothing is changed there.", err))
		return
	}
	conflicting := map[string]bool{}
	for _, cf := range rep.Conflicts {
		conflicting[cf.Zone] = true
		d.conflict(addr,
			fmt.Sprintf("The CoreDNS add-on's corefile of cluster %s already serves zone %s in a block meshd did not write", m.Name, cf.Zone),
			fmt.Sprintf("Line %d (%s) of configurationValues.corefile is not meshd's, so meshd does not add its own block for %s there. "+
				"Remove that block from the add-on configuration, or let meshd own the zone by deleting it and planning again.", cf.Line, cf.Key, cf.Zone))
	}
	want = slices.DeleteFunc(slices.Clone(want), func(b CorefileBlock) bool { return conflicting[b.Zone] })
	if len(want) > 0 && !corefile.HasPlugin(merged, "ready") {
		d.c.plan.Warnings = append(d.c.plan.Warnings, fmt.Sprintf(
			"The CoreDNS add-on corefile of cluster %s has no ready plugin: add-on builds since v1.11 probe /ready, which only "+
				"that plugin serves, so their Pods would not become ready. meshd adds only its own blocks; add ready to the .:53 block.", m.Name))
	}
	if len(deps) == 0 && out == a.ConfigurationValues {
		inAddon = want
		return
	}
	restore := corefile.AddonRestore{HadCorefile: had, OriginalHash: corefile.Hash(a.ConfigurationValues)}
	if !had {
		restore.BaseHash = corefile.Hash(base)
	}
	if recorded {
		restore = corefile.AddonRestore{HadCorefile: rec.HadCorefile, BaseHash: rec.BaseHash, OriginalHash: rec.OriginalHash}
	}
	before := d.addonResource(m, a, rec.Zones, current, had)
	after := d.addonResource(m, a, rec.Zones, want, true)
	after.Restore, after.ConfigMapOwned, after.ConfigHash = restore, cmOwned, ""
	if len(deps) == 0 {
		after.ConfigHash = corefile.Hash(out)
	}
	for _, z := range rep.Removed {
		if !slices.ContainsFunc(want, func(b CorefileBlock) bool { return b.Zone == z }) {
			after.Removed = append(after.Removed, z)
		}
	}
	reason := "write meshd's blocks into the add-on's configurationValues.corefile, so that add-on updates keep them"
	if recorded && len(current) < len(want) && rec.WrittenHash != before.ConfigHash {
		reason = "restore meshd's blocks in configurationValues.corefile, rewritten outside meshd since its last write"
	} else if len(current) > 0 {
		reason = "update meshd's blocks in configurationValues.corefile"
	}
	d.c.add(Change{Action: Update, Address: addr, Kind: KindAddonCorefile, Reason: reason,
		Before: before, After: after, DependsOn: uniqueSorted(deps)})
	inAddon, planned = want, true
}

// addonRemove plans taking meshd's blocks out of the add-on configuration of cluster m (destroy, a
// cluster that left, corefile_via back to "configmap"), restoring the configuration as it was when
// meshd's blocks were the only change.
func (d *dnsPlanner) addonRemove(m model.Member, why string) {
	rec, recorded := d.c.in.State.Addon(m.Name)
	if !recorded {
		return
	}
	if d.in.Addons == nil || d.in.AddonUnknown[m.Name] {
		return
	}
	a, ok := d.in.Addons[m.Name]
	if !ok {
		d.c.plan.ForgetAddons = append(d.c.plan.ForgetAddons, m.Name) // the add-on is gone, and meshd's blocks with it
		return
	}
	addr := AddonCorefileAddress(m.Name)
	restore := corefile.AddonRestore{HadCorefile: rec.HadCorefile, BaseHash: rec.BaseHash, OriginalHash: rec.OriginalHash}
	out, rep, err := corefile.RemoveAddonConfig(a.ConfigurationValues, d.mesh(), rec.Zones, restore)
	if err != nil {
		d.conflict(addr, fmt.Sprintf("Cannot remove meshd's blocks from the CoreDNS add-on configuration of cluster %s", m.Name),
			fmt.Sprintf("%v. Nothing is changed; remove the blocks marked %q from configurationValues.corefile by hand.", err, corefile.Marker(d.mesh())))
		return
	}
	if !rep.Changed() {
		d.c.plan.ForgetAddons = append(d.c.plan.ForgetAddons, m.Name)
		return
	}
	current, had, _ := d.addonBlocks(a, rec.Zones)
	before := d.addonResource(m, a, rec.Zones, current, had)
	before.Restore = restore
	after := d.addonResource(m, a, rec.Zones, nil, false)
	after.Removed, after.ConfigHash, after.Restore, after.RemoveAll = rep.Removed, corefile.Hash(out), restore, true
	if c, err := corefile.ParseAddonConfig(out); err == nil {
		_, after.HasCorefile, _ = c.Corefile()
	}
	after.Restores = corefile.Hash(out) == rec.OriginalHash
	reason := why + ": remove meshd's blocks from configurationValues.corefile"
	if after.Restores {
		reason += ", giving back the configuration exactly as it was"
	} else {
		reason += ", keeping the rest as it is now"
	}
	d.c.add(Change{Action: Update, Address: addr, Kind: KindAddonCorefile, Reason: reason, Before: before, After: after})
}

func (d *dnsPlanner) addonResource(m model.Member, a model.Addon, owned []string, blocks []CorefileBlock, has bool) AddonCorefile {
	return AddonCorefile{Cluster: m.Name, Region: a.Region, EKSCluster: a.EKSCluster, KubeContext: m.KubeContext,
		Addon: a.Name, Version: a.Version, Blocks: blocks, Owned: owned, HasCorefile: has,
		ConfigHash: corefile.Hash(a.ConfigurationValues)}
}

// addonBlocks lists meshd's blocks in the add-on's corefile and reports whether it has one.
func (d *dnsPlanner) addonBlocks(a model.Addon, owned []string) ([]CorefileBlock, bool, error) {
	c, err := corefile.ParseAddonConfig(a.ConfigurationValues)
	if err != nil {
		return nil, false, err
	}
	text, had, err := c.Corefile()
	if err != nil || !had {
		return nil, had, err
	}
	blocks, err := corefile.Blocks(text)
	if err != nil {
		return nil, true, err
	}
	var out []CorefileBlock
	for _, b := range blocks {
		if b.OwnedBy(d.mesh(), owned) {
			out = append(out, CorefileBlock{Zone: b.Zones[0], Upstreams: corefile.ForwardUpstreams(text, b)})
		}
	}
	return out, true, nil
}

// noteAddon says what an add-on update with resolveConflicts=OVERWRITE would do to meshd's blocks in the
// ConfigMap once this plan is applied: the add-on writes its corefile (inAddon are meshd's blocks in it
// then; planned: this plan puts them there), or its default Corefile when it has none, which has none of
// meshd's blocks. has tells whether the configuration carries a corefile now.
func (d *dnsPlanner) noteAddon(m model.Member, a model.Addon, via string, has, planned bool, want, inAddon []CorefileBlock) {
	n := AddonNote{Cluster: m.Name, EKSCluster: a.EKSCluster, Addon: a.Name, Version: a.Version, Status: a.Status,
		HasCorefile: has, CorefileVia: via}
	for _, b := range want {
		if !slices.ContainsFunc(inAddon, func(x CorefileBlock) bool { return x.Zone == b.Zone }) {
			n.Lost = append(n.Lost, b.Zone)
		}
	}
	switch {
	case len(want) == 0:
		n.OnOverwrite = "meshd has no blocks there to lose"
	case len(n.Lost) == 0 && planned:
		n.OnOverwrite = "once this plan is applied, an add-on update with resolveConflicts=OVERWRITE keeps meshd's blocks: " +
			"they will be in its configurationValues.corefile"
	case len(n.Lost) == 0:
		n.OnOverwrite = "an add-on update with resolveConflicts=OVERWRITE keeps meshd's blocks: they are in its configurationValues.corefile"
	case has:
		n.OnOverwrite = "an add-on update with resolveConflicts=OVERWRITE writes its configured corefile, removing meshd's blocks for " +
			strings.Join(n.Lost, ", ") + " from the ConfigMap until meshd restores them"
	default:
		n.OnOverwrite = "an add-on update with resolveConflicts=OVERWRITE puts back the add-on's default Corefile, removing meshd's blocks for " +
			strings.Join(n.Lost, ", ") + " from the ConfigMap until meshd restores them; dns { corefile_via = \"eks_addon\" } keeps them"
	}
	d.c.plan.Addons = append(d.c.plan.Addons, n)
}

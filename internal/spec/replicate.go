package spec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// ReplicableKinds are the kinds of object a replicate block may copy, and whether each is namespaced.
var ReplicableKinds = map[string]bool{
	"Secret":             true,
	"ConfigMap":          true,
	"Role":               true,
	"RoleBinding":        true,
	"ClusterRole":        false,
	"ClusterRoleBinding": false,
}

// Replicate is a replicate block: one object of one member (the source) copied into other members, and
// kept equal to the source.
type Replicate struct {
	Name string
	// From names the source object.
	FromCluster   string
	FromKind      string
	FromNamespace string // "" for cluster-scoped kinds
	FromName      string
	// To are the target clusters, in spec order; empty in the spec means every other member (see Targets).
	To []string
	// Namespace is the copies' namespace: the source's unless set (namespaced kinds only).
	Namespace string

	// BlockRanges: value ranges by "to", "namespace", "from.cluster", "from.kind", ...
	BlockRanges
	FromDeclRange hcl.Range // the from block's header (the block itself when there is none)
}

// AttrRange returns the range of the named attribute ("to", "from.name", ...) if it was set, else the most
// specific header: the from block's for from.* attributes, else the block's.
func (r *Replicate) AttrRange(name string) hcl.Range {
	if rg, ok := r.Attrs[name]; ok {
		return rg
	}
	if strings.HasPrefix(name, "from.") {
		return r.FromDeclRange
	}
	return r.DeclRange
}

// Namespaced reports whether the replicated kind is namespaced.
func (r *Replicate) Namespaced() bool { return ReplicableKinds[r.FromKind] }

// Targets are the clusters that get a copy: To, or every member but the source.
func (r *Replicate) Targets(m *Mesh) []string {
	if len(r.To) > 0 {
		return r.To
	}
	return m.othersThan(r.FromCluster)
}

// othersThan are the members but one, in spec order.
func (m *Mesh) othersThan(name string) []string {
	var out []string
	for _, c := range m.Clusters {
		if c.Name != name {
			out = append(out, c.Name)
		}
	}
	return out
}

// TargetNamespace is the namespace of the copies ("" for cluster-scoped kinds).
func (r *Replicate) TargetNamespace() string {
	if !r.Namespaced() {
		return ""
	}
	if r.Namespace != "" {
		return r.Namespace
	}
	return r.FromNamespace
}

// Replicate returns the replicate block with the given name, or nil.
func (m *Mesh) Replicate(name string) *Replicate {
	for _, r := range m.Replicates {
		if r.Name == name {
			return r
		}
	}
	return nil
}

var (
	replicateSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "to"}, {Name: "namespace"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "from"}},
	}
	fromSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "cluster"}, {Name: "kind"}, {Name: "namespace"}, {Name: "name"}},
	}
)

func (d *decoder) decodeReplicate(b *hcl.Block) {
	r := &Replicate{Name: b.Labels[0], BlockRanges: newBlockRanges(b.DefRange), FromDeclRange: b.DefRange}
	if !isDNSLabel(r.Name) {
		d.errorf(b.LabelRanges[0], "Invalid replicate name", "%s", labelDetail("replicate", r.Name))
	}
	content, diags := b.Body.Content(replicateSchema)
	d.diags = append(d.diags, diags...)
	if l, _, ok := d.strListIn(r.Attrs, r.Elems, content.Attributes, "to"); ok {
		r.To = l
	}
	if s, rg, ok := d.strIn(r.Attrs, content.Attributes, "namespace"); ok {
		r.Namespace = s
		if !isDNSLabel(s) {
			d.errorf(rg, "Invalid namespace", "%q is not a Kubernetes namespace name: it must be a DNS-1123 label (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit).", s)
		}
	}
	var from *hcl.Block
	for _, fb := range content.Blocks {
		if from != nil {
			d.errorf(fb.DefRange, "Duplicate from block",
				"A from block was already declared at %s. A replicate block copies one source object.", pos(from.DefRange))
			continue
		}
		from = fb
	}
	if from == nil {
		d.errorf(b.DefRange, "Missing from block",
			`Replicate %q does not say what to copy. Add a from block naming the source: from { cluster = "tidb-1", kind = "Secret", namespace = "pingcap", name = "cluster1-ca-secret" }.`, r.Name)
	} else {
		r.FromDeclRange = from.DefRange
		fc, diags := from.Body.Content(fromSchema)
		d.diags = append(d.diags, diags...)
		fromAttrs := map[string]hcl.Range{}
		r.FromCluster, _, _ = d.strIn(fromAttrs, fc.Attributes, "cluster")
		r.FromKind, _, _ = d.strIn(fromAttrs, fc.Attributes, "kind")
		r.FromNamespace, _, _ = d.strIn(fromAttrs, fc.Attributes, "namespace")
		r.FromName, _, _ = d.strIn(fromAttrs, fc.Attributes, "name")
		for k, v := range fromAttrs {
			r.Attrs["from."+k] = v
		}
	}
	if prev := d.m.Replicate(r.Name); prev != nil {
		d.errorf(b.DefRange, "Duplicate replicate name",
			"A replicate block named %q was already declared at %s. Rename one of them.", r.Name, pos(prev.DeclRange))
		return
	}
	d.m.Replicates = append(d.m.Replicates, r)
}

// validateReplicates checks each replicate block against the clusters, once every file is read.
func (d *decoder) validateReplicates() {
	m := d.m
	type copyKey struct{ cluster, kind, namespace, name string }
	copies := map[copyKey]*Replicate{}
	for _, r := range m.Replicates {
		if r.FromDeclRange == r.DeclRange {
			continue // no from block: reported already
		}
		for _, a := range []string{"cluster", "kind", "name"} {
			if _, ok := r.Attrs["from."+a]; !ok {
				d.errorf(r.FromDeclRange, "Missing required argument", "The from block of replicate %q has no %s.", r.Name, a)
			}
		}
		if _, ok := r.Attrs["from.cluster"]; ok && m.Cluster(r.FromCluster) == nil {
			d.errorf(r.AttrRange("from.cluster"), "Unknown cluster",
				"Replicate %q copies from cluster %q, which is not a cluster of this mesh (%s).", r.Name, r.FromCluster, m.ClusterList())
		}
		namespaced, known := ReplicableKinds[r.FromKind]
		if _, ok := r.Attrs["from.kind"]; ok && !known {
			d.errorf(r.AttrRange("from.kind"), "Unsupported kind",
				"meshd cannot replicate %q. It replicates %s.", r.FromKind, strings.Join(replicableKindNames(), ", "))
			continue
		}
		if _, ok := r.Attrs["from.name"]; ok && !isDNSSubdomain(r.FromName) {
			d.errorf(r.AttrRange("from.name"), "Invalid object name", "%q is not a Kubernetes object name (a DNS-1123 subdomain).", r.FromName)
		}
		switch _, set := r.Attrs["from.namespace"]; {
		case namespaced && !set:
			d.errorf(r.FromDeclRange, "Missing required argument",
				"The from block of replicate %q has no namespace: a %s lives in a namespace. Set namespace to the source's.", r.Name, r.FromKind)
		case !namespaced && set:
			d.errorf(r.AttrRange("from.namespace"), "Namespace of a cluster-scoped kind",
				"A %s is cluster-scoped: it has no namespace. Remove namespace from the from block.", r.FromKind)
		case namespaced && !isDNSLabel(r.FromNamespace):
			d.errorf(r.AttrRange("from.namespace"), "Invalid namespace", "%q is not a Kubernetes namespace name.", r.FromNamespace)
		}
		if _, set := r.Attrs["namespace"]; set && !namespaced {
			d.errorf(r.AttrRange("namespace"), "Namespace of a cluster-scoped kind",
				"A %s is cluster-scoped: its copies have no namespace. Remove namespace from replicate %q.", r.FromKind, r.Name)
		}
		seen := map[string]bool{}
		for i, t := range r.To {
			rg := r.ElemRange("to", i)
			switch {
			case m.Cluster(t) == nil:
				d.errorf(rg, "Unknown cluster", "Replicate %q copies to cluster %q, which is not a cluster of this mesh (%s).", r.Name, t, m.ClusterList())
			case t == r.FromCluster:
				d.errorf(rg, "Copy onto the source",
					"Replicate %q copies from %q to %q: the copy would be the source itself. Remove %q from to.", r.Name, t, t, t)
			case seen[t]:
				d.errorf(rg, "Duplicate list entry", "Cluster %q is listed twice in to.", t)
			}
			seen[t] = true
		}
		if _, set := r.Attrs["to"]; set && len(r.To) == 0 {
			d.errorf(r.AttrRange("to"), "Empty target list",
				"Replicate %q copies to no cluster. Name the targets, or remove to to copy to every other member.", r.Name)
		}
		for _, t := range r.Targets(m) {
			k := copyKey{t, r.FromKind, r.TargetNamespace(), r.FromName}
			if prev := copies[k]; prev != nil {
				if prev == r {
					continue // a cluster listed twice in to: reported above
				}
				d.errorf(r.DeclRange, "Two copies of one object",
					"Replicate %q and replicate %q (%s) both write %s %s in cluster %q. Each copy has one source: remove one, or copy to another namespace.",
					r.Name, prev.Name, pos(prev.DeclRange), r.FromKind, objectName(k.namespace, k.name), t)
				continue
			}
			copies[k] = r
		}
	}
}

func objectName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// ClusterList says which clusters the mesh has, for a message about a name that is not one of them:
// `its clusters are "a", "b"`, or `it has none`.
func (m *Mesh) ClusterList() string {
	var names []string
	for _, c := range m.Clusters {
		names = append(names, fmt.Sprintf("%q", c.Name))
	}
	if len(names) == 0 {
		return "it has none"
	}
	return "its clusters are " + strings.Join(names, ", ")
}

func replicableKindNames() []string {
	var out []string
	for k := range ReplicableKinds {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

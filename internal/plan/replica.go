package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// KindReplica is a copy of a replicate block's source object in one target cluster. Ownership: meshd's
// labels on the copy, and the state's record of where it is (so that a copy whose block or target is gone
// is still found and deleted). The source is never written.
const KindReplica Kind = "replica"

func init() {
	Register(KindInfo{
		Kind: KindReplica, Address: "replica[<replicate>:<cluster>]", Rank: 5,
		// The privilege check withholds sources and roles before the replicas and control planes are planned.
		planner:  func(c *computer) { c.privileges(); c.replicas() },
		Provider: ProviderKube, Decode: decodeAs[Replica], RepeatHint: hintKube,
		Touches: func(r Resource) ObjectRef {
			c := r.(Replica)
			return ObjectRef{Cluster: c.Cluster, APIVersion: c.APIVersion, Kind: c.ObjectKind, Namespace: c.Namespace, Name: c.Name}
		},
		Watches: replicaWatches,
		RBAC:    replicaRBAC,
		State: &Records{
			List: func(st *state.State) []state.Entry { return locatedEntries(KindReplica, st.Replicas) },
			Fix: func(p *Plan, st *state.State) {
				fixRecords(p.ForgetReplicas, p.RecordReplicas, st.RemoveReplica, st.SetReplica)
			},
		},
	})
}

// replicaRBAC: the source is only read; each copy is read, created, updated in place (with the
// resourceVersion read, never patched) and deleted, only while it carries meshd's labels; each target
// namespace is checked to exist. Kubernetes lets an identity write a Role or ClusterRole only with every
// permission it grants, or with "escalate" on it, and a binding only with "bind" on the role it binds:
// meshd gets escalate on the copied roles by name (the spec check refuses roles granting escalate, bind,
// impersonate, tokens or wildcards unless allow_privileged is set), but the role a copied binding refers to
// is not in the spec, so bind on it is left to the user.
func replicaRBAC(m *spec.Mesh) []access.Rule {
	var out []access.Rule
	for _, r := range m.Replicates {
		k, err := kubeobj.Lookup(r.FromKind)
		if err != nil {
			continue // the spec check reports it
		}
		group, res, names := k.GVR.Group, k.GVR.Resource, []string{r.FromName}
		out = append(out, rbacRule(r.FromCluster, r.FromNamespace, group, res, names,
			fmt.Sprintf("The source of replicate %q: read only.", r.Name), "get"))
		for _, t := range r.Targets(m) {
			ns := r.TargetNamespace()
			out = append(out,
				rbacRule(t, ns, group, res, names,
					fmt.Sprintf("The copy of replicate %q: read, updated in place and deleted, never without meshd's labels.", r.Name),
					"get", "update", "delete"),
				rbacRule(t, ns, group, res, nil, whyCreate+fmt.Sprintf(" Here: the copy of replicate %q.", r.Name), "create"))
			if ns != "" {
				out = append(out, namespaceRule(t, ns))
			}
			if r.FromKind == "Role" || r.FromKind == "ClusterRole" {
				out = append(out, rbacRule(t, ns, group, res, names,
					fmt.Sprintf("Replicate %q copies a role: Kubernetes lets meshd write one whose permissions it does not hold only with escalate on it.", r.Name),
					"escalate"))
			}
		}
	}
	return out
}

// replicaWatches are the sources, so that a renewed CA reaches its copies at once, and the copies, so that
// one edited or deleted by someone is restored at once.
func replicaWatches(m *spec.Mesh) []Watch {
	var out []Watch
	for _, r := range m.Replicates {
		k, err := kubeobj.Lookup(r.FromKind)
		if err != nil {
			continue // the spec check reports it
		}
		w := Watch{APIVersion: k.APIVersion(), Resource: k.GVR.Resource, Name: r.FromName}
		src := w
		src.Cluster, src.Namespace = r.FromCluster, r.FromNamespace
		out = append(out, src)
		for _, t := range r.Targets(m) {
			cp := w
			cp.Cluster, cp.Namespace = t, r.TargetNamespace()
			out = append(out, cp)
		}
	}
	return out
}

// Annotations meshd puts on a copy: where it comes from, and the hash of the content it was given.
const (
	AnnotationReplicatedFrom = "meshd.io/replicated-from"
	AnnotationContentHash    = "meshd.io/content-hash"
)

// ReplicaAddress is the address of the copy of a replicate block in a cluster.
func ReplicaAddress(replicate, cluster string) string {
	return fmt.Sprintf("%s[%s:%s]", KindReplica, replicate, cluster)
}

// Replica is one copy, as the plan shows it: where it goes, where it comes from, and its content as key
// names and a SHA-256, never the content itself (a Secret's data must not reach a plan file, a log or an
// Event). Apply reads the source again and writes the copy only if its content still has this hash.
type Replica struct {
	Replicate   string `json:"replicate"`
	Cluster     string `json:"cluster"`
	KubeContext string `json:"kube_context"`
	APIVersion  string `json:"api_version"`
	ObjectKind  string `json:"object_kind"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name"`

	// The source: its cluster, the context that reaches it, and its namespace.
	SourceCluster   string `json:"source_cluster"`
	SourceContext   string `json:"source_context"`
	SourceNamespace string `json:"source_namespace,omitempty"`

	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Keys are the data keys (Secrets, ConfigMaps); ContentHash the SHA-256 of the content; Detail a short
	// description of non-sensitive content ("3 rules").
	Keys        []string `json:"keys,omitempty"`
	ContentHash string   `json:"content_hash"`
	Detail      string   `json:"detail,omitempty"`
	Sensitive   bool     `json:"sensitive,omitempty"`
	// Flattened: an aggregated ClusterRole copied as the rules it has now, without its aggregation rule.
	Flattened bool `json:"flattened,omitempty"`
	// UID is the observed copy's (Before): a delete or an adoption is refused if the object was replaced.
	UID string `json:"uid,omitempty"`
	// Adopting (After): the object there is not meshd's yet and adopt = true takes it over.
	Adopting bool `json:"adopting,omitempty"`
}

func (Replica) Kind() Kind { return KindReplica }

func (r Replica) Attrs() []Attr {
	object := r.ObjectKind + " " + objectPath(r.Namespace, r.Name)
	attrs := []Attr{
		{Name: "object", Value: object},
		{Name: "source", Value: r.Source()},
	}
	if len(r.Keys) > 0 {
		attrs = append(attrs, Attr{Name: "keys", Value: strings.Join(r.Keys, ", ")})
	}
	if r.Detail != "" {
		attrs = append(attrs, Attr{Name: "content", Value: r.Detail})
	}
	attrs = append(attrs, Attr{Name: "content_hash", Value: "sha256:" + r.ContentHash, Sensitive: r.Sensitive})
	if r.Flattened {
		attrs = append(attrs, Attr{Name: "aggregation", Value: "flattened: the source's current rules, without its aggregationRule"})
	}
	attrs = append(attrs, Attr{Name: "labels", Value: joinMap(r.Labels)})
	return attrs
}

// Source names the source object: <cluster>/<namespace>/<name>, or <cluster>/<name> for cluster-scoped kinds.
func (r Replica) Source() string {
	return r.SourceCluster + "/" + objectPath(r.SourceNamespace, r.Name)
}

// Record is how the state remembers the copy.
func (r Replica) Record() state.ReplicaRecord {
	return state.ReplicaRecord{Cluster: r.Cluster, KubeContext: r.KubeContext, Kind: r.ObjectKind, Namespace: r.Namespace, Name: r.Name}
}

func objectPath(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// ReplicaInput is what the replica part of Compute needs: every replicate block as observed, and the
// copies the state records that no block wants any more.
type ReplicaInput struct {
	Sources []ReplicaSource
	// Orphans are the observed recorded copies no replicate block wants (by address; nil: gone). A copy
	// that could not be observed has no entry and is left alone.
	Orphans map[string]*kubeobj.Object
	// Previous are, for wanted addresses whose record names another object than the block now does (its
	// namespace, name or kind changed), that recorded object as observed (nil: gone).
	Previous map[string]*kubeobj.Object
}

// ReplicaSource is one replicate block: its source and its targets.
type ReplicaSource struct {
	Replicate   string
	Cluster     string
	KubeContext string
	Kind        string
	Namespace   string
	Name        string
	// Object is the source as observed; nil when it does not exist or could not be read (Missing says
	// which): the copies are then left as they are, a CA must not vanish because its source did.
	Object  *kubeobj.Object
	Missing bool
	Targets []ReplicaTarget
}

// ReplicaTarget is one cluster that gets a copy.
type ReplicaTarget struct {
	Cluster     string
	KubeContext string
	Namespace   string
	// Copy is the object of the copy's kind and name observed there; nil when there is none.
	Copy *kubeobj.Object
}

// Annotations never copied: the server's and kubectl's bookkeeping.
var strippedAnnotations = []string{"kubectl.kubernetes.io/last-applied-configuration"}

// DesiredCopy is the copy of source in a target namespace: the source's labels, its annotations except
// kubectl's last-applied configuration (and, on Secrets, cert-manager's, so that cert-manager in the target
// does not take the copy for its own), and its content; an aggregated ClusterRole as its current rules,
// flattened. It carries where it comes from and the hash of its content. Ownership labels are added when
// it is written (kubeobj.Own). Server-set fields (uid, resourceVersion, ownerReferences, finalizers,
// status, managedFields) are not part of a kubeobj.Object at all.
func DesiredCopy(source kubeobj.Object, sourceCluster, namespace string) (copy kubeobj.Object, flattened bool) {
	copy = kubeobj.Object{APIVersion: source.APIVersion, Kind: source.Kind, Namespace: namespace, Name: source.Name,
		Labels: maps.Clone(source.Labels), Content: maps.Clone(source.Content)}
	if source.Kind == "ClusterRole" {
		if _, aggregated := copy.Content["aggregationRule"]; aggregated {
			delete(copy.Content, "aggregationRule")
			flattened = true
		}
	}
	copy.Annotations = map[string]string{}
	for k, v := range source.Annotations {
		if slices.Contains(strippedAnnotations, k) || (source.Kind == "Secret" && strings.HasPrefix(k, "cert-manager.io/")) {
			continue
		}
		copy.Annotations[k] = v
	}
	copy.Annotations[AnnotationReplicatedFrom] = sourceCluster + "/" + objectPath(source.Namespace, source.Name)
	copy.Annotations[AnnotationContentHash] = "sha256:" + kubeobj.ContentHash(copy)
	return copy, flattened
}

// replicaPlanner plans the copies of one Compute.
type replicaPlanner struct {
	c  *computer
	in *ReplicaInput
}

// replicas plans every copy (see Compute's table):
//
//	copy in target            | plan
//	--------------------------+---------------------------------------------------------------
//	none                      | + create
//	meshd's, same content     | nothing
//	meshd's, other content    | ~ update (-/+ replace when the API refuses it in place)
//	not meshd's               | conflict (> adopt, then updated, with adopt = true)
//	recorded, no longer wanted| - delete (the source is never touched)
//
// A block whose source is missing keeps its copies as they are.
func (c *computer) replicas() {
	if c.in.Replicas == nil {
		return
	}
	rp := &replicaPlanner{c: c, in: c.in.Replicas}
	wanted := map[string]bool{}
	wantedObjects := map[state.ReplicaRecord]bool{} // without kube context: the object itself
	if !c.in.Destroy {
		for _, src := range rp.in.Sources {
			for _, t := range src.Targets {
				wanted[ReplicaAddress(src.Replicate, t.Cluster)] = true
				wantedObjects[state.ReplicaRecord{Cluster: t.Cluster, Kind: src.Kind, Namespace: t.Namespace, Name: src.Name}] = true
			}
			rp.source(src)
		}
	}
	for _, addr := range slices.Sorted(maps.Keys(c.in.State.Replicas)) {
		if wanted[addr] {
			continue
		}
		obs, observed := rp.in.Orphans[addr]
		rec := c.in.State.Replicas[addr]
		rec.KubeContext = ""
		switch {
		case !observed:
		case wantedObjects[rec]:
			// A renamed block: its copies are another address's now (which records them); not deleted.
			c.plan.ForgetReplicas = append(c.plan.ForgetReplicas, addr)
		case obs == nil:
			c.plan.ForgetReplicas = append(c.plan.ForgetReplicas, addr)
		case !model.OwnedBy(obs.Labels, c.in.Mesh):
			// Someone else's object stands where meshd's copy was: not meshd's to delete.
			c.plan.ForgetReplicas = append(c.plan.ForgetReplicas, addr)
		default:
			rec := c.in.State.Replicas[addr]
			reason := "no longer replicated there"
			if c.in.Destroy {
				reason = "destroy"
			}
			c.add(Change{Action: Delete, Address: addr, Kind: KindReplica, Reason: reason,
				Before: observedReplica(addr, rec, *obs)})
		}
	}
}

// observedReplica describes an observed copy for the plan.
func observedReplica(addr string, rec state.ReplicaRecord, obs kubeobj.Object) Replica {
	replicate, _ := addressArgs(KindReplica, addr)
	r := Replica{Replicate: replicate, Cluster: rec.Cluster, KubeContext: rec.KubeContext, APIVersion: obs.APIVersion,
		ObjectKind: obs.Kind, Namespace: obs.Namespace, Name: obs.Name, UID: obs.UID}
	describe(&r, obs)
	if from, ok := obs.Annotations[AnnotationReplicatedFrom]; ok {
		r.SourceCluster, _, _ = strings.Cut(from, "/")
	}
	return r
}

// describe fills in what the plan shows of an object's content.
func describe(r *Replica, o kubeobj.Object) {
	k, _ := kubeobj.Lookup(o.Kind)
	r.Sensitive = k.Sensitive
	r.ContentHash = kubeobj.ContentHash(o)
	r.Labels = o.Labels
	// An observed copy may carry kubectl's last-applied configuration (someone applied it, or the object
	// meshd adopts was applied): it holds the whole object, a Secret's data included, so it never reaches
	// the plan.
	r.Annotations = maps.Clone(o.Annotations)
	for _, k := range strippedAnnotations {
		delete(r.Annotations, k)
	}
	if data, ok := o.Content["data"].(map[string]any); ok {
		r.Keys = slices.Sorted(maps.Keys(data))
	}
	if rules, ok := o.Content["rules"].([]any); ok {
		r.Detail = fmt.Sprintf("%d rule(s)", len(rules))
	}
	if subjects, ok := o.Content["subjects"].([]any); ok {
		r.Detail = fmt.Sprintf("%d subject(s)", len(subjects))
	}
}

func (rp *replicaPlanner) source(src ReplicaSource) {
	if src.Object == nil {
		if src.Missing {
			rp.c.plan.Warnings = append(rp.c.plan.Warnings, fmt.Sprintf(
				"The source of replicate %q, %s %s in cluster %s, does not exist: its copies are kept as they are until it is back.",
				src.Replicate, src.Kind, objectPath(src.Namespace, src.Name), src.Cluster))
		}
		return
	}
	for _, t := range src.Targets {
		rp.target(src, t)
	}
}

func (rp *replicaPlanner) target(src ReplicaSource, t ReplicaTarget) {
	c := rp.c
	addr := ReplicaAddress(src.Replicate, t.Cluster)
	want, flattened := DesiredCopy(*src.Object, src.Cluster, t.Namespace)
	after := Replica{Replicate: src.Replicate, Cluster: t.Cluster, KubeContext: t.KubeContext, APIVersion: want.APIVersion,
		ObjectKind: want.Kind, Namespace: t.Namespace, Name: want.Name,
		SourceCluster: src.Cluster, SourceContext: src.KubeContext, SourceNamespace: src.Namespace, Flattened: flattened}
	describe(&after, want)
	after.Labels = kubeobj.Own(want, c.in.Mesh).Labels
	reasonSuffix := ""
	if flattened {
		reasonSuffix = " (an aggregated ClusterRole is copied flattened: the target has no roles to aggregate)"
	}

	if t.Copy == nil {
		if prev := rp.in.Previous[addr]; prev != nil && model.OwnedBy(prev.Labels, c.in.Mesh) {
			// The block now names another object: the copy moves, the old one goes.
			before := observedReplica(addr, c.in.State.Replicas[addr], *prev)
			c.add(Change{Action: Replace, Address: addr, Kind: KindReplica, Before: before, After: after,
				Reason: fmt.Sprintf("the copy moves from %s %s to %s %s", before.ObjectKind, objectPath(before.Namespace, before.Name),
					after.ObjectKind, objectPath(after.Namespace, after.Name)) + reasonSuffix})
			return
		}
		reason := "copy missing"
		if rec, recorded := c.in.State.Replicas[addr]; recorded && rec == after.Record() {
			reason = "copy was deleted outside meshd"
		}
		c.add(Change{Action: Create, Address: addr, Kind: KindReplica, Reason: reason + reasonSuffix, After: after})
		return
	}
	before := observedReplica(addr, after.Record(), *t.Copy)
	before.SourceCluster, before.SourceContext, before.SourceNamespace = after.SourceCluster, after.SourceContext, after.SourceNamespace
	after.UID = t.Copy.UID

	owned := kubeobj.Own(want, c.in.Mesh)
	if !model.OwnedBy(t.Copy.Labels, c.in.Mesh) {
		if c.in.Adopt {
			after.Adopting = true
			action, reason := Adopt, "exists, not owned: adopt (label as meshd's) and make it the source's copy"
			if kubeobj.NeedsReplace(owned, *t.Copy) {
				action, reason = Replace, "exists, not owned: adopt by replacing it with the source's copy (its "+
					strings.Join(contentDiffs(kubeobj.DiffCopy(owned, *t.Copy)), ", ")+" cannot change in place)"
			}
			c.add(Change{Action: action, Address: addr, Kind: KindReplica, Before: before, After: after, Reason: reason + reasonSuffix})
			return
		}
		c.plan.Conflicts = append(c.plan.Conflicts, Conflict{Address: addr,
			Summary: fmt.Sprintf("Cluster %s already has a %s %s that meshd did not create", t.Cluster, want.Kind, objectPath(t.Namespace, want.Name)),
			Detail: fmt.Sprintf("meshd wants to copy %s there for replicate %q, but the object there does not carry meshd's labels (%s=%s, %s=%s), so it is left alone. "+
				"Delete it yourself, or set adopt = true in the mesh block to let meshd take it over.",
				after.Source(), src.Replicate, model.LabelManagedBy, model.ManagedByMeshd, model.LabelMesh, c.in.Mesh)})
		return
	}
	if rec, recorded := c.in.State.Replicas[addr]; !recorded || rec != after.Record() {
		// meshd's copy, not (or otherwise) recorded at this address: a renamed block, an apply interrupted
		// before the state was written. Recording it makes a later removal of the block delete it.
		if c.plan.RecordReplicas == nil {
			c.plan.RecordReplicas = map[string]state.ReplicaRecord{}
		}
		c.plan.RecordReplicas[addr] = after.Record()
	}
	diff := kubeobj.DiffCopy(owned, *t.Copy)
	if len(diff) == 0 {
		return
	}
	action, reason := Update, "the copy's "+strings.Join(diff, ", ")+" differ from the source"
	if kubeobj.NeedsReplace(owned, *t.Copy) {
		action, reason = Replace, "the copy's "+strings.Join(contentDiffs(diff), ", ")+" cannot change in place"
	}
	c.add(Change{Action: action, Address: addr, Kind: KindReplica, Before: before, After: after, Reason: reason + reasonSuffix})
}

// contentDiffs are the content fields of a Diff: a replacement's reason names what cannot change in place,
// and labels and annotations always can.
func contentDiffs(diff []string) []string {
	return slices.DeleteFunc(slices.Clone(diff), func(d string) bool {
		return strings.HasPrefix(d, "labels[") || strings.HasPrefix(d, "annotations[")
	})
}

package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/providers/kube"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

func init() {
	registerObserver(observer{name: "replicas", order: 30, kinds: []plan.Kind{plan.KindReplica},
		on: func(o *observation) bool { return o.e.replicasOn(o.m, o.st) },
		observe: func(o *observation, ctx context.Context) (hcl.Diagnostics, error) {
			var diags hcl.Diagnostics
			o.in.Replicas, diags = o.e.observeReplicas(ctx, o.v, o.m, o.st, o.destroy)
			return diags, nil
		}})
}

// replicasOn reports whether the plan needs the replica part: replicate blocks to enforce, or copies the
// state records (a block removed, a destroy).
func (e *Engine) replicasOn(m *spec.Mesh, st *state.State) bool {
	return e.Kube != nil && (len(m.Replicates) > 0 || len(st.Replicas) > 0)
}

// observeReplicas reads, in one batch, every replicate block's source, its copies, the namespaces the
// copies go in, and the recorded copies no block wants any more. What it finds wrong comes back as
// diagnostics at the block: a target namespace that does not exist is an error (nothing may be created
// there); a missing source a warning (its copies are kept); a cluster that cannot be read an error. With
// PartialDNS (meshd) the errors are warnings and only the copies concerned are left alone, so that one
// block's problem does not hold back the correction of everything else.
func (e *Engine) observeReplicas(ctx context.Context, v *passView, m *spec.Mesh, st *state.State, destroy bool) (*plan.ReplicaInput, hcl.Diagnostics) {
	contextOf := func(cluster string) string { return kubeContextOf(m, cluster) }
	var queries []kube.ObjectQuery
	type block struct {
		r      *spec.Replicate
		source kube.ObjectQuery
		copies []kube.ObjectQuery
		nss    []kube.ObjectQuery
	}
	var blocks []block
	if !destroy {
		for _, r := range m.Replicates {
			b := block{r: r, source: kube.ObjectQuery{Cluster: r.FromCluster, KubeContext: contextOf(r.FromCluster),
				Kind: r.FromKind, Namespace: r.FromNamespace, Name: r.FromName}}
			queries = append(queries, b.source)
			for _, t := range r.Targets(m) {
				cp := kube.ObjectQuery{Cluster: t, KubeContext: contextOf(t), Kind: r.FromKind, Namespace: r.TargetNamespace(), Name: r.FromName}
				b.copies = append(b.copies, cp)
				queries = append(queries, cp)
				if r.Namespaced() {
					ns := kube.ObjectQuery{Cluster: t, KubeContext: cp.KubeContext, Kind: "Namespace", Name: r.TargetNamespace()}
					b.nss = append(b.nss, ns)
					queries = append(queries, ns)
				}
			}
			blocks = append(blocks, b)
		}
	}
	wanted := map[string]kube.ObjectQuery{} // the copy each wanted address names now
	for _, b := range blocks {
		for _, cp := range b.copies {
			wanted[plan.ReplicaAddress(b.r.Name, cp.Cluster)] = cp
		}
	}
	// Recorded copies: those no block wants (orphans), and those of a wanted address that the block now puts
	// elsewhere (another namespace, name or kind: previous), which must be found to be deleted.
	orphans, previous := map[string]kube.ObjectQuery{}, map[string]kube.ObjectQuery{}
	for _, addr := range slices.Sorted(maps.Keys(st.Replicas)) {
		rec := st.Replicas[addr]
		q := kube.ObjectQuery{Cluster: rec.Cluster, KubeContext: rec.KubeContext, Kind: rec.Kind, Namespace: rec.Namespace, Name: rec.Name}
		switch cur, ok := wanted[addr]; {
		case !ok:
			orphans[addr] = q
		case cur != q:
			previous[addr] = q
		default:
			continue
		}
		queries = append(queries, q)
	}
	results := e.observeObjects(ctx, v, queries)

	in := &plan.ReplicaInput{Orphans: map[string]*kubeobj.Object{}, Previous: map[string]*kubeobj.Object{}}
	var diags hcl.Diagnostics
	unreadable := func(r *spec.Replicate, q kube.ObjectQuery, err error) {
		sev := hcl.DiagError
		if e.PartialDNS {
			sev = hcl.DiagWarning
		}
		rg := r.DeclRange
		diags = append(diags, &hcl.Diagnostic{Severity: sev, Summary: "Cannot read a replicated object",
			Detail: fmt.Sprintf("Replicate %q: reading %s %s in cluster %q: %v. Its copy there is left as it is.",
				r.Name, q.Kind, objectPath(q.Namespace, q.Name), q.Cluster, err), Subject: &rg})
	}
	for _, b := range blocks {
		r := b.r
		src := plan.ReplicaSource{Replicate: r.Name, Cluster: r.FromCluster, KubeContext: b.source.KubeContext,
			Kind: r.FromKind, Namespace: r.FromNamespace, Name: r.FromName}
		switch res := results[b.source]; {
		case res.Err != nil:
			unreadable(r, b.source, res.Err)
		case res.Object == nil:
			src.Missing = true
			rg := r.FromDeclRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Replicated object missing",
				Detail: fmt.Sprintf("Replicate %q copies %s %s from cluster %q, which has no such object. Its copies are kept as they are (a CA must not vanish because its source did) until it is back.",
					r.Name, r.FromKind, objectPath(r.FromNamespace, r.FromName), r.FromCluster), Subject: &rg})
		default:
			src.Object = res.Object
		}
		for i, cp := range b.copies {
			if r.Namespaced() {
				ns := results[b.nss[i]]
				if ns.Err == nil && ns.Object == nil {
					rg := r.AttrRange("namespace")
					if _, set := r.Attrs["namespace"]; !set {
						rg = r.AttrRange("from.namespace")
					}
					// meshd (PartialDNS) skips this copy and corrects the rest; meshctl refuses the plan.
					sev := hcl.DiagError
					if e.PartialDNS {
						sev = hcl.DiagWarning
					}
					diags = append(diags, &hcl.Diagnostic{Severity: sev, Summary: "Target namespace missing",
						Detail: fmt.Sprintf("Replicate %q copies %s %s into namespace %q of cluster %q, which has no such namespace. meshd does not create namespaces: create it, or set namespace to one that exists.",
							r.Name, r.FromKind, r.FromName, cp.Namespace, cp.Cluster), Subject: &rg})
					continue
				}
			}
			res := results[cp]
			if res.Err != nil {
				unreadable(r, cp, res.Err)
				continue
			}
			src.Targets = append(src.Targets, plan.ReplicaTarget{Cluster: cp.Cluster, KubeContext: cp.KubeContext,
				Namespace: cp.Namespace, Copy: res.Object})
		}
		in.Sources = append(in.Sources, src)
	}
	// A recorded copy that cannot be read is left alone (and its record kept) until it can.
	for addr, q := range orphans {
		if res := results[q]; res.Err == nil {
			in.Orphans[addr] = res.Object
		}
	}
	for addr, q := range previous {
		if res := results[q]; res.Err == nil {
			in.Previous[addr] = res.Object
		}
	}
	return in, diags
}

// kubeContextOf is the kube context of a member of the spec ("" for a cluster that is not one).
func kubeContextOf(m *spec.Mesh, cluster string) string {
	if c := m.Cluster(cluster); c != nil {
		return KubeContext(c)
	}
	return ""
}

// observeObjects reads the queried objects, reusing the clusters the view lets it; failed reads are not
// kept.
func (e *Engine) observeObjects(ctx context.Context, v *passView, queries []kube.ObjectQuery) map[kube.ObjectQuery]kube.ObjectResult {
	id := func(q kube.ObjectQuery) string {
		return fmt.Sprintf("%q", []string{q.KubeContext, q.Kind, q.Namespace, q.Name})
	}
	byID := kubeParts(v, "object", queries, func(q kube.ObjectQuery) string { return q.Cluster }, id,
		func(todo []kube.ObjectQuery) map[string]kube.ObjectResult {
			out := map[string]kube.ObjectResult{}
			for q, r := range e.Kube.ObserveObjects(ctx, todo) {
				out[id(q)] = r
			}
			return out
		}, func(r kube.ObjectResult) bool { return r.Err == nil })
	out := make(map[kube.ObjectQuery]kube.ObjectResult, len(queries))
	for _, q := range queries {
		if r, ok := byID[id(q)]; ok {
			out[q] = r
		}
	}
	return out
}

func objectPath(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

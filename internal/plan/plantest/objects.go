package plantest

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
)

// The replicated objects of the world: objects of any kind in the member clusters (World.Objects), the
// replicate blocks that copy them (World.Replicates), and an executor for replica changes that writes and
// deletes copies as the kube provider's does (it reads the source again and refuses one changed since the
// plan).

// Replicate is one replicate block: the source object in Cluster, copied into Targets (same namespace).
type Replicate struct {
	Name                 string
	Cluster              string
	Kind, Namespace, Obj string
	Targets              []string
}

func objectKey(kind, namespace, name string) string { return kind + " " + namespace + "/" + name }

// PutObject puts o into cluster, as kubectl apply does: it gets a new UID.
func (w *World) PutObject(cluster string, o kubeobj.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.putObject(cluster, o)
}

func (w *World) putObject(cluster string, o kubeobj.Object) {
	if w.Objects == nil {
		w.Objects = map[string]map[string]kubeobj.Object{}
	}
	if w.Objects[cluster] == nil {
		w.Objects[cluster] = map[string]kubeobj.Object{}
	}
	w.uids++
	o.UID = fmt.Sprintf("uid-%d", w.uids)
	w.Objects[cluster][objectKey(o.Kind, o.Namespace, o.Name)] = o
}

// Object returns an object of cluster, or nil.
func (w *World) Object(cluster, kind, namespace, name string) *kubeobj.Object {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.object(cluster, kind, namespace, name)
}

func (w *World) object(cluster, kind, namespace, name string) *kubeobj.Object {
	o, ok := w.Objects[cluster][objectKey(kind, namespace, name)]
	if !ok {
		return nil
	}
	return &o
}

// writeObject writes o into cluster as kubeobj.Client's Create and Update do: a new object gets a new
// UID; an existing one is refused unless meshd's, and keeps its UID and its other labels and annotations.
func (w *World) writeObject(cluster string, o kubeobj.Object) error {
	cur := w.object(cluster, o.Kind, o.Namespace, o.Name)
	if cur == nil {
		w.putObject(cluster, o)
		return nil
	}
	if !model.OwnedBy(cur.Labels, w.Mesh) {
		return fmt.Errorf("cluster %s: %s: %w", cluster, objectKey(o.Kind, o.Namespace, o.Name), kubeobj.ErrNotOwned)
	}
	o.UID = cur.UID
	o.Labels = merged(cur.Labels, o.Labels)
	o.Annotations = merged(cur.Annotations, o.Annotations)
	w.Objects[cluster][objectKey(o.Kind, o.Namespace, o.Name)] = o
	return nil
}

func merged(theirs, ours map[string]string) map[string]string {
	out := maps.Clone(theirs)
	if out == nil && len(ours) > 0 {
		out = map[string]string{}
	}
	maps.Copy(out, ours)
	return out
}

// deleteObserved deletes the object of cluster that was observed with uid, as kubeobj.Client.Delete
// does: one already gone is no error; one replaced since (another UID) or not meshd's is refused.
func (w *World) deleteObserved(cluster, kind, namespace, name, uid string) error {
	cur := w.object(cluster, kind, namespace, name)
	switch {
	case cur == nil:
		return nil
	case cur.UID != uid:
		return fmt.Errorf("cluster %s: %s: %w: UID %s, observed %s", cluster, objectKey(kind, namespace, name), kubeobj.ErrReplaced, cur.UID, uid)
	case !model.OwnedBy(cur.Labels, w.Mesh):
		return fmt.Errorf("cluster %s: %s: %w", cluster, objectKey(kind, namespace, name), kubeobj.ErrNotOwned)
	}
	delete(w.Objects[cluster], objectKey(kind, namespace, name))
	return nil
}

// DeleteObject deletes an object of cluster, as kubectl delete does.
func (w *World) DeleteObject(cluster, kind, namespace, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.Objects[cluster], objectKey(kind, namespace, name))
}

// ReplicaInput observes the replicate blocks and the recorded copies as the engine does (destroy: no block
// is wanted, every recorded copy is an orphan); nil when there is neither a block nor a recorded copy.
func (w *World) ReplicaInput(st *state.State, destroy bool) *plan.ReplicaInput {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.Replicates) == 0 && len(st.Replicas) == 0 {
		return nil
	}
	in := &plan.ReplicaInput{Orphans: map[string]*kubeobj.Object{}}
	wanted := map[string]bool{}
	if !destroy {
		for _, r := range w.Replicates {
			src := plan.ReplicaSource{Replicate: r.Name, Cluster: r.Cluster, KubeContext: KubeContext(r.Cluster), Kind: r.Kind,
				Namespace: r.Namespace, Name: r.Obj, Object: w.object(r.Cluster, r.Kind, r.Namespace, r.Obj)}
			src.Missing = src.Object == nil
			for _, t := range r.Targets {
				src.Targets = append(src.Targets, plan.ReplicaTarget{Cluster: t, KubeContext: KubeContext(t), Namespace: r.Namespace,
					Copy: w.object(t, r.Kind, r.Namespace, r.Obj)})
				wanted[plan.ReplicaAddress(r.Name, t)] = true
			}
			in.Sources = append(in.Sources, src)
		}
	}
	for _, addr := range slices.Sorted(maps.Keys(st.Replicas)) {
		if !wanted[addr] {
			rec := st.Replicas[addr]
			in.Orphans[addr] = w.object(rec.Cluster, rec.Kind, rec.Namespace, rec.Name)
		}
	}
	return in
}

// KubeContext is the kube context the world's members have: "ctx-<cluster>".
func KubeContext(cluster string) string { return "ctx-" + cluster }

type replicaExecutor struct{ w *World }

func init() {
	executors.Register(func(w *World) apply.Executor { return replicaExecutor{w} }, plan.KindReplica)
}

func (e replicaExecutor) Execute(_ context.Context, ch plan.Change, _ apply.Known) (apply.Outcome, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch.Action == plan.Delete {
		r := ch.Before.(plan.Replica)
		if o := w.object(r.Cluster, r.ObjectKind, r.Namespace, r.Name); o != nil && !model.OwnedBy(o.Labels, w.Mesh) {
			return apply.Outcome{}, fmt.Errorf("%s: %s is not meshd's: left alone", ch.Address, objectKey(r.ObjectKind, r.Namespace, r.Name))
		}
		delete(w.Objects[r.Cluster], objectKey(r.ObjectKind, r.Namespace, r.Name))
		return apply.Outcome{Record: func(st *state.State) { st.RemoveReplica(ch.Address) }}, nil
	}
	r := ch.After.(plan.Replica)
	src := w.object(r.SourceCluster, r.ObjectKind, r.SourceNamespace, r.Name)
	if src == nil {
		return apply.Outcome{}, fmt.Errorf("%s: source gone", ch.Address)
	}
	want, _ := plan.DesiredCopy(*src, r.SourceCluster, r.Namespace)
	if got := kubeobj.ContentHash(want); got != r.ContentHash {
		return apply.Outcome{}, fmt.Errorf("%s: the source changed since the plan; plan again", ch.Address)
	}
	w.putObject(r.Cluster, kubeobj.Own(want, w.Mesh))
	rec := r.Record()
	return apply.Outcome{Record: func(st *state.State) { st.SetReplica(ch.Address, rec) }}, nil
}

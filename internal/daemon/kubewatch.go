package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	watchapi "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
)

// WatchedCluster is a member cluster whose meshd-managed objects are watched.
type WatchedCluster struct {
	Name   string
	Client kubeclient.Interface
	// Own, when set, recognises meshd's own writes by the resourceVersion they returned (meshd sets it,
	// filled by its clients' transport). Without it they are told by managedFields, whose times have a
	// resolution of one second: a write of another in the same second as meshd's looks like meshd's.
	Own *OwnWrites
}

// WatchKubernetes starts informers on the objects meshd manages in each cluster — what the registered
// kinds watch (plan.WatchesOf): the kube-system/coredns ConfigMap and meshd's own Services in every member,
// and the spec's replicated objects and their copies — and calls trigger when one changes after the initial
// listing (and not by meshd's own write), so a reverted Corefile, a renewed CA or an edited copy is corrected
// without waiting for the AWS interval. Only those objects are listed and watched (field and label
// selectors), which keeps the watch cheap on large clusters. Every watch goes through the dynamic client, so
// a kind of any API group is watched the same way. It returns once the caches have synced (or failed to);
// the informers stop when ctx is done.
func WatchKubernetes(ctx context.Context, m *spec.Mesh, clusters []WatchedCluster, trigger func(KubeEvent)) error {
	var informers []cache.SharedIndexInformer
	for _, c := range clusters {
		for _, w := range plan.WatchesOf(m, c.Name) {
			inf, err := watch(ctx, c, w, trigger)
			if err != nil {
				return err
			}
			go inf.Run(ctx.Done())
			informers = append(informers, inf)
		}
	}
	// Wait for every cluster at once: one unreachable cluster must not keep the others unwatched.
	errs := make(chan error, len(informers))
	for _, inf := range informers {
		go func() {
			if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
				errs <- errors.New("a watch did not sync")
				return
			}
			errs <- nil
		}()
	}
	var first error
	for range informers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// watch makes the informer for one watch in one cluster.
func watch(ctx context.Context, c WatchedCluster, w plan.Watch, trigger func(KubeEvent)) (cache.SharedIndexInformer, error) {
	gv, err := schema.ParseGroupVersion(w.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("watch of %s: %w", w.Resource, err)
	}
	res := c.Client.Resource(gv.WithResource(w.Resource))
	var client dynamic.ResourceInterface = res
	if w.Namespace != "" {
		client = res.Namespace(w.Namespace)
	}
	selectors := func(o *metav1.ListOptions) {
		if w.Name != "" {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", w.Name).String()
		}
		if w.OwnedOnly {
			o.LabelSelector = model.LabelManagedBy + "=" + model.ManagedByMeshd
		}
	}
	lw := &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			selectors(&o)
			return client.List(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watchapi.Interface, error) {
			selectors(&o)
			return client.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, cache.Indexers{})
	_, err = inf.AddEventHandler(handler(c.Own, func(obj any) {
		trigger(KubeEvent{Cluster: c.Name, Service: w.APIVersion == "v1" && w.Resource == "services",
			Why: fmt.Sprintf("kubernetes: %s %s in %s changed", kindOf(obj), objName(obj), c.Name)})
	}, updateMatters(w, c.Own)))
	return inf, err
}

// updateMatters says which updates of a watched object trigger a pass: not a resync, not a change of
// annotations meshd does not set (when the watch says so), and not meshd's own write: by the
// resourceVersion its write returned (own), else by managedFields.
func updateMatters(w plan.Watch, own *OwnWrites) func(old, new any) bool {
	return func(old, new any) bool {
		o, n := old.(metav1.Object), new.(metav1.Object)
		if o.GetResourceVersion() == n.GetResourceVersion() { // a resync: nothing changed
			return false
		}
		if w.IgnoreForeignAnnotations && onlyForeignAnnotations(old, new) {
			return false
		}
		if own != nil {
			return !own.Wrote(n)
		}
		return !changedByMeshd(o, n)
	}
}

// onlyForeignAnnotations reports whether old and new differ in annotations meshd does not set
// (plan.MeshdAnnotation) and in what every write changes (resourceVersion, managedFields), and in
// nothing else.
func onlyForeignAnnotations(old, new any) bool {
	o, ok1 := old.(*unstructured.Unstructured)
	n, ok2 := new.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return false
	}
	oa, na := o.GetAnnotations(), n.GetAnnotations()
	meshds := func(u *unstructured.Unstructured) map[string]any {
		c := u.DeepCopy()
		unstructured.RemoveNestedField(c.Object, "metadata", "managedFields")
		unstructured.RemoveNestedField(c.Object, "metadata", "resourceVersion")
		kept := map[string]string{}
		for k, v := range c.GetAnnotations() {
			if plan.MeshdAnnotation(k, oa) || plan.MeshdAnnotation(k, na) {
				kept[k] = v
			}
		}
		c.SetAnnotations(kept)
		return c.Object
	}
	return equality.Semantic.DeepEqual(meshds(o), meshds(n))
}

// kindOf names an object's kind for the trigger message ("ConfigMap").
func kindOf(obj any) string {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if u, ok := obj.(*unstructured.Unstructured); ok && u.GetKind() != "" {
		return u.GetKind()
	}
	return "object"
}

// writtenByMeshd reports whether meshd made the object's latest change (by its managedFields), so that meshd's
// own writes do not trigger passes: each would cost a pass and push the minimum interval forward, delaying
// the correction of the next real drift.
//
// managedFields times have a resolution of one second: when another manager wrote in the same second as meshd,
// the change is not taken as meshd's (a spare pass is cheap; a missed revert waits for the interval).
func writtenByMeshd(obj metav1.Object) bool {
	var latest metav1.Time
	meshdLatest, othersLatest := false, false
	for _, f := range obj.GetManagedFields() {
		if f.Time == nil {
			continue
		}
		// Updates (creates, patches) and server-side applies (a load_balancer's annotations) alike.
		mine := f.Manager == model.FieldManager
		switch {
		case f.Time.After(latest.Time):
			latest, meshdLatest, othersLatest = *f.Time, mine, !mine
		case f.Time.Equal(&latest):
			meshdLatest = meshdLatest || mine
			othersLatest = othersLatest || !mine
		}
	}
	return meshdLatest && !othersLatest
}

// changedByMeshd reports whether the change from old to new was meshd's write, by what changed in
// managedFields: meshd's own entry is new or newer, and no other manager's entry is. Looking at new alone
// (writtenByMeshd) is not enough for an update: a user who only removes a field meshd owns (meshd's
// annotation) leaves no entry of their own, since the API server drops entries with no fields, and meshd's
// entry, shrunk but with its old time, is then still the latest.
//
// Times have a resolution of one second, so two writes of meshd in one second look like someone else's
// change to meshd's fields: a spare pass, never a missed revert.
func changedByMeshd(old, new metav1.Object) bool {
	key := func(f metav1.ManagedFieldsEntry) string {
		return f.Manager + "\x00" + string(f.Operation) + "\x00" + f.Subresource
	}
	before := map[string]metav1.ManagedFieldsEntry{}
	for _, f := range old.GetManagedFields() {
		before[key(f)] = f
	}
	meshd := false
	for _, f := range new.GetManagedFields() {
		o, had := before[key(f)]
		delete(before, key(f))
		sameTime := had && o.Time != nil && f.Time != nil && o.Time.Equal(f.Time)
		if sameTime && (o.FieldsV1 == nil) == (f.FieldsV1 == nil) && (f.FieldsV1 == nil || bytes.Equal(o.FieldsV1.Raw, f.FieldsV1.Raw)) {
			continue // untouched
		}
		if f.Manager != model.FieldManager || sameTime {
			return false // another manager wrote, or took or removed some of meshd's fields
		}
		meshd = true
	}
	for _, f := range before {
		if f.Manager != model.FieldManager {
			return false // another manager's fields were all taken: not by meshd's write alone
		}
	}
	return meshd
}

// handler triggers on adds and deletes after the initial listing, and on updates that matter; an add is
// not one when meshd made it (a copy it created): by the resourceVersion its create returned (own), else by
// managedFields.
func handler(own *OwnWrites, fire func(obj any), changed func(old, new any) bool) cache.ResourceEventHandler {
	mine := writtenByMeshd
	if own != nil {
		mine = own.Wrote
	}
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if o, ok := obj.(metav1.Object); !initial && !(ok && mine(o)) {
				fire(obj)
			}
		},
		UpdateFunc: func(old, new any) {
			if changed(old, new) {
				fire(new)
			}
		},
		DeleteFunc: fire,
	}
}

func objName(obj any) string {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d.Key
	}
	if m, ok := obj.(metav1.Object); ok {
		return m.GetNamespace() + "/" + m.GetName()
	}
	return "?"
}

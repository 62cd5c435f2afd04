package daemon

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/model"
)

// WatchedCluster is a member cluster whose meshd-managed objects are watched.
type WatchedCluster struct {
	Name   string
	Client kubeclient.Interface
}

// WatchKubernetes starts informers on the objects meshd manages in each cluster — the kube-system/coredns
// ConfigMap and meshd's own Services — and calls trigger when one changes after the initial listing, so a
// reverted Corefile is corrected without waiting for the AWS interval. Only those objects are listed and
// watched (field and label selectors), which keeps the watch cheap on large clusters. It returns once the
// caches have synced (or failed to); the informers stop when ctx is done.
func WatchKubernetes(ctx context.Context, clusters []WatchedCluster, trigger func(why string)) error {
	var informers []cache.SharedIndexInformer
	for _, c := range clusters {
		rest := c.Client.CoreV1().RESTClient()
		cms := cache.NewSharedIndexInformer(cache.NewFilteredListWatchFromClient(rest, "configmaps", metav1.NamespaceSystem,
			func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("metadata.name", "coredns").String()
			}), &corev1.ConfigMap{}, 0, cache.Indexers{})
		svcs := cache.NewSharedIndexInformer(cache.NewFilteredListWatchFromClient(rest, "services", metav1.NamespaceSystem,
			func(o *metav1.ListOptions) {
				o.LabelSelector = "app.kubernetes.io/managed-by=meshd"
			}), &corev1.Service{}, 0, cache.Indexers{})
		name := c.Name
		if _, err := cms.AddEventHandler(handler(func(obj any) {
			trigger(fmt.Sprintf("kubernetes: ConfigMap %s in %s changed", objName(obj), name))
		}, func(old, new any) bool {
			o, n := old.(*corev1.ConfigMap), new.(*corev1.ConfigMap)
			return o.Data["Corefile"] != n.Data["Corefile"] && !writtenByMeshd(n)
		})); err != nil {
			return err
		}
		if _, err := svcs.AddEventHandler(handler(func(obj any) {
			trigger(fmt.Sprintf("kubernetes: Service %s in %s changed", objName(obj), name))
		}, func(old, new any) bool {
			o, n := old.(*corev1.Service), new.(*corev1.Service)
			return o.ResourceVersion != n.ResourceVersion && !writtenByMeshd(n)
		})); err != nil {
			return err
		}
		go cms.Run(ctx.Done())
		go svcs.Run(ctx.Done())
		informers = append(informers, cms, svcs)
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
		mine := f.Manager == model.FieldManager && f.Operation == metav1.ManagedFieldsOperationUpdate
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

// handler triggers on adds and deletes after the initial listing, and on updates that matter.
func handler(fire func(obj any), changed func(old, new any) bool) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if !initial {
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

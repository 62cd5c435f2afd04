// Package kubeclient is the part of the Kubernetes API meshd uses: core/v1 (ConfigMaps, Services, Secrets,
// Events) and coordination/v1 (Leases) as typed clients, and any other resource by GroupVersionResource as
// unstructured objects (client-go's dynamic client), over one HTTP client and one rate limiter per cluster.
//
// It stands in for client-go's kubernetes.Clientset, which has a typed client for every API group: once a
// Clientset is stored in an interface, the linker keeps all of them (client-go's JSON codec calls reflect's
// MethodByName, which stops the linker from dropping unused methods), and an idle meshd keeps their code
// resident. The kinds meshd manages beyond core/v1 and coordination/v1 (RBAC, custom resources) go through
// Resource instead, whose code does not grow with the number of kinds.
//
// A *kubernetes.Clientset has no Resource method, so it does not satisfy Interface by itself: Join pairs it
// (or client-go's fake clientset) with a dynamic client, for tests and tools that have one.
package kubeclient

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// Typed is the typed part of Interface; a *kubernetes.Clientset satisfies it.
type Typed interface {
	CoreV1() corev1.CoreV1Interface
	CoordinationV1() coordinationv1.CoordinationV1Interface
}

// Interface is a client of one cluster.
type Interface interface {
	Typed
	// Resource reaches any resource, of any group (custom resources included), as unstructured objects.
	Resource(gvr schema.GroupVersionResource) dynamic.NamespaceableResourceInterface
}

type clients struct {
	core         corev1.CoreV1Interface
	coordination coordinationv1.CoordinationV1Interface
	dynamic      dynamic.Interface
}

func (c clients) CoreV1() corev1.CoreV1Interface { return c.core }

func (c clients) CoordinationV1() coordinationv1.CoordinationV1Interface { return c.coordination }

func (c clients) Resource(gvr schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	return c.dynamic.Resource(gvr)
}

// Join makes an Interface of a typed client (a *kubernetes.Clientset, or client-go's fake clientset in
// tests) and a dynamic client (dynamic.NewForConfig, or k8s.io/client-go/dynamic/fake).
func Join(typed Typed, dyn dynamic.Interface) Interface {
	return clients{core: typed.CoreV1(), coordination: typed.CoordinationV1(), dynamic: dyn}
}

// NewForConfig returns a client for cfg. As with kubernetes.NewForConfig, the API groups (and the dynamic
// client) share one HTTP client (one connection pool) and one QPS/Burst rate limiter.
func NewForConfig(cfg *rest.Config) (Interface, error) {
	shared := *cfg
	if shared.RateLimiter == nil && shared.QPS > 0 {
		if shared.Burst <= 0 {
			return nil, fmt.Errorf("burst is required to be greater than 0 when RateLimiter is not set and QPS is set to greater than 0")
		}
		shared.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(shared.QPS, shared.Burst)
	}
	httpClient, err := rest.HTTPClientFor(&shared)
	if err != nil {
		return nil, err
	}
	core, err := corev1.NewForConfigAndClient(&shared, httpClient)
	if err != nil {
		return nil, err
	}
	coordination, err := coordinationv1.NewForConfigAndClient(&shared, httpClient)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfigAndClient(&shared, httpClient)
	if err != nil {
		return nil, err
	}
	return clients{core: core, coordination: coordination, dynamic: dyn}, nil
}

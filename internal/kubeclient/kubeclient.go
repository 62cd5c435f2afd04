// Package kubeclient is the part of the Kubernetes API meshd uses: core/v1 (ConfigMaps, Services, Secrets,
// Events) and coordination/v1 (Leases), over one HTTP client and one rate limiter per cluster.
//
// It stands in for client-go's kubernetes.Clientset, which has a typed client for every API group: once a
// Clientset is stored in an interface, the linker keeps all of them (client-go's JSON codec calls reflect's
// MethodByName, which stops the linker from dropping unused methods), and an idle meshd keeps their code
// resident. *kubernetes.Clientset still satisfies Interface, for tests and tools that have one.
package kubeclient

import (
	"fmt"

	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// Interface is a client of one cluster.
type Interface interface {
	CoreV1() corev1.CoreV1Interface
	CoordinationV1() coordinationv1.CoordinationV1Interface
}

type clients struct {
	core         *corev1.CoreV1Client
	coordination *coordinationv1.CoordinationV1Client
}

func (c clients) CoreV1() corev1.CoreV1Interface { return c.core }

func (c clients) CoordinationV1() coordinationv1.CoordinationV1Interface { return c.coordination }

// NewForConfig returns a client for cfg. As with kubernetes.NewForConfig, the API groups share one HTTP
// client (one connection pool) and one QPS/Burst rate limiter.
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
	return clients{core: core, coordination: coordination}, nil
}

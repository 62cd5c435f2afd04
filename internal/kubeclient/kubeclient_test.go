package kubeclient_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/testenv"
)

// TestBothGroupsOverOneConnection writes through core/v1 and coordination/v1 against a real kube-apiserver
// and checks that the two groups share one connection pool, as a kubernetes.Clientset's groups do.
func TestBothGroupsOverOneConnection(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := testenv.StartAPIServer(t, etcd.ClientURL, "kubeclient")
	cfg := srv.RESTConfig()
	var dials atomic.Int32
	dialer := &net.Dialer{}
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dialer.DialContext(ctx, network, addr)
	}
	c, err := kubeclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "kubeclient-"}, Data: map[string]string{"k": "v"}}
		if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{GenerateName: "kubeclient-"}}
		if _, err := c.CoordinationV1().Leases("default").Create(ctx, lease, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cms, err := c.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leases, err := c.CoordinationV1().Leases("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(cms.Items, func(o corev1.ConfigMap) string { return o.Name }); n != 3 {
		t.Errorf("listed %d ConfigMaps written through the client, want 3", n)
	}
	if n := countPrefix(leases.Items, func(o coordinationv1.Lease) string { return o.Name }); n != 3 {
		t.Errorf("listed %d Leases written through the client, want 3", n)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("the two API groups opened %d connections, want 1 shared (HTTP/2)", n)
	}
}

func countPrefix[T any](items []T, name func(T) string) int {
	n := 0
	for _, it := range items {
		if strings.HasPrefix(name(it), "kubeclient-") {
			n++
		}
	}
	return n
}

// TestRejectsQPSWithoutBurst keeps kubernetes.NewForConfig's rule: a rate without a burst is a configuration
// error, not a limiter that never lets a request through.
func TestRejectsQPSWithoutBurst(t *testing.T) {
	cfg := &testenv.APIServer{Host: "https://127.0.0.1:1"}
	rc := cfg.RESTConfig()
	rc.QPS, rc.Burst = 5, 0
	if _, err := kubeclient.NewForConfig(rc); err == nil || !strings.Contains(err.Error(), "burst") {
		t.Fatalf("QPS 5 with burst 0: err %v, want a burst error", err)
	}
}

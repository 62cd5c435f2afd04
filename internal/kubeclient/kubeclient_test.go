package kubeclient_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/testenv"
)

// TestBothGroupsOverOneConnection writes through core/v1, coordination/v1 and the dynamic client against a
// real kube-apiserver and checks that they share one connection pool, as a kubernetes.Clientset's groups do.
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
		role := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
			"metadata": map[string]any{"generateName": "kubeclient-"},
			"rules":    []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"configmaps"}, "verbs": []any{"get"}}},
		}}
		if _, err := c.Resource(roles).Namespace("default").Create(ctx, role, metav1.CreateOptions{}); err != nil {
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
	rs, err := c.Resource(roles).Namespace("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(rs.Items, func(o unstructured.Unstructured) string { return o.GetName() }); n != 3 {
		t.Errorf("listed %d Roles written through the dynamic client, want 3", n)
	}
	if n := countPrefix(cms.Items, func(o corev1.ConfigMap) string { return o.Name }); n != 3 {
		t.Errorf("listed %d ConfigMaps written through the client, want 3", n)
	}
	if n := countPrefix(leases.Items, func(o coordinationv1.Lease) string { return o.Name }); n != 3 {
		t.Errorf("listed %d Leases written through the client, want 3", n)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("the API groups and the dynamic client opened %d connections, want 1 shared (HTTP/2)", n)
	}
}

var roles = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}

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

// TestSharedRateLimiter: the typed groups and the dynamic client take their requests from one QPS budget,
// as kubernetes.NewForConfig's groups do (one limiter per cluster, not one per group). With a burst of one
// and a rate of one request per 100 s, the first request (to a port nobody listens on) spends the budget,
// and each later one, from any group, is refused by the limiter at once instead of being sent.
func TestSharedRateLimiter(t *testing.T) {
	cfg := (&testenv.APIServer{Host: "https://127.0.0.1:1"}).RESTConfig()
	cfg.QPS, cfg.Burst = 0.01, 1
	c, err := kubeclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	get := map[string]func(context.Context) error{
		"core/v1": func(ctx context.Context) error {
			_, err := c.CoreV1().ConfigMaps("default").Get(ctx, "x", metav1.GetOptions{})
			return err
		},
		"coordination/v1": func(ctx context.Context) error {
			_, err := c.CoordinationV1().Leases("default").Get(ctx, "x", metav1.GetOptions{})
			return err
		},
		"dynamic": func(ctx context.Context) error {
			_, err := c.Resource(roles).Namespace("default").Get(ctx, "x", metav1.GetOptions{})
			return err
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := get["core/v1"](ctx); err == nil || strings.Contains(err.Error(), "rate") {
		t.Fatalf("the first request: %v, want a connection error (the burst lets it through)", err)
	}
	for _, group := range []string{"coordination/v1", "dynamic", "core/v1"} {
		if err := get[group](ctx); err == nil || !strings.Contains(err.Error(), "rate: Wait") {
			t.Errorf("a %s request after the budget was spent: %v, want the shared limiter's refusal", group, err)
		}
	}
}

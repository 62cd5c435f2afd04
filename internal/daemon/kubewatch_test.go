package daemon

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/sandbox/crds"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/testenv"
)

// watchedMesh uses every kind that watches: DNS, one replicate block per replicable kind (source in a, copy
// in b), a control_plane block (control plane a, data plane b) and a load_balancer block (primary a,
// secondary b).
func watchedMesh() *spec.Mesh {
	m := &spec.Mesh{Name: "m", Clusters: []*spec.Cluster{{Name: "a"}, {Name: "b"}},
		LoadBalancers: []*spec.LoadBalancer{{Name: "nginx", Primary: "a", Namespace: "default", Service: "nginx"}}}
	for kind, namespaced := range spec.ReplicableKinds {
		r := &spec.Replicate{Name: "r-" + kind, FromCluster: "a", FromKind: kind, FromName: "x"}
		if namespaced {
			r.FromNamespace = "ns"
		}
		m.Replicates = append(m.Replicates, r)
	}
	m.ControlPlanes = []*spec.ControlPlane{{Name: "kb", Cluster: "a", SecretNamespace: "kb-system", SecretName: "data-planes"}}
	return m
}

// watchedClusters starts a kube-apiserver per name with the TargetGroupBinding CRD installed, and returns
// clients whose connections are closed when the test ends (the package checks for leaked goroutines).
func watchedClusters(t *testing.T, names ...string) []WatchedCluster {
	etcd := testenv.StartEtcd(t)
	servers := testenv.StartAPIServers(t, etcd.ClientURL, names...)
	var out []WatchedCluster
	for _, name := range names {
		cfg := servers[name].RESTConfig()
		var transports []http.RoundTripper
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { transports = append(transports, rt); return rt }
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := testenv.InstallCRD(ctx, cfg, crds.TargetGroupBinding)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		c, err := kubeclient.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, rt := range transports {
				utilnet.CloseIdleConnectionsFor(rt)
			}
		})
		out = append(out, WatchedCluster{Name: name, Client: c})
	}
	return out
}

// TestEveryWatchCanBeStarted: what the kinds ask to watch, for a spec using every kind, names an API
// version and resource in the right clusters, and every watch lists and syncs against real API servers
// (the TargetGroupBinding CRD installed as LBC installs it).
func TestEveryWatchCanBeStarted(t *testing.T) {
	m := watchedMesh()
	counts := map[string]int{}
	for _, cluster := range []string{"a", "b"} {
		for _, w := range plan.WatchesOf(m, cluster) {
			counts[cluster]++
			if w.Cluster != cluster {
				t.Errorf("WatchesOf(%q) gave a watch in %q", cluster, w.Cluster)
			}
			if _, err := schema.ParseGroupVersion(w.APIVersion); err != nil || w.Resource == "" {
				t.Errorf("watch %+v: apiVersion %v, resource %q", w, err, w.Resource)
			}
		}
	}
	// Each cluster: its DNS Service and the three ConfigMaps that may hold its Corefile outside EKS
	// (coredns, rke2-coredns-rke2-coredns, coredns-custom), and one watch per replicated object (source in
	// a, copy in b); the control plane's Secret in a, its ServiceAccount in the data plane b; a: the
	// load_balancer's Service, b: its TargetGroupBinding.
	want := 1 + 3 + len(spec.ReplicableKinds) + 2
	if counts["a"] != want || counts["b"] != want {
		t.Errorf("watches per cluster %v, want %d each", counts, want)
	}
	binding := plan.Watch{Cluster: "b", APIVersion: "elbv2.k8s.aws/v1beta1", Resource: "targetgroupbindings", Namespace: "default", Name: "nginx"}
	if !slices.Contains(plan.WatchesOf(m, "b"), binding) {
		t.Errorf("no watch of the secondary's binding %+v in %v", binding, plan.WatchesOf(m, "b"))
	}
	service := plan.Watch{Cluster: "a", APIVersion: "v1", Resource: "services", Namespace: "default", Name: "nginx"}
	if !slices.Contains(plan.WatchesOf(m, "a"), service) {
		t.Errorf("no watch of the primary's Service %+v in %v", service, plan.WatchesOf(m, "a"))
	}
	m.DNSDisabled = true
	if got := len(plan.WatchesOf(m, "b")); got != len(spec.ReplicableKinds)+2 {
		t.Errorf("with DNS off, %d watches in b, want only the %d copies, the ServiceAccount and the binding", got, len(spec.ReplicableKinds))
	}
	m.DNSDisabled = false

	// A watch of a resource the API server does not serve never syncs: WatchKubernetes would fail here.
	clusters := watchedClusters(t, "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := WatchKubernetes(ctx, m, clusters, func(KubeEvent) {}); err != nil {
		t.Errorf("starting every watch: %v", err)
	}
	cancel()
	t.Run("load_balancer triggers", func(t *testing.T) { testLoadBalancerWatches(t, clusters) })
}

// triggers records what the watches fired for.
type triggers struct {
	mu  sync.Mutex
	got []string
}

func (r *triggers) add(why string) { r.mu.Lock(); r.got = append(r.got, why); r.mu.Unlock() }

func (r *triggers) count(substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, g := range r.got {
		if strings.Contains(g, substr) {
			n++
		}
	}
	return n
}

func (r *triggers) waitFor(t *testing.T, substr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for r.count(substr) == 0 {
		if time.Now().After(deadline) {
			r.mu.Lock()
			t.Fatalf("no trigger for %q; got %q", substr, r.got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testLoadBalancerWatches: with a load_balancer block, the watches fire for another's change to the
// primary's Service and for the secondary's TargetGroupBinding deleted, not for bindings of other names or
// in the primary; meshd's own writes (its server-side apply of the annotations, its create of the binding)
// are taken as meshd's by their managedFields as the API server sets them.
func testLoadBalancerWatches(t *testing.T, clusters []WatchedCluster) {
	a, b := clusters[0].Client, clusters[1].Client
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc, err := a.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}},
		metav1.CreateOptions{FieldManager: "kubectl-client-side-apply"})
	if err != nil {
		t.Fatal(err)
	}
	var got triggers
	m := watchedMesh()
	m.DNSDisabled = true
	if err := WatchKubernetes(ctx, m, clusters, func(ev KubeEvent) { got.add(ev.Why) }); err != nil {
		t.Fatal(err)
	}

	// meshd's server-side apply, in a later second than the user's write (managedFields times are seconds).
	for time.Now().Unix() <= svc.CreationTimestamp.Unix() {
		time.Sleep(50 * time.Millisecond)
	}
	cfg := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "nginx", "namespace": "default", "annotations": map[string]any{plan.AnnotationMultiClusterTargetGroup: "true", "example.com/meshd-too": "x"}}}}
	if _, err := a.Resource(schema.GroupVersionResource{Version: "v1", Resource: "services"}).Namespace("default").Apply(ctx, "nginx", cfg,
		metav1.ApplyOptions{FieldManager: model.FieldManager, Force: true}); err != nil {
		t.Fatal(err)
	}
	// What the API server made of meshd's apply is taken as meshd's write: its event fires nothing.
	applied, err := a.CoreV1().Services("default").Get(ctx, "nginx", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !writtenByMeshd(applied) {
		t.Errorf("meshd's server-side apply of its annotations is not taken as meshd's write: %v", applied.ManagedFields)
	}
	// The user removes one of meshd's two annotations, and nothing else, in a later second: the API server
	// keeps no entry for the user (it would own nothing), so meshd's shrunk entry, with its old time, is still
	// the latest. It is a change all the same (TestDaemonKeepsLoadBalancer once waited a minute for it).
	for time.Now().Unix() <= applied.ManagedFields[len(applied.ManagedFields)-1].Time.Unix() {
		time.Sleep(50 * time.Millisecond)
	}
	delete(applied.Annotations, plan.AnnotationMultiClusterTargetGroup)
	removed, err := a.CoreV1().Services("default").Update(ctx, applied, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range removed.ManagedFields {
		if f.Manager == "kubectl-edit" {
			t.Logf("the API server kept an entry for the removal: %v", removed.ManagedFields)
		}
	}
	got.waitFor(t, "Service default/nginx in a changed")
	// The user's edit of another annotation (in the same second or later: either way it is not meshd's).
	cur, err := a.CoreV1().Services("default").Get(ctx, "nginx", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cur.Annotations == nil {
		cur.Annotations = map[string]string{}
	}
	cur.Annotations["example.com/owner"] = "web"
	if _, err := a.CoreV1().Services("default").Update(ctx, cur, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	svcTrigger := "Service default/nginx in a changed"
	for deadline := time.Now().Add(20 * time.Second); got.count(svcTrigger) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("the user's edit of another annotation fired no trigger: %q", got.got)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Bindings: one of another name in b and one in a (no watch), then meshd's in b, then it is deleted.
	tgb := func(name string) kubeobj.Object {
		return kubeobj.Own(kubeobj.Object{APIVersion: "elbv2.k8s.aws/v1beta1", Kind: "TargetGroupBinding", Namespace: "default", Name: name,
			Content: map[string]any{"spec": map[string]any{"targetGroupARN": "arn:aws:elasticloadbalancing:us-west-1:123456789012:targetgroup/k8s-x/0123",
				"serviceRef": map[string]any{"name": "nginx", "port": int64(80)}}}}, "m")
	}
	if _, err := kubeobj.NewClient(b, "m").Create(ctx, tgb("other")); err != nil {
		t.Fatal(err)
	}
	if _, err := kubeobj.NewClient(a, "m").Create(ctx, tgb("nginx")); err != nil {
		t.Fatal(err)
	}
	if _, err := kubeobj.NewClient(b, "m").Create(ctx, tgb("nginx")); err != nil {
		t.Fatal(err)
	}
	tgbs := schema.GroupVersionResource{Group: "elbv2.k8s.aws", Version: "v1beta1", Resource: "targetgroupbindings"}
	if created, err := b.Resource(tgbs).Namespace("default").Get(ctx, "nginx", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else if !writtenByMeshd(created) {
		t.Errorf("meshd's create of the binding is not taken as meshd's write: %v", created.GetManagedFields())
	}
	deleted := time.Now()
	for _, name := range []string{"other", "nginx"} {
		if err := b.Resource(tgbs).Namespace("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Resource(tgbs).Namespace("default").Delete(ctx, "nginx", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The other binding and the primary's have no events in any watch (the name is selected by the API
	// server, and the primary watches no bindings). Watched all along for five times as long as the
	// secondary's deletion took to fire (2 s at least), so that a spare event as slow as the real one is seen.
	got.waitFor(t, "TargetGroupBinding default/nginx in b changed")
	window := max(2*time.Second, 5*time.Since(deleted))
	for end := time.Now().Add(window); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if n := got.count("TargetGroupBinding"); n != 1 {
			got.mu.Lock()
			seen := slices.Clone(got.got)
			got.mu.Unlock()
			t.Fatalf("triggers for bindings: %q, want one, for the secondary's deletion", seen)
		}
	}
}

// TestOnlyForeignAnnotations: on the DNS Service, an update of annotations meshd does not set (a user
// asking MetalLB for an address, MetalLB recording its pool) is not a change that matters; one of meshd's
// annotations, its record of them, a label or the status is.
func TestOnlyForeignAnnotations(t *testing.T) {
	svc := func(annotations map[string]string, ip string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": "across-cluster-dns-tcp", "namespace": "kube-system", "resourceVersion": ip,
				"labels": map[string]any{model.LabelManagedBy: model.ManagedByMeshd}},
			"status": map[string]any{"loadBalancer": map[string]any{"ingress": []any{map[string]any{"ip": ip}}}}}}
		u.SetAnnotations(annotations)
		return u
	}
	meshds := map[string]string{"metallb.io/address-pool": "dns", spec.AnnotationOwnedKeys: "metallb.io/address-pool"}
	with := func(k, v string) map[string]string {
		a := maps.Clone(meshds)
		if v == "" {
			delete(a, k)
		} else {
			a[k] = v
		}
		return a
	}
	base := svc(meshds, "10.0.0.1")
	for _, tc := range []struct {
		name string
		new  *unstructured.Unstructured
		want bool
	}{
		{"a user's annotation", svc(with("metallb.io/loadBalancerIPs", "10.0.0.2"), "10.0.0.1"), true},
		{"MetalLB's pool record", svc(with("metallb.io/ip-allocated-from-pool", "dns"), "10.0.0.1"), true},
		{"meshd's annotation removed", svc(with("metallb.io/address-pool", ""), "10.0.0.1"), false},
		{"meshd's record removed", svc(with(spec.AnnotationOwnedKeys, ""), "10.0.0.1"), false},
		{"an NLB annotation added", svc(with(spec.AnnotationLBType, "nlb"), "10.0.0.1"), false},
		{"a new address", svc(meshds, "10.0.0.2"), false},
		{"a user's annotation and a new address", svc(with("metallb.io/loadBalancerIPs", "10.0.0.2"), "10.0.0.2"), false},
	} {
		if got := onlyForeignAnnotations(base, tc.new); got != tc.want {
			t.Errorf("%s: onlyForeignAnnotations = %v, want %v", tc.name, got, tc.want)
		}
	}
	labelled := base.DeepCopy()
	labelled.SetLabels(map[string]string{"app": "x"})
	if onlyForeignAnnotations(base, labelled) {
		t.Error("a label change counted as foreign annotations only")
	}
}

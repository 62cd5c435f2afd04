package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
	"github.com/meshd-io/meshd/internal/testenv"
)

// TestLBServiceExecutorOnAPIServer runs the lb_service executor against a real kube-apiserver (server-side
// apply and managedFields are the API server's): meshd's apply owns only its two annotation keys, merges
// deletion_protection.enabled=true into the user's attributes, records what it added, and its removal
// takes out only that, down to an attributes annotation it made itself.
func TestLBServiceExecutorOnAPIServer(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := testenv.StartAPIServer(t, etcd.ClientURL, "lbservice")
	kube, err := kubeclient.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	p := New(Options{Mesh: "tidb", NewClient: func(string) (kubeclient.Interface, error) { return kube, nil }})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	services := kube.CoreV1().Services("default")

	cases := []struct {
		name string
		user map[string]string // the user's annotations
		want string            // the attributes annotation after meshd's apply
		// addedDP: meshd added the deletion protection entry (else the user had it, and it stays).
		addedDP bool
	}{
		{"with the user's attributes", map[string]string{plan.AnnotationLBAttributes: "load_balancing.cross_zone.enabled=true", "example.com/owner": "web"},
			"load_balancing.cross_zone.enabled=true,deletion_protection.enabled=true", true},
		{"without attributes", map[string]string{"example.com/owner": "web"}, "deletion_protection.enabled=true", true},
		{"the user's deletion protection", map[string]string{plan.AnnotationLBAttributes: "deletion_protection.enabled=true,load_balancing.cross_zone.enabled=true"},
			"deletion_protection.enabled=true,load_balancing.cross_zone.enabled=true", false},
	}
	for i, tc := range cases {
		name := fmt.Sprintf("nginx-%d", i)
		if _, err := services.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: tc.user},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}},
			metav1.CreateOptions{FieldManager: "kubectl-client-side-apply"}); err != nil {
			t.Fatal(err)
		}
		s := plan.LBService{LoadBalancer: "nginx", Cluster: "a", KubeContext: "a", Namespace: "default", Name: name,
			MultiCluster: true, DeletionProtection: true, TargetGroupARN: "arn:aws:elasticloadbalancing:us-west-1:123456789012:targetgroup/k8s-x/0123"}
		out, err := lbServiceExecutor{p}.Execute(ctx, plan.Change{Action: plan.Create, Address: plan.LBServiceAddress("nginx"), Kind: plan.KindLBService, After: s}, nil)
		if err != nil {
			t.Fatalf("%s: apply: %v", tc.name, err)
		}
		if out.ID != s.TargetGroupARN {
			t.Errorf("%s: outcome ID %q, want the target group ARN", tc.name, out.ID)
		}
		st := state.New("tidb")
		out.Record(st)
		if rec := st.LoadBalancers[plan.LBServiceAddress("nginx")]; !rec.AddedMultiCluster || rec.AddedDeletionProtection != tc.addedDP {
			t.Errorf("%s: recorded %+v, want the multi-cluster annotation as meshd's addition, deletion protection %v", tc.name, rec, tc.addedDP)
		}
		svc, err := services.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := maps.Clone(tc.user)
		want[plan.AnnotationMultiClusterTargetGroup] = "true"
		want[plan.AnnotationLBAttributes] = tc.want
		if !maps.Equal(svc.Annotations, want) {
			t.Errorf("%s: annotations after apply %v, want %v", tc.name, svc.Annotations, want)
		}
		applied := appliedFields(t, svc, model.FieldManager)
		wantFields := fmt.Sprint(map[string]any{"f:metadata": map[string]any{"f:annotations": map[string]any{
			"f:" + plan.AnnotationLBAttributes: map[string]any{}, "f:" + plan.AnnotationMultiClusterTargetGroup: map[string]any{}}}})
		if applied != wantFields {
			t.Errorf("%s: meshd's applied fields %s, want only its two annotations %s", tc.name, applied, wantFields)
		}
		if appliedFields(t, svc, "kubectl-client-side-apply") == "" {
			t.Errorf("%s: the user's managedFields entry is gone: %v", tc.name, svc.ManagedFields)
		}

		// The removal the plan makes from the record: only what meshd added.
		s.RemoveMultiCluster, s.RemoveDeletionProtection = true, tc.addedDP
		if _, err := (lbServiceExecutor{p}).Execute(ctx, plan.Change{Action: plan.Delete, Address: plan.LBServiceAddress("nginx"), Kind: plan.KindLBService, Before: s}, nil); err != nil {
			t.Fatalf("%s: removal: %v", tc.name, err)
		}
		if svc, err = services.Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(svc.Annotations, tc.user) {
			t.Errorf("%s: annotations after the removal %v, want the user's %v", tc.name, svc.Annotations, tc.user)
		}
	}
}

// appliedFields is the fieldsV1 of manager's managedFields entry (the first found), as fmt prints it; "":
// none.
func appliedFields(t *testing.T, svc *corev1.Service, manager string) string {
	t.Helper()
	for _, mf := range svc.ManagedFields {
		if mf.Manager != manager {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(mf.FieldsV1.Raw, &fields); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(fields)
	}
	return ""
}

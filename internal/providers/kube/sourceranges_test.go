package kube

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/testenv"
)

// TestServiceSourceRangesOnAPIServer runs the dns_service executor against a real kube-apiserver: the
// Service is created with the source ranges the plan asks for, an update (a member joined, a user changed
// them) replaces them, a mesh of one clears them, and what Observe reads back is what was written.
func TestServiceSourceRangesOnAPIServer(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := testenv.StartAPIServer(t, etcd.ClientURL, "sourceranges")
	kube, err := kubeclient.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	p := New(Options{Mesh: "tidb", LoadBalancers: fixedLB{[]string{"10.1.0.10"}}, PollInterval: 50 * time.Millisecond,
		WaitTimeout: time.Minute, NewClient: func(string) (kubeclient.Interface, error) { return kube, nil }})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	services := kube.CoreV1().Services(plan.DNSNamespace)

	// The load balancer controller's part: once the Service is there, publish a hostname for it.
	published := make(chan error, 1)
	go func() {
		published <- func() error {
			for {
				svc, err := services.Get(ctx, plan.DNSServiceName, metav1.GetOptions{})
				if err == nil {
					svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{Hostname: "k8s-kubesyst-acrossc-0123.elb.us-west-1.amazonaws.com"}}
					if _, err = services.UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err == nil || !apierrors.IsConflict(err) {
						return err
					}
				} else if !apierrors.IsNotFound(err) {
					return err
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}()

	run := func(action plan.Action, ranges []string) {
		t.Helper()
		s := plan.DNSService{Cluster: "a", Region: "us-west-1", KubeContext: "ctx-a", Spec: plan.DesiredDNSService("tidb")}
		s.Spec.SourceRanges = ranges
		ch := plan.Change{Action: action, Address: plan.DNSServiceAddress("a"), Kind: plan.KindDNSService, After: s}
		if _, err := (serviceExecutor{p}).Execute(ctx, ch, nil); err != nil {
			t.Fatalf("%s with ranges %v: %v", action.Verb(), ranges, err)
		}
		svc, err := services.Get(ctx, plan.DNSServiceName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(svc.Spec.LoadBalancerSourceRanges, ranges) {
			t.Errorf("after %s: spec.loadBalancerSourceRanges = %v, want %v", action.Verb(), svc.Spec.LoadBalancerSourceRanges, ranges)
		}
		obs, diags := p.Observe(ctx, []Target{{Cluster: "a", KubeContext: "ctx-a"}})
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		if got := obs["a"].Service.Spec.SourceRanges; !slices.Equal(got, ranges) {
			t.Errorf("after %s: observed source ranges %v, want %v", action.Verb(), got, ranges)
		}
	}

	run(plan.Create, []string{"10.2.0.0/16", "10.3.0.0/16"})
	if err := <-published; err != nil {
		t.Fatalf("publishing the hostname: %v", err)
	}
	run(plan.Update, []string{"10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16"}) // a member joined

	// A user narrows them by hand; the next update puts meshd's back.
	svc, err := services.Get(ctx, plan.DNSServiceName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.LoadBalancerSourceRanges = []string{"10.9.0.0/16"}
	if _, err := services.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	run(plan.Update, []string{"10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16"})
	run(plan.Update, nil) // the others left: no ranges, the controller's default
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/meshd-io/meshd/internal/sandbox"
)

var tgbGVR = schema.GroupVersionResource{Group: "elbv2.k8s.aws", Version: "v1beta1", Resource: "targetgroupbindings"}

const (
	annotationMultiCluster = "service.beta.kubernetes.io/aws-load-balancer-multi-cluster-target-group"
	lbBlock                = `load_balancer "nginx" {
  primary     = "tidb-1"
  namespace   = "default"
  service     = "nginx"
  secondaries = ["tidb-2"]
}
`
)

// TestDaemonKeepsLoadBalancer: meshd running on a spec with a load_balancer block, with the LBC stand-in
// registering each cluster's endpoints, repairs from its watches (the interval is an hour) a deleted and an
// edited secondary TargetGroupBinding, so that the secondary's Pods are targets again, and the multi-cluster
// annotation removed from the primary's Service; a user's own annotation on that Service is left alone, and
// meshd's server-side apply keeps owning only its two annotations.
func TestDaemonKeepsLoadBalancer(t *testing.T) {
	e := newE2E(t)
	r := &replicateEnv{e2e: e, t: t} // meshctl and the spec
	e.setenv(t)
	pri, sec := e.sb.Clusters[0].Name, e.sb.Clusters[1].Name
	ctx, cancel := context.WithCancel(context.Background())
	_, stopped, err := e.sb.StartTargetGroups(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); stopped() })
	userAnnotations := map[string]string{
		sandbox.AnnotationNLBTargetType: "ip",
		sandbox.AnnotationLBAttributes:  "load_balancing.cross_zone.enabled=true",
	}
	if err := e.sb.DeployNginx(ctx, pri, userAnnotations, "10.1.1.20", "10.1.1.21"); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.DeployNginx(ctx, sec, nil, "10.2.1.20"); err != nil {
		t.Fatal(err)
	}
	dyn := map[string]dynamic.Interface{}
	for _, c := range []string{pri, sec} {
		if dyn[c], err = dynamic.NewForConfig(e.sb.APIServers[c].RESTConfig()); err != nil {
			t.Fatal(err)
		}
	}
	bindings := dyn[sec].Resource(tgbGVR).Namespace("default")
	services := e.sb.Clients[pri].CoreV1().Services("default")

	r.spec(false, lbBlock)
	r.meshctl(0, "apply", "--auto-approve")
	var arn string
	e.waitFor(time.Minute, "the primary's multi-cluster target group", func() bool {
		u, err := dyn[pri].Resource(tgbGVR).Namespace("default").Get(ctx, sandbox.TargetGroupName(pri, "default", "nginx"), metav1.GetOptions{})
		if err == nil {
			arn, _, _ = unstructured.NestedString(u.Object, "spec", "targetGroupARN")
		}
		return arn != ""
	})
	elb := elbv2.NewFromConfig(e.sb.AWSConfig(e.sb.Clusters[0].Region))
	both := []string{"10.1.1.20:8080", "10.1.1.21:8080", "10.2.1.20:8080"}
	hasBoth := func() bool {
		out, err := elb.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
		if err != nil {
			return false
		}
		var ts []string
		for _, d := range out.TargetHealthDescriptions {
			ts = append(ts, fmt.Sprintf("%s:%d", aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port)))
		}
		slices.Sort(ts)
		return slices.Equal(ts, both)
	}
	e.waitFor(time.Minute, "both clusters' Pods registered after apply", hasBoth)
	binding := func() *unstructured.Unstructured {
		u, err := bindings.Get(ctx, "nginx", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	service := func() *corev1.Service {
		svc, err := services.Get(ctx, "nginx", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}

	m := e.start("--interval", "1h", "--state", e.state)
	e.waitFor(60*time.Second, "the start pass", func() bool { return m.metric(`meshd_passes_total{result="ok"}`) >= 1 })
	corrected := func(action, kind string) float64 {
		return m.metric(fmt.Sprintf(`meshd_drift_corrected_total{action=%q,kind=%q}`, action, kind))
	}

	// (a) The secondary's binding deleted: LBC's finalizer takes its targets out, meshd makes it again from
	// the watch and they are registered again.
	old := binding()
	if err := bindings.Delete(ctx, "nginx", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	took := e.waitFor(60*time.Second, "the deleted binding made again, with its targets registered", func() bool {
		b := binding()
		return b != nil && b.GetUID() != old.GetUID() && b.GetDeletionTimestamp() == nil && hasBoth()
	})
	t.Logf("binding deleted -> restored with its targets: %v", took)
	e.waitFor(30*time.Second, "the binding's create counted", func() bool { return corrected("create", "target_group_binding") >= 1 })

	// (b) The binding edited (serviceRef.port to one the Service lacks: LBC deregisters the Pods) is put back.
	edited := binding()
	if err := unstructured.SetNestedField(edited.Object, int64(81), "spec", "serviceRef", "port"); err != nil {
		t.Fatal(err)
	}
	edited, err = bindings.Update(ctx, edited, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
	if err != nil {
		t.Fatal(err)
	}
	took = e.waitFor(60*time.Second, "the edited binding's serviceRef.port back at 80, with its targets registered", func() bool {
		b := binding()
		port, _, _ := unstructured.NestedInt64(b.Object, "spec", "serviceRef", "port")
		return b.GetResourceVersion() != edited.GetResourceVersion() && port == 80 && hasBoth()
	})
	t.Logf("binding edited -> restored with its targets: %v", took)
	e.waitFor(30*time.Second, "the binding's update counted", func() bool { return corrected("update", "target_group_binding") >= 1 })

	// (c) The multi-cluster annotation removed from the primary's Service is restored, the user's attributes
	// entry kept beside meshd's.
	svc := service()
	delete(svc.Annotations, annotationMultiCluster)
	if _, err := services.Update(ctx, svc, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	took = e.waitFor(60*time.Second, "the multi-cluster annotation restored", func() bool {
		return service().Annotations[annotationMultiCluster] == "true"
	})
	t.Logf("annotation removed -> restored: %v", took)
	if got := service().Annotations[sandbox.AnnotationLBAttributes]; got != "load_balancing.cross_zone.enabled=true,deletion_protection.enabled=true" {
		t.Errorf("attributes annotation after the repair: %q", got)
	}
	e.waitFor(60*time.Second, "both clusters' Pods registered after the annotation came back", hasBoth)
	// Counted when the pass ends: after the write, the executor waits for LBC's binding to be multi-cluster
	// again, and the state is written.
	e.waitFor(60*time.Second, "the annotation's correction counted", func() bool { return corrected("update", "lb_service") >= 1 })

	// (d) A user's own annotation on the Service: the watch runs a pass, which leaves it and writes nothing.
	passes := m.metric(`meshd_passes_total{result="ok"}`)
	lbCorrections := corrected("update", "lb_service")
	svc = service()
	svc.Annotations["example.com/owner"] = "web"
	mine, err := services.Update(ctx, svc, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor(30*time.Second, "a pass after the user's annotation", func() bool { return m.metric(`meshd_passes_total{result="ok"}`) > passes })
	after := service()
	if after.ResourceVersion != mine.ResourceVersion || after.Annotations["example.com/owner"] != "web" {
		t.Errorf("meshd wrote the Service after the user's own annotation: resourceVersion %s (the user's %s), annotations %v",
			after.ResourceVersion, mine.ResourceVersion, after.Annotations)
	}
	if got := corrected("update", "lb_service"); got != lbCorrections {
		t.Errorf("the user's own annotation counted as drift: %v corrections, was %v", got, lbCorrections)
	}
	meshdOwnsOnly(t, after, annotationMultiCluster, sandbox.AnnotationLBAttributes)

	e.kill(m, syscall.SIGTERM)
	log, err := os.ReadFile(m.log)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"target_group_binding[nginx:" + sec + "]", "lb_service[nginx]", "TargetGroupBinding default/nginx in " + sec + " changed"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("meshd's log does not mention %q", want)
		}
	}
}

// meshdOwnsOnly: meshd's server-side apply entry on the Service holds exactly the annotations keys.
func meshdOwnsOnly(t *testing.T, svc *corev1.Service, keys ...string) {
	t.Helper()
	want := map[string]any{}
	for _, k := range keys {
		want["f:"+k] = map[string]any{}
	}
	for _, mf := range svc.ManagedFields {
		if mf.Manager != "meshd" || mf.Operation != metav1.ManagedFieldsOperationApply {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(mf.FieldsV1.Raw, &fields); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(fields) != fmt.Sprint(map[string]any{"f:metadata": map[string]any{"f:annotations": want}}) {
			t.Errorf("meshd's applied fields: %v, want only the annotations %v", fields, keys)
		}
		return
	}
	t.Errorf("no server-side apply entry of meshd on the Service: %v", svc.ManagedFields)
}

package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/meshd-io/meshd/internal/cli"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/sandbox/crds"
)

var tgbGVR = schema.GroupVersionResource{Group: "elbv2.k8s.aws", Version: "v1beta1", Resource: "targetgroupbindings"}

// userAnnotations are the primary Service's annotations as the user wrote them.
var userAnnotations = map[string]string{
	sandbox.AnnotationNLBTargetType: "ip",
	sandbox.AnnotationLBAttributes:  "load_balancing.cross_zone.enabled=true",
}

// nginx deploys Service default/nginx and its Ready endpoints at ips: the primary's a LoadBalancer with the
// user's annotations, a secondary's a ClusterIP.
func nginx(t *testing.T, s *sandbox.Sandbox, cluster string, primary bool, ips ...string) {
	t.Helper()
	var annotations map[string]string
	if primary {
		annotations = userAnnotations
	}
	if err := s.DeployNginx(context.Background(), cluster, annotations, ips...); err != nil {
		t.Fatal(err)
	}
}

// TestLoadBalancerOnSandbox: a load_balancer block against the sandbox, with the LBC stand-in registering
// each cluster's endpoints: its diagnostics and conflict change nothing; apply makes the target group list
// the Pod IPs of both clusters and a second plan is empty; a deleted secondary binding takes only its
// targets away and is restored; destroy takes the secondary's targets away and leaves the primary's, the
// NLB, the target group and the Service with the user's annotations.
func TestLoadBalancerOnSandbox(t *testing.T) {
	s := startSandbox(t)
	s.SetEnv(t)
	pri, sec, old := s.Clusters[0], s.Clusters[1], s.Clusters[2]
	ctx, cancel := context.WithCancel(context.Background())
	lbc, stopped, err := s.StartTargetGroups(ctx, map[string][]byte{old.Name: crds.TargetGroupBindingBefore210()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); stopped() })

	nginx(t, s, pri.Name, true, "10.1.1.20", "10.1.1.21")
	nginx(t, s, old.Name, false, "10.3.1.20")

	dir := t.TempDir()
	specPath := filepath.Join(dir, "mesh.hcl")
	writeSpec := func(secondaries string) {
		var b strings.Builder
		b.WriteString("mesh \"tidb\" {}\n")
		for _, c := range s.Clusters {
			fmt.Fprintf(&b, "cluster %q {\n  region = %q\n  kube_context = %q\n  eks_cluster = %q\n  namespace = %q\n}\n",
				c.Name, c.Region, c.Context, c.Name, c.Namespace)
		}
		fmt.Fprintf(&b, "load_balancer \"nginx\" {\n  primary = %q\n  namespace = \"default\"\n  service = \"nginx\"\n  secondaries = %s\n}\n", pri.Name, secondaries)
		if err := os.WriteFile(specPath, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
		full := append(args, "--spec", specPath, "--state", filepath.Join(dir, "state.json"), "--kubeconfig", s.Kubeconfig)
		if code := app.Main(context.Background(), full); code != want {
			t.Fatalf("meshctl %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		// Diagnostics are wrapped: compare words.
		return strings.Join(strings.Fields(out.String()+errb.String()), " ")
	}
	annotations := func() map[string]string {
		t.Helper()
		svc, err := s.Clients[pri.Name].CoreV1().Services("default").Get(context.Background(), "nginx", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return svc.Annotations
	}
	dyn := map[string]dynamic.Interface{}
	for _, c := range s.Clusters {
		if dyn[c.Name], err = dynamic.NewForConfig(s.APIServers[c.Name].RESTConfig()); err != nil {
			t.Fatal(err)
		}
	}
	// The primary's binding, made by the stand-in: its ARN names the target group.
	tgName := sandbox.TargetGroupName(pri.Name, "default", "nginx")
	var arn string
	waitFor(t, time.Minute, "the stand-in's TargetGroupBinding in the primary", func() bool {
		u, err := dyn[pri.Name].Resource(tgbGVR).Namespace("default").Get(ctx, tgName, metav1.GetOptions{})
		if err == nil {
			arn, _, _ = unstructured.NestedString(u.Object, "spec", "targetGroupARN")
		}
		return arn != ""
	})
	elb := elbv2.NewFromConfig(s.AWSConfig(pri.Region))
	targets := func() []string {
		t.Helper()
		out, err := elb.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		var ts []string
		for _, d := range out.TargetHealthDescriptions {
			ts = append(ts, fmt.Sprintf("%s:%d", aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port)))
		}
		slices.Sort(ts)
		return ts
	}
	waitTargets := func(what string, want ...string) {
		t.Helper()
		waitFor(t, time.Minute, what, func() bool { return slices.Equal(targets(), want) })
	}
	primaryTargets := []string{"10.1.1.20:8080", "10.1.1.21:8080"}
	waitTargets("the primary's targets", primaryTargets...)

	// LBC too old in one secondary, the Service missing in the other: diagnostics, nothing changed.
	writeSpec(fmt.Sprintf("[%q, %q]", sec.Name, old.Name))
	out := run(1, "apply", "--auto-approve")
	for _, want := range []string{"AWS Load Balancer Controller too old", "Secondary Service missing", "older than v2.10"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	if got := annotations(); !maps.Equal(got, userAnnotations) {
		t.Errorf("after the refused apply the Service's annotations are %v, want the user's %v", got, userAnnotations)
	}

	// A TargetGroupBinding of that name meshd did not make: a conflict, nothing changed.
	nginx(t, s, sec.Name, false, "10.2.1.20")
	lbc.Pause(sec.Name, true)
	foreign := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
		"metadata": map[string]any{"name": "nginx", "namespace": "default"},
		"spec":     map[string]any{"targetGroupARN": arn, "serviceRef": map[string]any{"name": "nginx", "port": int64(80)}}}}
	if _, err := dyn[sec.Name].Resource(tgbGVR).Namespace("default").Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	writeSpec(fmt.Sprintf("[%q]", sec.Name))
	out = run(1, "apply", "--auto-approve")
	if !strings.Contains(out, "TargetGroupBinding default/nginx that meshd did not create") {
		t.Errorf("apply output lacks the conflict:\n%s", out)
	}
	if got := annotations(); !maps.Equal(got, userAnnotations) {
		t.Errorf("after the conflict the Service's annotations are %v, want the user's", got)
	}
	if err := dyn[sec.Name].Resource(tgbGVR).Namespace("default").Delete(ctx, "nginx", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	lbc.Pause(sec.Name, false)

	// Apply: both clusters' Pods are targets; a second plan is empty and shows them by cluster.
	run(0, "apply", "--auto-approve")
	both := []string{"10.1.1.20:8080", "10.1.1.21:8080", "10.2.1.20:8080"}
	waitTargets("both clusters' targets", both...)
	got := annotations()
	if got["service.beta.kubernetes.io/aws-load-balancer-multi-cluster-target-group"] != "true" ||
		got[sandbox.AnnotationLBAttributes] != "load_balancing.cross_zone.enabled=true,deletion_protection.enabled=true" {
		t.Errorf("Service annotations after apply: %v", got)
	}
	checkMeshdOwnsOnlyItsAnnotations(t, s, pri.Name)
	// The secondary's binding carries its own VPC and lets in the load balancer's subnets (the sandbox's NLB
	// has no security group) on the Pods' port.
	b, err := dyn[sec.Name].Resource(tgbGVR).Namespace("default").Get(ctx, "nginx", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vpc, _, _ := unstructured.NestedString(b.Object, "spec", "vpcID")
	ingress, _, _ := unstructured.NestedSlice(b.Object, "spec", "networking", "ingress")
	if vpc != s.Networks[sec.Name].VPCID || len(ingress) != 1 ||
		!strings.Contains(fmt.Sprint(ingress), "cidr:10.1.") || !strings.Contains(fmt.Sprint(ingress), "port:8080") {
		t.Errorf("secondary binding: vpcID %s (want %s), networking.ingress %v", vpc, s.Networks[sec.Name].VPCID, ingress)
	}
	if b.GetLabels()["app.kubernetes.io/managed-by"] != "meshd" {
		t.Errorf("secondary binding not labelled as meshd's: %v", b.GetLabels())
	}
	out = run(0, "plan", "--detailed-exitcode")
	for _, want := range []string{"Target group of load_balancer \"nginx\": " + arn, pri.Name + ": 2 target(s)", sec.Name + ": 1 target(s): 10.2.1.20:8080"} {
		if !strings.Contains(out, want) {
			t.Errorf("second plan lacks %q:\n%s", want, out)
		}
	}

	// The secondary's binding deleted: only its targets leave; meshd makes it again and they are back.
	if err := dyn[sec.Name].Resource(tgbGVR).Namespace("default").Delete(ctx, "nginx", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitTargets("the secondary's targets to leave", primaryTargets...)
	out = run(0, "apply", "--auto-approve")
	if !strings.Contains(out, "target_group_binding[nginx:"+sec.Name+"]") {
		t.Errorf("apply does not restore the binding:\n%s", out)
	}
	waitTargets("the secondary's targets to come back", both...)

	// Destroy: the secondary's targets go; the primary's targets, NLB, target group and Service stay, with
	// the annotations the user left.
	run(0, "destroy", "--auto-approve")
	waitTargets("only the primary's targets after destroy", primaryTargets...)
	if got := annotations(); !maps.Equal(got, userAnnotations) {
		t.Errorf("after destroy the Service's annotations are %v, want the user's %v", got, userAnnotations)
	}
	lbs, err := elb.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{Names: []string{sandbox.LBName(pri.Name, "default", "nginx")}})
	if err != nil || len(lbs.LoadBalancers) != 1 {
		t.Errorf("the NLB after destroy: %v, %v", lbs, err)
	}
	if _, err := elb.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{arn}}); err != nil {
		t.Errorf("the target group after destroy: %v", err)
	}
}

// checkMeshdOwnsOnlyItsAnnotations: meshd's server-side apply entry on the primary's Service holds the two
// annotations and nothing else.
func checkMeshdOwnsOnlyItsAnnotations(t *testing.T, s *sandbox.Sandbox, cluster string) {
	t.Helper()
	svc, err := s.Clients[cluster].CoreV1().Services("default").Get(context.Background(), "nginx", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range svc.ManagedFields {
		if mf.Manager != "meshd" || mf.Operation != metav1.ManagedFieldsOperationApply {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(mf.FieldsV1.Raw, &fields); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"f:metadata": map[string]any{"f:annotations": map[string]any{
			"f:service.beta.kubernetes.io/aws-load-balancer-attributes":                 map[string]any{},
			"f:service.beta.kubernetes.io/aws-load-balancer-multi-cluster-target-group": map[string]any{},
		}}}
		if fmt.Sprint(fields) != fmt.Sprint(want) {
			t.Errorf("meshd's applied fields: %v, want only its two annotations", fields)
		}
		return
	}
	t.Errorf("no server-side apply entry of meshd on the Service: %v", svc.ManagedFields)
}

package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
)

// These tests run the executors against client-go's in-memory clientset, for the checks made at the moment
// of writing: what changed between plan and apply. The whole flow runs against real API servers in
// internal/cli and cmd/meshd.

type fixedLB struct{ addrs []string }

func (f fixedLB) WaitLoadBalancerIn(context.Context, model.Access, string, string, string) (model.LoadBalancer, error) {
	return model.LoadBalancer{Name: "k8s-dns", State: model.LoadBalancerActive, Addresses: f.addrs}, nil
}

func fakeProvider(objects ...runtime.Object) (*Provider, *fake.Clientset) {
	cs := fake.NewClientset(objects...)
	p := New(Options{Mesh: "tidb", LoadBalancers: fixedLB{[]string{"10.1.0.10", "10.1.1.10"}},
		NewClient: func(string) (kubeclient.Interface, error) { return fakeClient(cs), nil }})
	return p, cs
}

// fakeClient pairs the fake clientset with an empty fake dynamic client: the executors here use only the
// typed core/v1 client.
func fakeClient(cs *fake.Clientset) kubeclient.Interface {
	return kubeclient.Join(cs, dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()))
}

func serviceChange(action plan.Action) plan.Change {
	s := plan.DNSService{Cluster: "a", Region: "us-west-1", KubeContext: "ctx-a", Spec: plan.DesiredDNSService("tidb")}
	ch := plan.Change{Action: action, Address: plan.DNSServiceAddress("a"), Kind: plan.KindDNSService}
	if action == plan.Delete {
		ch.Before = s
	} else {
		ch.After = s
	}
	return ch
}

func getService(t *testing.T, cs *fake.Clientset) *corev1.Service {
	t.Helper()
	svc, err := cs.CoreV1().Services(plan.DNSNamespace).Get(context.Background(), plan.DNSServiceName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestServiceNotMeshdsIsLeftAlone(t *testing.T) {
	foreign := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: plan.DNSServiceName, Namespace: plan.DNSNamespace, Labels: map[string]string{"app": "mine"}},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: map[string]string{"app": "mine"}},
	}
	for _, action := range []plan.Action{plan.Update, plan.Delete} {
		p, cs := fakeProvider(foreign.DeepCopy())
		_, err := serviceExecutor{p}.Execute(context.Background(), serviceChange(action), nil)
		if err == nil || !strings.Contains(err.Error(), "not meshd's") {
			t.Errorf("%s of a Service that became someone else's after the plan: err %v, want a refusal", action.Verb(), err)
		}
		got := getService(t, cs)
		if got.Labels["app"] != "mine" || got.Spec.Type != corev1.ServiceTypeClusterIP || len(got.Labels) != 1 {
			t.Errorf("%s changed the foreign Service: %+v", action.Verb(), got.ObjectMeta.Labels)
		}
	}
}

func TestServiceUpdateKeepsServerFields(t *testing.T) {
	want := plan.DesiredDNSService("tidb")
	cur := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: plan.DNSServiceName, Namespace: plan.DNSNamespace,
			Labels:      map[string]string{model.LabelManagedBy: model.ManagedByMeshd, model.LabelMesh: "tidb", "team": "dns"},
			Annotations: map[string]string{"example.com/owner": "platform"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, // drifted: meshd wants LoadBalancer
			Ports: []corev1.ServicePort{{Name: want.Ports[0].Name, Protocol: corev1.Protocol(want.Ports[0].Protocol), Port: want.Ports[0].Port, NodePort: 31553}}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{Hostname: "k8s-dns.elb.us-west-1.amazonaws.com"}}}},
	}
	p, cs := fakeProvider(cur)
	out, err := serviceExecutor{p}.Execute(context.Background(), serviceChange(plan.Update), nil)
	if err != nil {
		t.Fatal(err)
	}
	if id := out.ID; id != "10.1.0.10,10.1.1.10" {
		t.Errorf("change ID %q, want the NLB's addresses", id)
	}
	got := getService(t, cs)
	if got.Spec.Type != corev1.ServiceType(want.Type) {
		t.Errorf("type %s, want %s", got.Spec.Type, want.Type)
	}
	if got.Labels["team"] != "dns" || got.Annotations["example.com/owner"] != "platform" {
		t.Errorf("others' labels or annotations lost: %v %v", got.Labels, got.Annotations)
	}
	for k, v := range want.Annotations {
		if got.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
		}
	}
	if got.Spec.Ports[0].NodePort != 31553 {
		t.Errorf("node port %d, want the allocated 31553 kept", got.Spec.Ports[0].NodePort)
	}
}

func coreDNS(text string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: plan.CoreDNSConfigMap, Namespace: plan.DNSNamespace},
		Data: map[string]string{plan.CorefileKey: text}}
}

func corefileChange(blocks ...plan.CorefileBlock) plan.Change {
	return plan.Change{Action: plan.Update, Address: plan.CorefileAddress("a"), Kind: plan.KindCorefile,
		After: plan.Corefile{Cluster: "a", KubeContext: "ctx-a", Blocks: blocks, Backup: true}}
}

func getConfigMap(t *testing.T, cs *fake.Clientset, name string) *corev1.ConfigMap {
	t.Helper()
	cm, err := cs.CoreV1().ConfigMaps(plan.DNSNamespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return cm
}

func TestCorefileChangedSincePlanIsNotOverwritten(t *testing.T) {
	// After the plan, someone added their own block for the zone meshd is about to write.
	user := corefile.EKSDefault + "\nns-b.svc.cluster.local:53 {\n    forward . 10.9.9.9\n}\n"
	p, cs := fakeProvider(coreDNS(user))
	_, err := corefileExecutor{p}.Execute(context.Background(),
		corefileChange(plan.CorefileBlock{Zone: "ns-b.svc.cluster.local", Upstreams: []string{"10.2.0.10"}}), nil)
	if err == nil || !strings.Contains(err.Error(), "changed since the plan") {
		t.Fatalf("err %v, want the Corefile reported as changed since the plan", err)
	}
	if got := getConfigMap(t, cs, plan.CoreDNSConfigMap).Data[plan.CorefileKey]; got != user {
		t.Errorf("the Corefile was rewritten:\n%s", got)
	}
	if getConfigMap(t, cs, plan.BackupConfigMap) != nil {
		t.Error("a backup was made although nothing was written")
	}
}

func TestCorefileBackupHoldsTheOriginal(t *testing.T) {
	p, cs := fakeProvider(coreDNS(corefile.EKSDefault))
	ctx := context.Background()
	ch := corefileChange(plan.CorefileBlock{Zone: "ns-b.svc.cluster.local", Upstreams: []string{"10.2.0.10"}})
	if _, err := (corefileExecutor{p}).Execute(ctx, ch, nil); err != nil {
		t.Fatal(err)
	}
	written := getConfigMap(t, cs, plan.CoreDNSConfigMap).Data[plan.CorefileKey]
	if !strings.Contains(written, "forward . 10.2.0.10") || !strings.HasPrefix(written, corefile.EKSDefault) {
		t.Errorf("merged Corefile:\n%s", written)
	}
	// A later change (another block) must not replace the backup with meshd's own output.
	ch = corefileChange(plan.CorefileBlock{Zone: "ns-b.svc.cluster.local", Upstreams: []string{"10.2.0.10"}},
		plan.CorefileBlock{Zone: "ns-c.svc.cluster.local", Upstreams: []string{"10.3.0.10"}})
	if _, err := (corefileExecutor{p}).Execute(ctx, ch, nil); err != nil {
		t.Fatal(err)
	}
	backup := getConfigMap(t, cs, plan.BackupConfigMap)
	if backup == nil || backup.Data[plan.CorefileKey] != corefile.EKSDefault || !model.OwnedBy(backup.Labels, "tidb") {
		t.Fatalf("backup %+v, want the original Corefile with meshd's labels", backup)
	}
}

// TestLongWaitReportsProgress: while the load balancer controller has not set the Service's hostname, the
// wait says so every ProgressEvery, naming the change, and gives up after WaitTimeout.
func TestLongWaitReportsProgress(t *testing.T) {
	var lines []string
	cs := fake.NewClientset()
	p := New(Options{Mesh: "tidb", LoadBalancers: fixedLB{}, PollInterval: 5 * time.Millisecond,
		ProgressEvery: 40 * time.Millisecond, WaitTimeout: 2 * time.Second,
		Progress:  func(msg string) { lines = append(lines, msg) },
		NewClient: func(string) (kubeclient.Interface, error) { return fakeClient(cs), nil }})
	_, err := serviceExecutor{p}.Execute(context.Background(), serviceChange(plan.Create), nil)
	if err == nil || !strings.Contains(err.Error(), "gave up waiting for the load balancer controller") {
		t.Fatalf("err %v, want the wait given up", err)
	}
	if len(lines) < 3 {
		t.Fatalf("%d progress lines over a 2s wait reported every 40ms, want at least 3: %q", len(lines), lines)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "dns_service[a]: still waiting for the load balancer controller") || !strings.HasSuffix(l, "elapsed]") {
			t.Errorf("progress line %q", l)
		}
	}
}

// externalService is meshd's DNS Service of an external member as an earlier apply left it: MetalLB's
// address in its status, a node port, and an annotation meshd set from the spec beside one of another party.
func externalService() *corev1.Service {
	want := plan.DesiredDNSService("tidb")
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: plan.DNSServiceName, Namespace: plan.DNSNamespace, Labels: want.Labels,
			Annotations: map[string]string{"metallb.io/loadBalancerIPs": "192.168.4.53", spec.AnnotationOwnedKeys: "metallb.io/loadBalancerIPs",
				"someone.else/note": "kept"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: want.Selector,
			Ports: []corev1.ServicePort{{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, NodePort: 30053}}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.168.4.53"}}}},
	}
}

func externalChange(typ string, annotations map[string]string, nodes ...string) plan.Change {
	want := plan.DesiredDNSService("tidb")
	want.Type, want.Annotations = typ, annotations
	return plan.Change{Action: plan.Update, Address: plan.DNSServiceAddress("d"), Kind: plan.KindDNSService,
		After: plan.DNSService{Cluster: "d", KubeContext: "ctx-d", Spec: want, External: true, NodeAddresses: nodes}}
}

func TestExternalServiceReachedAtItsAddresses(t *testing.T) {
	pool := map[string]string{"metallb.io/address-pool": "dns", spec.AnnotationOwnedKeys: "metallb.io/address-pool"}
	p, cs := fakeProvider(externalService())
	out, err := serviceExecutor{p}.Execute(context.Background(), externalChange("LoadBalancer", pool), nil)
	if err != nil || out.ID != "192.168.4.53" {
		t.Fatalf("LoadBalancer: ID %q, err %v; want MetalLB's address 192.168.4.53", out.ID, err)
	}
	got := getService(t, cs).Annotations
	want := map[string]string{"metallb.io/address-pool": "dns", spec.AnnotationOwnedKeys: "metallb.io/address-pool", "someone.else/note": "kept"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("annotations (-want +got): the one the spec dropped goes, another party's stays\n%s", diff)
	}

	p, cs = fakeProvider(externalService())
	out, err = serviceExecutor{p}.Execute(context.Background(), externalChange("NodePort", nil, "192.168.4.12", "192.168.4.11"), nil)
	if err != nil || out.ID != "192.168.4.11:30053,192.168.4.12:30053" {
		t.Fatalf("NodePort: ID %q, err %v; want each node address with the node port", out.ID, err)
	}
	svc := getService(t, cs)
	if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.Ports[0].NodePort != 30053 {
		t.Errorf("NodePort: type %s, node port %d; want NodePort keeping 30053", svc.Spec.Type, svc.Spec.Ports[0].NodePort)
	}
	if _, ok := svc.Annotations[spec.AnnotationOwnedKeys]; ok {
		t.Errorf("NodePort: %s is still there with no spec annotations: %v", spec.AnnotationOwnedKeys, svc.Annotations)
	}
}

// A spec that asks MetalLB for another address: apply waits until the Service has it, so that the other
// Corefiles get the new address, not the one MetalLB is giving up.
func TestExternalServiceWaitsForRequestedAddress(t *testing.T) {
	p, cs := fakeProvider(externalService())
	p.opts.PollInterval = 10 * time.Millisecond
	ask := map[string]string{"metallb.io/loadBalancerIPs": "192.168.4.54", spec.AnnotationOwnedKeys: "metallb.io/loadBalancerIPs"}
	done := make(chan string, 1)
	go func() {
		out, err := serviceExecutor{p}.Execute(context.Background(), externalChange("LoadBalancer", ask), nil)
		if err != nil {
			out.ID = "error: " + err.Error()
		}
		done <- out.ID
	}()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for getService(t, cs).Annotations["metallb.io/loadBalancerIPs"] != "192.168.4.54" {
		if time.Now().After(deadline) {
			t.Fatal("the executor did not write the annotation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case id := <-done:
		t.Fatalf("the executor returned %q before MetalLB moved the Service", id)
	case <-time.After(100 * time.Millisecond):
	}
	svc := getService(t, cs)
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.168.4.54"}}
	if _, err := cs.CoreV1().Services(plan.DNSNamespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-done:
		if id != "192.168.4.54" {
			t.Errorf("ID %q, want the requested address", id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the executor did not return after MetalLB moved the Service")
	}
}

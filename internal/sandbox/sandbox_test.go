package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
)

func startSandbox(t *testing.T) *sandbox.Sandbox { return sandbox.StartT(t) }

// waitSettled waits until addr has answered name with want, over UDP and TCP, for 6 s in a row (longer than
// CoreDNS's lameduck period), or fails the test after 60 s.
func waitSettled(t *testing.T, addr, name, want string) {
	t.Helper()
	const settled = 6 * time.Second
	deadline := time.Now().Add(60 * time.Second)
	var streak time.Time
	wrong := 0
	for {
		ok := true
		for _, tcp := range []bool{false, true} {
			ips, err := testenv.LookupA(addr, name, tcp)
			ok = ok && err == nil && len(ips) == 1 && ips[0].String() == want
		}
		switch {
		case !ok:
			streak, wrong = time.Time{}, wrong+1
		case streak.IsZero():
			streak = time.Now()
		case time.Since(streak) > settled:
			t.Logf("%s answered %s steadily after %d wrong answers", addr, name, wrong)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %s with %s steadily for %v within 60 s", addr, name, want, settled)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func setCorefile(t *testing.T, s *sandbox.Sandbox, cluster, corefile string) {
	t.Helper()
	ctx := context.Background()
	cms := s.Clients[cluster].CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["Corefile"] = corefile
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestSandboxResolvesAcrossClusters(t *testing.T) {
	s := startSandbox(t)
	ctx := context.Background()
	c1, c2, c3 := s.Clusters[0], s.Clusters[1], s.Clusters[2]

	// Each CoreDNS serves its own cluster; before any forwarding, cluster 1 does not know cluster 2's names.
	for _, c := range s.Clusters {
		ips, err := testenv.LookupA(c.DNSAddr(), c.SampleName(), true)
		if err != nil || len(ips) != 1 || ips[0].String() != c.SampleIP {
			t.Fatalf("%s resolves its own %s to %v, %v; want %s", c.Name, c.SampleName(), ips, err, c.SampleIP)
		}
	}
	if ips, err := testenv.LookupA(c1.DNSAddr(), c2.SampleName(), false); err == nil {
		t.Fatalf("before forwarding, %s resolved %s to %v", c1.Name, c2.SampleName(), ips)
	}

	// What meshd writes into cluster 1's ConfigMap for cluster 2.
	block := fmt.Sprintf(`
%s.svc.cluster.local:53 {
    errors
    cache 30
    forward . %s {
        force_tcp
    }
}
`, c2.Namespace, c2.DNSAddr())
	setCorefile(t, s, c1.Name, sandbox.DefaultEKSCorefile+block)
	start := time.Now()
	ips, err := s.WaitResolve(ctx, c1.Name, c2.SampleName(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(ips) != 1 || ips[0].String() != c2.SampleIP {
		t.Fatalf("%s resolved %s to %v, want %s", c1.Name, c2.SampleName(), ips, c2.SampleIP)
	}
	t.Logf("%s resolved %s to %v %.1fs after the ConfigMap changed", c1.Name, c2.SampleName(), ips, time.Since(start).Seconds())
	// The first answer can come from the reloaded server while the old one still serves: the EKS Corefile's
	// "health { lameduck 5s }" keeps it answering (from the Corefile without the block) for 5 s after a
	// reload, on the same sockets. Wait until the answers have been right for longer than that.
	waitSettled(t, c1.DNSAddr(), c2.SampleName(), c2.SampleIP)
	if ips, err := testenv.LookupA(c1.DNSAddr(), c2.SampleName(), true); err != nil || len(ips) != 1 || ips[0].String() != c2.SampleIP {
		t.Errorf("over TCP: %v, %v", ips, err)
	}

	// A Corefile that does not parse: the kubelet stand-in keeps the last good file and DNS keeps working.
	path := s.Syncers[c1.Name].Path
	before, _ := os.ReadFile(path)
	writes := s.Syncers[c1.Name].Writes()
	setCorefile(t, s, c1.Name, sandbox.DefaultEKSCorefile+"broken {\n")
	// Watched all along for 3 s (the informer's delivery and more than CoreDNS's 2 s reload), not looked at
	// once at the end. That the syncer did see the broken Corefile is checked below, by the next change.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if after, _ := os.ReadFile(path); string(after) != string(before) || s.Syncers[c1.Name].Writes() != writes {
			t.Fatalf("a broken Corefile changed %s (%d writes, %d before):\n%s", path, s.Syncers[c1.Name].Writes(), writes, after)
		}
	}
	if ips, err := testenv.LookupA(c1.DNSAddr(), c2.SampleName(), false); err != nil || len(ips) != 1 {
		t.Errorf("after a broken Corefile: %v, %v", ips, err)
	}

	// The load-balancer stand-in: the DNS Service meshd makes in cluster 3 (kube-system/across-cluster-dns-tcp)
	// gets an NLB and ENIs whose addresses are cluster 3's CoreDNS.
	svcs := s.Clients[c3.Name].CoreV1().Services("kube-system")
	svc := dnsService(map[string]string{
		sandbox.AnnotationLBType:   "nlb",
		sandbox.AnnotationInternal: "true",
		"service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": "true",
	})
	if _, err := svcs.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var host string
	waitFor(t, 30*time.Second, "the Service's load balancer hostname", func() bool {
		got, err := svcs.Get(ctx, svc.Name, metav1.GetOptions{})
		if err != nil || len(got.Status.LoadBalancer.Ingress) == 0 {
			return false
		}
		host = got.Status.LoadBalancer.Ingress[0].Hostname
		if !slices.Contains(got.Finalizers, sandbox.LBFinalizer) {
			t.Errorf("finalizers %v, want %s", got.Finalizers, sandbox.LBFinalizer)
		}
		return host != ""
	})
	cfg := s.AWSConfig(c3.Region)
	lbs, err := elbv2.NewFromConfig(cfg).DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{})
	if err != nil {
		t.Fatal(err)
	}
	var lb *elbtypes.LoadBalancer
	for i := range lbs.LoadBalancers {
		if aws.ToString(lbs.LoadBalancers[i].DNSName) == host {
			lb = &lbs.LoadBalancers[i]
		}
	}
	if lb == nil {
		t.Fatalf("no load balancer in %s has the DNS name %s", c3.Region, host)
	}
	if lb.Type != elbtypes.LoadBalancerTypeEnumNetwork || lb.Scheme != elbtypes.LoadBalancerSchemeEnumInternal ||
		aws.ToString(lb.VpcId) != s.Networks[c3.Name].VPCID {
		t.Errorf("load balancer: type %s scheme %s VPC %s; want network, internal, %s", lb.Type, lb.Scheme, aws.ToString(lb.VpcId), s.Networks[c3.Name].VPCID)
	}
	arnParts := strings.Split(aws.ToString(lb.LoadBalancerArn), "/")
	desc := fmt.Sprintf("ELB net/%s/%s", aws.ToString(lb.LoadBalancerName), arnParts[len(arnParts)-1])
	enis := describeENIs(t, cfg, "ELB net/"+aws.ToString(lb.LoadBalancerName)+"/*")
	var got []string
	for _, n := range enis {
		if aws.ToString(n.Description) != desc {
			t.Errorf("ENI description %q, want %q", aws.ToString(n.Description), desc)
		}
		got = append(got, aws.ToString(n.PrivateIpAddress))
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(c3.DNS))
	if !slices.Equal(got, want) {
		t.Errorf("ENI addresses %v, want %v (cluster 3's CoreDNS)", got, want)
	}
	// Forwarding to the NLB's IPs reaches cluster 3's CoreDNS.
	ups := strings.Join(got, " ")
	setCorefile(t, s, c1.Name, sandbox.DefaultEKSCorefile+block+fmt.Sprintf("\n%s.svc.cluster.local:53 {\n    forward . %s {\n        force_tcp\n    }\n}\n", c3.Namespace, ups))
	if ips, err := s.WaitResolve(ctx, c1.Name, c3.SampleName(), 30*time.Second); err != nil || ips[0].String() != c3.SampleIP {
		t.Errorf("%s via the NLB IPs: %v, %v", c3.SampleName(), ips, err)
	}
	// The watch delivers the ConfigMap's versions in order, so this one's write comes after the syncer saw
	// the broken one: exactly one write since then means the broken Corefile was seen and wrote nothing.
	waitFor(t, 30*time.Second, "tidb-1's Corefile file forwarding to the NLB", func() bool {
		b, _ := os.ReadFile(path)
		return strings.Contains(string(b), c3.Namespace+".svc.cluster.local")
	})
	if got := s.Syncers[c1.Name].Writes(); got != writes+1 {
		t.Errorf("%d Corefile writes since the broken Corefile, want 1 (the NLB forwarding)", got-writes)
	}

	// Deleting the Service deletes the NLB and its ENIs, then the Service goes.
	if err := svcs.Delete(ctx, svc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the Service to be deleted", func() bool {
		_, err := svcs.Get(ctx, svc.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if left := describeENIs(t, cfg, desc); len(left) != 0 {
		t.Errorf("%d ENIs left after the Service was deleted", len(left))
	}
	_, err = elbv2.NewFromConfig(cfg).DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{Names: []string{aws.ToString(lb.LoadBalancerName)}})
	if err == nil {
		t.Errorf("load balancer %s left after the Service was deleted", aws.ToString(lb.LoadBalancerName))
	}
}

// dnsService is the DNS Service meshd makes in a cluster, kube-system/across-cluster-dns-tcp of type
// LoadBalancer, with annotations.
func dnsService(annotations map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "across-cluster-dns-tcp", Namespace: "kube-system", Annotations: annotations},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"k8s-app": "kube-dns"},
			Ports:    []corev1.ServicePort{{Name: "dns-tcp", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolTCP}},
		},
	}
}

func describeENIs(t *testing.T, cfg aws.Config, desc string) []ec2types.NetworkInterface {
	t.Helper()
	out, err := ec2.NewFromConfig(cfg).DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("description"), Values: []string{desc}}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.NetworkInterfaces
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

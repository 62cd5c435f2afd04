package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"

	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
)

// TestExternalCluster runs a fourth, external cluster beside the three AWS ones: nothing of it is in moto,
// the MetalLB stand-in gives its LoadBalancer Service an address of its pool that reaches its CoreDNS, and
// the kube-proxy stand-in serves its node ports.
func TestExternalCluster(t *testing.T) {
	s := sandbox.StartNT(t, 4, func(c *sandbox.Cluster) { c.External = c.Name == "tidb-4" })
	ctx := context.Background()
	ext, _ := s.Cluster("tidb-4")
	if !ext.External || ext.EKS {
		t.Fatalf("tidb-4: External %v, EKS %v; want an external cluster, not EKS", ext.External, ext.EKS)
	}
	if _, ok := s.Pods.Lookup(net.JoinHostPort(ext.SampleIP, "80")); !ok {
		t.Errorf("no probe Pod listener for %s", ext.SampleIP)
	}

	// Nothing of it in moto: no VPC, no EKS cluster; the other clusters have theirs.
	if _, ok := s.Networks[ext.Name]; ok || len(s.Networks) != 3 {
		t.Errorf("networks %v: want tidb-1..3's only", slices.Sorted(maps.Keys(s.Networks)))
	}
	vpcs, err := ec2.NewFromConfig(s.AWSConfig(ext.Region)).DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vpcs.Vpcs {
		if aws.ToString(v.CidrBlock) == ext.CIDR {
			t.Errorf("moto has VPC %s with tidb-4's block %s", aws.ToString(v.VpcId), ext.CIDR)
		}
	}
	_, err = eks.NewFromConfig(s.AWSConfig(ext.Region)).DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(ext.Name)})
	if nf := (*ekstypes.ResourceNotFoundException)(nil); !errors.As(err, &nf) {
		t.Errorf("EKS DescribeCluster %s: %v; want ResourceNotFoundException", ext.Name, err)
	}

	// The DNS Service meshd makes, as a LoadBalancer: MetalLB's address, not an NLB.
	svcs := s.Clients[ext.Name].CoreV1().Services("kube-system")
	svc := dnsService(map[string]string{sandbox.AnnotationLBType: "nlb", sandbox.AnnotationInternal: "true"})
	name := svc.Name
	if _, err := svcs.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pool := ext.DNS
	got := waitIngress(t, svcs, name, pool[len(pool)-1])
	if slices.Contains(got.Finalizers, sandbox.LBFinalizer) {
		t.Errorf("finalizers %v: the NLB stand-in took an external cluster's Service", got.Finalizers)
	}
	lbName := sandbox.LBName(ext.Name, "kube-system", name)
	if _, err := elbv2.NewFromConfig(s.AWSConfig(ext.Region)).DescribeLoadBalancers(ctx,
		&elbv2.DescribeLoadBalancersInput{Names: []string{lbName}}); err == nil {
		t.Errorf("the NLB stand-in made %s for an external cluster's Service", lbName)
	}
	waitAnswers(t, pool[len(pool)-1], ext)

	// The annotations move it; an address outside the pool leaves it without one.
	update(t, svcs, name, func(svc *corev1.Service) { svc.Annotations[sandbox.AnnotationMetalLBIPsDeprecated] = pool[0] })
	waitIngress(t, svcs, name, pool[0])
	waitAnswers(t, pool[0], ext)
	update(t, svcs, name, func(svc *corev1.Service) { svc.Annotations[sandbox.AnnotationMetalLBIPsDeprecated] = "10.4.9.9" })
	waitIngress(t, svcs, name, "")
	update(t, svcs, name, func(svc *corev1.Service) { svc.Annotations[sandbox.AnnotationMetalLBIPs] = pool[1] })
	got = waitIngress(t, svcs, name, pool[1])

	// kube-proxy opens the LoadBalancer Service's node port on every node; a new nodePort moves it.
	nodePort := got.Spec.Ports[0].NodePort
	for _, node := range ext.NodeAddresses() {
		waitAnswers(t, net.JoinHostPort(node, fmt.Sprint(nodePort)), ext)
	}
	moved := nodePort + 1
	if moved > 32767 {
		moved = nodePort - 1
	}
	update(t, svcs, name, func(svc *corev1.Service) { svc.Spec.Ports[0].NodePort = moved })
	node := ext.NodeAddresses()[0]
	waitAnswers(t, net.JoinHostPort(node, fmt.Sprint(moved)), ext)
	waitClosed(t, net.JoinHostPort(node, fmt.Sprint(nodePort)))

	// As a NodePort Service it keeps its node port and loses its address; deleted, it has neither.
	update(t, svcs, name, func(svc *corev1.Service) {
		svc.Spec.Type, svc.Spec.AllocateLoadBalancerNodePorts = corev1.ServiceTypeNodePort, nil
	})
	waitIngress(t, svcs, name, "")
	waitAnswers(t, net.JoinHostPort(node, fmt.Sprint(moved)), ext)
	if err := svcs.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, net.JoinHostPort(node, fmt.Sprint(moved)))

	// A NodePort Service whose target port is named; Stop closes its listeners.
	np, err := svcs.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "dns-nodeport", Namespace: "kube-system"},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: map[string]string{"k8s-app": "kube-dns"},
			Ports:    []corev1.ServicePort{{Name: "dns-tcp", Port: 53, TargetPort: intstr.FromString("dns-tcp"), Protocol: corev1.ProtocolTCP}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(ext.NodeAddresses()[1], fmt.Sprint(np.Spec.Ports[0].NodePort))
	waitAnswers(t, addr, ext)
	if err := s.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("%s accepts connections after Stop", addr)
	}
}

// waitIngress waits until the Service's status.loadBalancer.ingress is [{ip: want}] and MetalLB's pool
// annotation is set, or ("" wanted) the ingress is empty and the annotation gone, and returns the Service.
func waitIngress(t *testing.T, svcs typedcorev1.ServiceInterface, name, want string) *corev1.Service {
	t.Helper()
	var got *corev1.Service
	waitFor(t, 60*time.Second, fmt.Sprintf("%s's ingress to be %q", name, want), func() bool {
		var err error
		if got, err = svcs.Get(context.Background(), name, metav1.GetOptions{}); err != nil {
			return false
		}
		ing, pool := got.Status.LoadBalancer.Ingress, got.Annotations[sandbox.AnnotationMetalLBPool]
		if want == "" {
			return len(ing) == 0 && pool == ""
		}
		return len(ing) == 1 && ing[0].IP == want && ing[0].Hostname == "" && pool == sandbox.MetalLBPool
	})
	return got
}

// waitAnswers waits until the DNS server at addr answers c's sample name over TCP with its address.
func waitAnswers(t *testing.T, addr string, c sandbox.Cluster) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%s to answer %s over TCP", addr, c.SampleName()), func() bool {
		ips, err := testenv.LookupA(addr, c.SampleName(), true)
		return err == nil && len(ips) == 1 && ips[0].String() == c.SampleIP
	})
}

// waitClosed waits until nothing accepts connections at addr.
func waitClosed(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, 60*time.Second, addr+" to refuse connections", func() bool {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// update changes the Service with f, retrying when it was written meanwhile (the stand-ins write it too).
func update(t *testing.T, svcs typedcorev1.ServiceInterface, name string, f func(*corev1.Service)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc, err := svcs.Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		f(svc)
		_, err = svcs.Update(context.Background(), svc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

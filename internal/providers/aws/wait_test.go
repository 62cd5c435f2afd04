package aws

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// The waits for a load balancer and for a peering report progress, so that a long apply is not silent.

// checkProgress checks the lines of a 2s wait that reports every 40ms.
func checkProgress(t *testing.T, lines []string, prefix string) {
	t.Helper()
	if len(lines) < 3 {
		t.Fatalf("%d progress lines over a 2s wait reported every 40ms, want at least 3: %q", len(lines), lines)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			t.Errorf("progress line %q, want it to start with %q", l, prefix)
		}
	}
}

// provisioningELB answers that the load balancer exists but is still provisioning.
type provisioningELB struct{}

func (provisioningELB) DescribeLoadBalancers(context.Context, *elb.DescribeLoadBalancersInput, ...func(*elb.Options)) (*elb.DescribeLoadBalancersOutput, error) {
	return &elb.DescribeLoadBalancersOutput{LoadBalancers: []elbtypes.LoadBalancer{{
		LoadBalancerName: aws.String("k8s-dns"), DNSName: aws.String("k8s-dns.elb.us-west-1.amazonaws.com"),
		LoadBalancerArn: aws.String("arn:aws:elasticloadbalancing:us-west-1:123456789012:loadbalancer/net/k8s-dns/0123456789abcdef"),
		State:           &elbtypes.LoadBalancerState{Code: elbtypes.LoadBalancerStateEnumProvisioning}}}}, nil
}

// TestWaitLoadBalancerReportsProgress: a wait for an NLB says every ProgressEvery what it waits for, in the
// NLB's own words, and gives up after WaitTimeout.
func TestWaitLoadBalancerReportsProgress(t *testing.T) {
	var lines []string
	p, err := New(context.Background(), Options{PollInterval: 5 * time.Millisecond, ProgressEvery: 40 * time.Millisecond,
		WaitTimeout: 2 * time.Second, Progress: func(msg string) { lines = append(lines, msg) },
		Clients:    func(string) (EC2API, EKSAPI) { return nil, nil },
		ELBClients: func(string) ELBv2API { return provisioningELB{} }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.WaitLoadBalancer(context.Background(), "us-west-1", "k8s-dns.elb.us-west-1.amazonaws.com", "dns_service[a]")
	if err == nil || !strings.Contains(err.Error(), "NLB k8s-dns is provisioning") {
		t.Fatalf("err %v, want the wait given up with the NLB's state", err)
	}
	checkProgress(t, lines, "dns_service[a]: still waiting for the load balancer k8s-dns.elb.us-west-1.amazonaws.com: NLB k8s-dns is provisioning [")
}

// pendingPeering answers that the peering waits for its accepter. The other EC2 calls are not made.
type pendingPeering struct{ EC2API }

func (pendingPeering) DescribeVpcPeeringConnections(_ context.Context, in *ec2.DescribeVpcPeeringConnectionsInput, _ ...func(*ec2.Options)) (*ec2.DescribeVpcPeeringConnectionsOutput, error) {
	return &ec2.DescribeVpcPeeringConnectionsOutput{VpcPeeringConnections: []ec2types.VpcPeeringConnection{{
		VpcPeeringConnectionId: aws.String(in.VpcPeeringConnectionIds[0]),
		Status:                 &ec2types.VpcPeeringConnectionStateReason{Code: ec2types.VpcPeeringConnectionStateReasonCodePendingAcceptance}}}}, nil
}

func TestWaitPeeringReportsProgress(t *testing.T) {
	var lines []string
	// The timeout leaves room for at least 3 reports on a loaded machine (checkProgress wants 3): a 40 ms
	// reporter within 300 ms managed only 2 under a CPU hog.
	p, err := New(context.Background(), Options{PollInterval: 5 * time.Millisecond, ProgressEvery: 40 * time.Millisecond,
		WaitTimeout: 2 * time.Second, Progress: func(msg string) { lines = append(lines, msg) },
		Clients: func(string) (EC2API, EKSAPI) { return pendingPeering{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.waitPeering(context.Background(), "peering[a:b]", p.EC2("us-west-1"), "pcx-1", func(s string) bool { return s == "active" })
	if err == nil || !strings.Contains(err.Error(), "pcx-1 still pending-acceptance") {
		t.Fatalf("err %v, want the wait given up with the peering's status", err)
	}
	checkProgress(t, lines, "peering[a:b]: still pending-acceptance [")
}

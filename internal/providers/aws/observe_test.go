package aws_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"

	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/testenv"
)

func writeSpec(t *testing.T, text string) *spec.Mesh {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mesh.hcl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	m, diags := spec.Load(path)
	if diags.HasErrors() {
		t.Fatalf("spec: %v", diags)
	}
	return m
}

// TestObserveDiagnostics: references the spec makes that AWS does not know are diagnostics pointing at the
// attribute to fix, not errors.
func TestObserveDiagnostics(t *testing.T) {
	moto := testenv.StartMoto(t)
	moto.SetEnv(t)
	ctx := context.Background()
	a, err := sandbox.CreateNetwork(ctx, moto.AWSConfig("us-west-1"), sandbox.ClusterNet{Name: "a", Region: "us-west-1", CIDR: "10.1.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := sandbox.CreateNetwork(ctx, moto.AWSConfig("us-west-2"), sandbox.ClusterNet{Name: "b", Region: "us-west-2", CIDR: "10.2.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	m := writeSpec(t, fmt.Sprintf(`mesh "m" {}
cluster "a" {
  region            = "us-west-1"
  kube_context      = "a"
  namespace         = "a"
  vpc_id            = %q
  security_group_id = "sg-0123456789abcdef0"
}
cluster "b" {
  region            = "us-west-2"
  kube_context      = "b"
  namespace         = "b"
  vpc_id            = %q
  security_group_id = %q
  route_table_ids   = ["rtb-0123456789abcdef0"]
  cidr_blocks       = ["10.9.0.0/16"]
}
cluster "c" {
  region       = "us-east-1"
  kube_context = "c"
  namespace    = "c"
  vpc_id            = "vpc-0123456789abcdef0"
  security_group_id = "sg-0123456789abcdef1"
}
cluster "d" {
  region       = "us-east-1"
  kube_context = "d"
  namespace    = "d"
  eks_cluster  = "nope"
}
`, a.VPCID, b.VPCID, b.SecurityGroupID))

	p, err := awsprovider.New(ctx, awsprovider.Options{Mesh: "m"})
	if err != nil {
		t.Fatal(err)
	}
	obs, diags, err := p.Observe(ctx, m, awsprovider.Former{})
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		Summary string
		Line    int
	}
	var gotDiags []got
	for _, d := range diags {
		if d.Subject == nil {
			t.Errorf("diagnostic %q has no source range", d.Summary)
			continue
		}
		gotDiags = append(gotDiags, got{d.Summary, d.Subject.Start.Line})
	}
	want := []got{
		{"Unknown security group", 7},
		{"Unknown route table", 15},
		{"CIDR block not in the VPC", 16},
		{"Unknown VPC", 22},
		{"Unknown EKS cluster", 29},
	}
	if diff := cmp.Diff(want, gotDiags); diff != "" {
		t.Errorf("diagnostics -want +got:\n%s", diff)
	}
	if len(obs.Members) != 0 {
		t.Errorf("members resolved despite errors: %+v", obs.Members)
	}
}

// TestThrottlingIsRetried: EC2 answers RequestLimitExceeded twice; the SDK's retryer backs off and the
// observe succeeds.
func TestThrottlingIsRetried(t *testing.T) {
	moto := testenv.StartMoto(t)
	moto.SetEnv(t)
	ctx := context.Background()
	a, err := sandbox.CreateNetwork(ctx, moto.AWSConfig("us-west-1"), sandbox.ClusterNet{Name: "a", Region: "us-west-1", CIDR: "10.1.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	m := writeSpec(t, fmt.Sprintf(`mesh "m" {}
cluster "a" {
  region            = "us-west-1"
  kube_context      = "a"
  namespace         = "a"
  vpc_id            = %q
  security_group_id = %q
}
`, a.VPCID, a.SecurityGroupID))

	var attempts atomic.Int32
	throttle := func(s *middleware.Stack) error {
		// Below the retry middleware, so every attempt passes through it.
		return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("throttle", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if awsmiddleware.GetOperationName(ctx) == "DescribeVpcs" && attempts.Add(1) <= 2 {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{Code: "RequestLimitExceeded", Message: "Request limit exceeded."}
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
	}
	p, err := awsprovider.New(ctx, awsprovider.Options{Mesh: "m", APIOptions: []func(*middleware.Stack) error{throttle}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	obs, diags, err := p.Observe(ctx, m, awsprovider.Former{})
	if err != nil || diags.HasErrors() {
		t.Fatalf("observe under throttling: %v %v", err, diags)
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("DescribeVpcs attempts: %d, want 3 (two throttled, one through)", n)
	}
	if len(obs.Members) != 1 || obs.Members[0].VPCID != a.VPCID {
		t.Errorf("members: %+v", obs.Members)
	}
	t.Logf("observe with two throttled attempts took %s", time.Since(start))
}

func TestErrorCodeClassification(t *testing.T) {
	throttled := fmt.Errorf("wrapped: %w", &smithy.GenericAPIError{Code: "RequestLimitExceeded"})
	if !awsprovider.IsTransient(throttled) || awsprovider.ErrorCode(throttled) != "RequestLimitExceeded" {
		t.Errorf("throttling not classified: %v", throttled)
	}
	if awsprovider.IsTransient(&smithy.GenericAPIError{Code: "InvalidVpcID.NotFound"}) {
		t.Error("a missing VPC is not transient")
	}
	if awsprovider.ErrorCode(errors.New("plain")) != "" {
		t.Error("a non-API error has no code")
	}
}

// propagatingEC2 is moto's EC2 with one thing moto does not do: routes through vgw marked as propagated by
// the virtual private gateway (Origin EnableVgwRoutePropagation), as AWS reports them with route propagation on.
type propagatingEC2 struct {
	*ec2.Client
	vgw string
}

func (c propagatingEC2) DescribeRouteTables(ctx context.Context, in *ec2.DescribeRouteTablesInput, opts ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error) {
	out, err := c.Client.DescribeRouteTables(ctx, in, opts...)
	if err != nil {
		return nil, err
	}
	for i := range out.RouteTables {
		for j, r := range out.RouteTables[i].Routes {
			if aws.ToString(r.GatewayId) == c.vgw {
				out.RouteTables[i].Routes[j].Origin = ec2types.RouteOriginEnableVgwRoutePropagation
			}
		}
	}
	return out, nil
}

// TestObserveCountsForQuotas: ingress rules whose source is a security group or a prefix list are counted per
// group (they count toward AWS's inbound-rule quota) though they are not kept as CIDR rules; IPv6 rules (a
// quota of their own) and egress rules are not counted; propagated routes are marked (they do not count
// toward the routes-per-table quota).
func TestObserveCountsForQuotas(t *testing.T) {
	moto := testenv.StartMoto(t)
	ctx := context.Background()
	region := "us-west-1"
	cfg := moto.AWSConfig(region)
	a, err := sandbox.CreateNetwork(ctx, cfg, sandbox.ClusterNet{Name: "a", Region: region, CIDR: "10.1.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	c := ec2.NewFromConfig(cfg)
	other, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: aws.String(a.VPCID),
		GroupName: aws.String("lb"), Description: aws.String("load balancers")})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := c.CreateManagedPrefixList(ctx, &ec2.CreateManagedPrefixListInput{PrefixListName: aws.String("office"),
		AddressFamily: aws.String("IPv4"), MaxEntries: aws.Int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	tcp := func(port int32) ec2types.IpPermission {
		return ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port)}
	}
	byGroup, byPrefixList, byCIDR, byIPv6 := tcp(443), tcp(8443), tcp(22), tcp(22)
	byGroup.UserIdGroupPairs = []ec2types.UserIdGroupPair{{GroupId: other.GroupId}}
	byPrefixList.PrefixListIds = []ec2types.PrefixListId{{PrefixListId: pl.PrefixList.PrefixListId}}
	byCIDR.IpRanges = []ec2types.IpRange{{CidrIp: aws.String("192.168.0.0/16")}}
	byIPv6.Ipv6Ranges = []ec2types.Ipv6Range{{CidrIpv6: aws.String("2001:db8::/32")}}
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(a.SecurityGroupID),
		IpPermissions: []ec2types.IpPermission{byGroup, byPrefixList, byCIDR, byIPv6}}); err != nil {
		t.Fatal(err)
	}
	vgw, err := c.CreateVpnGateway(ctx, &ec2.CreateVpnGatewayInput{Type: ec2types.GatewayTypeIpsec1})
	if err != nil {
		t.Fatal(err)
	}
	vgwID := aws.ToString(vgw.VpnGateway.VpnGatewayId)
	if _, err := c.AttachVpnGateway(ctx, &ec2.AttachVpnGatewayInput{VpcId: aws.String(a.VPCID), VpnGatewayId: aws.String(vgwID)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(a.PrivateTable),
		DestinationCidrBlock: aws.String("172.16.0.0/16"), GatewayId: aws.String(vgwID)}); err != nil {
		t.Fatal(err)
	}

	m := writeSpec(t, fmt.Sprintf(`mesh "m" {}
cluster "a" {
  region            = %q
  kube_context      = "a"
  namespace         = "a"
  vpc_id            = %q
  security_group_id = %q
}
`, region, a.VPCID, a.SecurityGroupID))
	p, err := awsprovider.New(ctx, awsprovider.Options{Mesh: "m", Clients: func(string) (awsprovider.EC2API, awsprovider.EKSAPI) {
		return propagatingEC2{Client: c, vgw: vgwID}, eks.NewFromConfig(cfg)
	}})
	if err != nil {
		t.Fatal(err)
	}
	obs, diags, err := p.Observe(ctx, m, awsprovider.Former{})
	if err != nil || diags.HasErrors() {
		t.Fatalf("observe: %v %v", err, diags)
	}
	var cidrs []string
	for _, r := range obs.Observed.Rules[a.SecurityGroupID] {
		cidrs = append(cidrs, r.CIDR)
	}
	if diff := cmp.Diff([]string{"192.168.0.0/16"}, cidrs); diff != "" {
		t.Errorf("CIDR rules of the group (-want +got):\n%s", diff)
	}
	// The group reference counts once, the prefix-list reference as the list's 5 max entries (as AWS counts it).
	if n := obs.Observed.ReferencingRules[a.SecurityGroupID]; n != 6 {
		t.Errorf("rules referencing a group or a prefix list count for %d, want 6 (1 + the prefix list's 5 max entries)", n)
	}
	got := map[string]bool{}
	for _, id := range a.RouteTables() {
		for _, r := range obs.Observed.RouteTables[id].Routes {
			got[id+" "+r.DestinationCIDR] = r.Propagated
		}
	}
	want := map[string]bool{
		a.MainRouteTable + " 10.1.0.0/16": false, a.MainRouteTable + " 0.0.0.0/0": false,
		a.PrivateTable + " 10.1.0.0/16": false, a.PrivateTable + " 172.16.0.0/16": true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("routes and whether they are propagated (-want +got):\n%s", diff)
	}
}

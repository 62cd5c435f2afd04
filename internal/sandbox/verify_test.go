package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/meshd-io/meshd/internal/cli"
	"github.com/meshd-io/meshd/internal/sandbox"
)

// tolerate ignores the codes a create or delete answers when moto did it already and the SDK retried.
func tolerate(t *testing.T, err error, codes ...string) {
	t.Helper()
	var ae smithy.APIError
	if err == nil || (errors.As(err, &ae) && contains(codes, ae.ErrorCode())) {
		return
	}
	t.Fatal(err)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestVerifyOnSandbox: after apply, meshctl verify --probe exits 0 (every probe Pod resolved and connected).
// Then each failure the issue lists is made by hand, one at a time: verify exits 2 and its failure lines name
// exactly that object, nothing else; fixed again, verify exits 0.
func TestVerifyOnSandbox(t *testing.T) {
	s := startSandbox(t)
	s.SetEnv(t)
	dir := t.TempDir()
	spec := filepath.Join(dir, "mesh.hcl")
	var b strings.Builder
	b.WriteString("mesh \"tidb\" {\n  dns {\n    forward_by = \"namespace\"\n  }\n}\n")
	for _, c := range s.Clusters {
		fmt.Fprintf(&b, "cluster %q {\n  region = %q\n  kube_context = %q\n  eks_cluster = %q\n  namespace = %q\n}\n",
			c.Name, c.Region, c.Context, c.Name, c.Namespace)
	}
	if err := os.WriteFile(spec, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string) {
		t.Helper()
		var out, errb bytes.Buffer
		app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
		full := append(args, "--spec", spec, "--state", filepath.Join(dir, "state.json"), "--kubeconfig", s.Kubeconfig)
		code := app.Main(context.Background(), full)
		return code, out.String() + errb.String()
	}
	mustApply := func() {
		t.Helper()
		if code, out := run("apply", "--auto-approve"); code != 0 {
			t.Fatalf("apply: exit %d\n%s", code, out)
		}
	}
	// failures runs verify --json and returns its exit code and failure lines.
	failures := func() (int, []string) {
		t.Helper()
		code, out := run("verify", "--json")
		var doc struct{ Failures []string }
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("verify --json: exit %d, %v\n%s", code, err, out)
		}
		return code, doc.Failures
	}
	// expect checks that verify fails with exactly n lines, each containing every one of names.
	expect := func(what string, n int, names ...string) {
		t.Helper()
		code, got := failures()
		if code != 2 || len(got) != n {
			t.Fatalf("%s: verify exit %d with %d failure(s), want 2 with %d:\n%s", what, code, len(got), n, strings.Join(got, "\n"))
		}
		for _, line := range got {
			for _, name := range names {
				if !strings.Contains(line, name) {
					t.Errorf("%s: %q does not name %s", what, line, name)
				}
			}
		}
		t.Logf("%s:\n  %s", what, strings.Join(got, "\n  "))
	}
	passes := func(what string, args ...string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, out := run(append([]string{"verify"}, args...)...)
			if code == 0 {
				t.Logf("%s: verify %s:\n%s", what, strings.Join(args, " "), out)
				return
			}
			// CoreDNS picks up a Corefile within its reload interval (2s): the probe may need a moment.
			if time.Now().After(deadline) {
				t.Fatalf("%s: verify %s: exit %d, want 0\n%s", what, strings.Join(args, " "), code, out)
			}
			time.Sleep(time.Second)
		}
	}

	mustApply()
	passes("after apply", "--probe")

	ctx := context.Background()
	a, c := s.Clusters[0], s.Clusters[2] // tidb-1 (us-west-1) and tidb-3 (us-east-1)
	na, nc := s.Networks[a.Name], s.Networks[c.Name]
	ea, ec := ec2.NewFromConfig(s.AWSConfig(a.Region)), ec2.NewFromConfig(s.AWSConfig(c.Region))
	pcxOf := func() string {
		t.Helper()
		out, err := ea.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{na.MainRouteTable}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.RouteTables[0].Routes {
			if aws.ToString(r.DestinationCidrBlock) == c.CIDR {
				return aws.ToString(r.VpcPeeringConnectionId)
			}
		}
		t.Fatalf("%s has no route to %s", na.MainRouteTable, c.CIDR)
		return ""
	}
	pcx := pcxOf()

	t.Run("deleted route", func(t *testing.T) {
		_, err := ea.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(na.PrivateTable), DestinationCidrBlock: aws.String(c.CIDR)})
		tolerate(t, err, "InvalidRoute.NotFound")
		expect("deleted route", 1, "tidb-1 -> tidb-3 routes: "+na.PrivateTable+" has no route to "+c.CIDR+" (want "+pcx+")")
		_, err = ea.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(na.PrivateTable),
			DestinationCidrBlock: aws.String(c.CIDR), VpcPeeringConnectionId: aws.String(pcx)})
		tolerate(t, err, "RouteAlreadyExists")
		passes("route back")
	})

	t.Run("more specific route", func(t *testing.T) {
		part := "10.3.5.0/24"
		_, err := ea.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(na.MainRouteTable),
			DestinationCidrBlock: aws.String(part), GatewayId: aws.String(na.InternetGateway)})
		tolerate(t, err, "RouteAlreadyExists")
		expect("more specific route", 1, "tidb-1 -> tidb-3 routes: "+na.MainRouteTable+" sends "+part+", part of "+c.CIDR+", to "+na.InternetGateway+" (want "+pcx+")")
		_, err = ea.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(na.MainRouteTable), DestinationCidrBlock: aws.String(part)})
		tolerate(t, err, "InvalidRoute.NotFound")
		passes("route removed")
	})

	t.Run("revoked SG rule", func(t *testing.T) {
		rules, err := ec.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
			Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{nc.SecurityGroupID}}}})
		if err != nil {
			t.Fatal(err)
		}
		var id string
		for _, r := range rules.SecurityGroupRules {
			if !aws.ToBool(r.IsEgress) && aws.ToString(r.CidrIpv4) == a.CIDR {
				id = aws.ToString(r.SecurityGroupRuleId)
			}
		}
		if id == "" {
			t.Fatalf("%s has no rule from %s", nc.SecurityGroupID, a.CIDR)
		}
		_, err = ec.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(nc.SecurityGroupID), SecurityGroupRuleIds: []string{id}})
		tolerate(t, err, "InvalidPermission.NotFound")
		expect("revoked rule", 1, "tidb-1 -> tidb-3 sg: "+nc.SecurityGroupID+" (tidb-3's nodes) allows no ingress of all traffic from "+a.CIDR)
		mustApply() // meshd puts its rule back
		passes("rule back")
	})

	t.Run("NACL entry that denies", func(t *testing.T) {
		acls, err := ea.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{
			Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{na.VPCID}}}})
		if err != nil || len(acls.NetworkAcls) == 0 {
			t.Fatalf("network ACLs of %s: %v %v", na.VPCID, acls, err)
		}
		acl := aws.ToString(acls.NetworkAcls[0].NetworkAclId)
		_, err = ea.CreateNetworkAclEntry(ctx, &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String(acl), RuleNumber: aws.Int32(90),
			Egress: aws.Bool(true), Protocol: aws.String("-1"), RuleAction: ec2types.RuleActionDeny, CidrBlock: aws.String(c.CIDR)})
		tolerate(t, err, "NetworkAclEntryAlreadyExists")
		expect("NACL deny", 1, "tidb-1 -> tidb-3 nacl: "+acl+" (tidb-1's subnets) egress to "+c.CIDR+": rule 90 denies "+c.CIDR)
		_, err = ea.DeleteNetworkAclEntry(ctx, &ec2.DeleteNetworkAclEntryInput{NetworkAclId: aws.String(acl), RuleNumber: aws.Int32(90), Egress: aws.Bool(true)})
		tolerate(t, err, "InvalidNetworkAclEntry.NotFound")
		passes("NACL entry removed")
	})

	t.Run("rejected peering", func(t *testing.T) {
		// moto rejects only pending peerings (as AWS does): the pair's peering is deleted by hand and a new
		// request between the two VPCs is rejected in the accepter's region.
		_, err := ea.DeleteVpcPeeringConnection(ctx, &ec2.DeleteVpcPeeringConnectionInput{VpcPeeringConnectionId: aws.String(pcx)})
		tolerate(t, err, "InvalidVpcPeeringConnectionID.NotFound")
		req, err := ea.CreateVpcPeeringConnection(ctx, &ec2.CreateVpcPeeringConnectionInput{VpcId: aws.String(na.VPCID),
			PeerVpcId: aws.String(nc.VPCID), PeerRegion: aws.String(c.Region)})
		if err != nil {
			t.Fatal(err)
		}
		rejected := aws.ToString(req.VpcPeeringConnection.VpcPeeringConnectionId)
		if _, err := ec.RejectVpcPeeringConnection(ctx, &ec2.RejectVpcPeeringConnectionInput{VpcPeeringConnectionId: aws.String(rejected)}); err != nil {
			t.Fatal(err)
		}
		expect("rejected peering", 2, rejected+" between ", " is rejected (want active)", " peering: ")
		mustApply() // a new peering, and the routes through it
		passes("peering back")
		pcx = pcxOf()
	})

	t.Run("reverted Corefile", func(t *testing.T) {
		setCorefile(t, s, a.Name, sandbox.DefaultEKSCorefile)
		expect("reverted Corefile", 2, "tidb-1 -> ", " dns: tidb-1's Corefile (kube-system/coredns) has no meshd block for ")
		mustApply()
		passes("Corefile back", "--probe")
	})

	t.Run("frontend group without the source ranges", func(t *testing.T) {
		// The sandbox's load-balancer stand-in gives each NLB a frontend security group as LBC v2.6+ does. With
		// meshd's source ranges taken off tidb-3's Service (as before meshd set them), the group admits only
		// tidb-3's own VPC, and verify names it for the other two clusters' blocks.
		lbName := sandbox.LBName(c.Name, "kube-system", "across-cluster-dns-tcp")
		lbs, err := elbv2.NewFromConfig(s.AWSConfig(c.Region)).DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{Names: []string{lbName}})
		if err != nil || len(lbs.LoadBalancers) != 1 || len(lbs.LoadBalancers[0].SecurityGroups) != 1 {
			t.Fatalf("NLB %s: want one frontend security group: %+v %v", lbName, lbs, err)
		}
		group := lbs.LoadBalancers[0].SecurityGroups[0]
		svcs := s.Clients[c.Name].CoreV1().Services("kube-system")
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			svc, err := svcs.Get(ctx, "across-cluster-dns-tcp", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(svc.Spec.LoadBalancerSourceRanges) != 2 {
				t.Errorf("meshd's source ranges on %s's Service: %v, want the two other VPCs'", c.Name, svc.Spec.LoadBalancerSourceRanges)
			}
			svc.Spec.LoadBalancerSourceRanges = nil
			_, err = svcs.Update(ctx, svc, metav1.UpdateOptions{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		// The stand-in narrows the group on the Service's update: wait for verify to see it.
		deadline := time.Now().Add(time.Minute)
		for {
			code, got := failures()
			want := []string{
				"tidb-1 -> tidb-3 dns: " + group + " (frontend of NLB " + lbName + ") does not admit " + a.CIDR + " on 53/TCP",
				"tidb-2 -> tidb-3 dns: " + group + " (frontend of NLB " + lbName + ") does not admit " + s.Clusters[1].CIDR + " on 53/TCP",
			}
			if code == 2 && slices.Equal(got, want) {
				t.Logf("frontend group without the ranges:\n  %s", strings.Join(got, "\n  "))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("verify exit %d:\n%s\nwant exit 2:\n%s", code, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			time.Sleep(500 * time.Millisecond)
		}
		mustApply() // meshd sets the ranges again; the stand-in admits them
		passes("source ranges back", "--probe")
	})

	t.Run("DNS Service without a hostname", func(t *testing.T) {
		s.LB.Pause(c.Name, true)
		defer s.LB.Pause(c.Name, false)
		svcs := s.Clients[c.Name].CoreV1().Services("kube-system")
		svc, err := svcs.Get(ctx, "across-cluster-dns-tcp", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		saved := svc.Status.LoadBalancer
		svc.Status.LoadBalancer = corev1.LoadBalancerStatus{}
		if svc, err = svcs.UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		expect("DNS Service without hostname", 2, " -> tidb-3 dns: tidb-3's Service kube-system/across-cluster-dns-tcp has no load-balancer hostname")
		svc.Status.LoadBalancer = saved // what the load-balancer controller does when it is back
		if _, err := svcs.UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		passes("hostname back", "--probe")
	})
}

package cli_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
)

// TestNodeGroupSubnetsGetRoutes: an EKS cluster's nodes may run outside the subnets it was created with,
// as eksctl adds node groups in subnets of their own. A managed node group's subnet and a self-managed
// node's subnet (an instance tagged kubernetes.io/cluster/<name>), each with a route table that no subnet of
// resourcesVpcConfig uses, get the mesh's routes; a subnet whose instance is tagged for another cluster, or
// whose tagged instance is terminated, does not. Destroy takes the routes out again.
func TestNodeGroupSubnetsGetRoutes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	eksNet := h.nets[0] // tidb-1, found by eks_cluster
	c := h.ec2(eksNet.Region)
	// subnetWithTable makes a subnet of tidb-1's VPC with a route table of its own.
	subnetWithTable := func(cidr string) (subnet, table string) {
		t.Helper()
		s, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(eksNet.VPCID), CidrBlock: aws.String(cidr),
			AvailabilityZone: aws.String(eksNet.Region + "a")})
		if err != nil {
			t.Fatal(err)
		}
		rt, err := c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: aws.String(eksNet.VPCID)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: rt.RouteTable.RouteTableId,
			SubnetId: s.Subnet.SubnetId}); err != nil {
			t.Fatal(err)
		}
		return aws.ToString(s.Subnet.SubnetId), aws.ToString(rt.RouteTable.RouteTableId)
	}
	instance := func(subnet, cluster string) string {
		t.Helper()
		out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1),
			MaxCount: aws.Int32(1), SubnetId: aws.String(subnet), TagSpecifications: []ec2types.TagSpecification{{
				ResourceType: ec2types.ResourceTypeInstance,
				Tags:         []ec2types.Tag{{Key: aws.String("kubernetes.io/cluster/" + cluster), Value: aws.String("owned")}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Instances[0].InstanceId)
	}

	managedSubnet, managedTable := subnetWithTable("10.1.10.0/24")
	if _, err := eks.NewFromConfig(h.moto.AWSConfig(eksNet.Region)).CreateNodegroup(ctx, &eks.CreateNodegroupInput{
		ClusterName: aws.String(eksNet.Name), NodegroupName: aws.String("ng-extra"),
		NodeRole: aws.String("arn:aws:iam::123456789012:role/nodes"), Subnets: []string{managedSubnet}}); err != nil {
		t.Fatal(err)
	}
	selfSubnet, selfTable := subnetWithTable("10.1.11.0/24")
	instance(selfSubnet, eksNet.Name)
	otherSubnet, otherTable := subnetWithTable("10.1.12.0/24")
	instance(otherSubnet, "someone-else")
	goneSubnet, goneTable := subnetWithTable("10.1.13.0/24")
	gone := instance(goneSubnet, eksNet.Name)
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{gone}}); err != nil {
		t.Fatal(err)
	}

	routes := func(table string) []string {
		t.Helper()
		out, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{table}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range out.RouteTables[0].Routes {
			if id := aws.ToString(r.VpcPeeringConnectionId); id != "" {
				got = append(got, aws.ToString(r.DestinationCidrBlock)+" via "+id[:4])
			}
		}
		slices.Sort(got)
		return got
	}
	r := h.mustRun(2, "plan", "--detailed-exitcode")
	for _, table := range []string{managedTable, selfTable} {
		if !strings.Contains(r.stdout, fmt.Sprintf("route[tidb-1:%s:10.2.0.0/16]", table)) {
			t.Errorf("the plan has no route in %s:\n%s", table, r.stdout)
		}
	}
	h.mustRun(0, "apply", "--auto-approve")
	want := []string{"10.2.0.0/16 via pcx-", "10.3.0.0/16 via pcx-"}
	for name, table := range map[string]string{"managed node group": managedTable, "self-managed node": selfTable} {
		if got := routes(table); !slices.Equal(got, want) {
			t.Errorf("route table %s of the %s's subnet: peering routes %v, want %v", table, name, got, want)
		}
	}
	for name, table := range map[string]string{"another cluster's instance": otherTable, "terminated instance": goneTable} {
		if got := routes(table); len(got) != 0 {
			t.Errorf("route table %s of the %s's subnet got routes %v", table, name, got)
		}
	}
	h.assertConverged(h.snapshot()) // the subnets of resourcesVpcConfig keep theirs
	h.mustRun(0, "plan", "--detailed-exitcode")

	h.mustRun(0, "destroy", "--auto-approve")
	for _, table := range []string{managedTable, selfTable} {
		if got := routes(table); len(got) != 0 {
			t.Errorf("route table %s keeps %v after destroy", table, got)
		}
	}
}

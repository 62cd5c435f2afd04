// Package sandbox builds the simulated world meshd runs against on one machine: AWS networks in moto laid
// out as eksctl would lay them out, and (for DNS) Kubernetes API servers with CoreDNS. Tests and `make demo`
// both use it, so the demo shows what the tests check.
package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ClusterNet describes one cluster's network to create.
type ClusterNet struct {
	Name   string
	Region string
	CIDR   string // the VPC's primary block, e.g. 10.1.0.0/16
	// EKS registers an EKS cluster with the VPC's subnets, and tags the node security group as eksctl's
	// shared node group, so that eks_cluster discovery can be exercised.
	EKS bool
	// PrivateEndpoint (with EKS) gives the EKS cluster an API endpoint with private access only and a
	// cluster security group of its own, apart from the node group, as EKS makes it.
	PrivateEndpoint bool
}

// Network is what CreateNetwork made for one cluster.
type Network struct {
	ClusterNet
	VPCID           string
	SubnetIDs       []string // [public (main route table), private (own route table)]
	MainRouteTable  string
	PrivateTable    string
	SecurityGroupID string
	InternetGateway string
	// ClusterSecurityGroupID is the EKS cluster security group (PrivateEndpoint only).
	ClusterSecurityGroupID string
}

// RouteTables are the cluster's route tables: the main one and the private subnet's.
func (n Network) RouteTables() []string { return []string{n.MainRouteTable, n.PrivateTable} }

// CreateNetwork makes a VPC with two subnets (one using the main route table, one with its own), an internet
// gateway route in the main table, and a node security group, as eksctl does for a cluster. Each step
// survives the SDK's retry of a call moto had already done (see Retried). A retried CreateVpc,
// CreateRouteTable or CreateInternetGateway makes a second, unused object and no error.
func CreateNetwork(ctx context.Context, cfg aws.Config, c ClusterNet) (Network, error) {
	client := ec2.NewFromConfig(cfg)
	n := Network{ClusterNet: c}
	vpc, err := client.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(c.CIDR)})
	if err != nil {
		return n, fmt.Errorf("creating VPC for %s: %w", c.Name, err)
	}
	n.VPCID = aws.ToString(vpc.Vpc.VpcId)

	tables, err := client.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{
		Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{n.VPCID}}}})
	if err != nil {
		return n, err
	}
	for _, t := range tables.RouteTables {
		n.MainRouteTable = aws.ToString(t.RouteTableId)
	}

	prefix := c.CIDR[:len(c.CIDR)-len(".0.0/16")]
	for i, az := range []string{"a", "b"} {
		cidr := fmt.Sprintf("%s.%d.0/24", prefix, i)
		s, err := client.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(n.VPCID),
			CidrBlock: aws.String(cidr), AvailabilityZone: aws.String(c.Region + az)})
		if Retried(err, "InvalidSubnet.Conflict") {
			// A retried create: the subnet with this block in this new VPC is the one the first attempt made.
			found, derr := client.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{
				{Name: aws.String("vpc-id"), Values: []string{n.VPCID}}, {Name: aws.String("cidr-block"), Values: []string{cidr}}}})
			if derr == nil && len(found.Subnets) == 1 {
				s, err = &ec2.CreateSubnetOutput{Subnet: &found.Subnets[0]}, nil
			}
		}
		if err != nil {
			return n, fmt.Errorf("creating subnet for %s: %w", c.Name, err)
		}
		n.SubnetIDs = append(n.SubnetIDs, aws.ToString(s.Subnet.SubnetId))
	}
	rt, err := client.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: aws.String(n.VPCID)})
	if err != nil {
		return n, err
	}
	n.PrivateTable = aws.ToString(rt.RouteTable.RouteTableId)
	if _, err := client.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{
		RouteTableId: aws.String(n.PrivateTable), SubnetId: aws.String(n.SubnetIDs[1])}); err != nil && !Retried(err, "Resource.AlreadyAssociated") {
		return n, err
	}
	igw, err := client.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})
	if err != nil {
		return n, err
	}
	n.InternetGateway = aws.ToString(igw.InternetGateway.InternetGatewayId)
	if _, err := client.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{
		InternetGatewayId: aws.String(n.InternetGateway), VpcId: aws.String(n.VPCID)}); err != nil && !Retried(err, "Resource.AlreadyAssociated") {
		return n, err
	}
	if _, err := client.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(n.MainRouteTable),
		DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: aws.String(n.InternetGateway)}); err != nil && !Retried(err, "RouteAlreadyExists") {
		return n, err
	}

	sgIn := &ec2.CreateSecurityGroupInput{VpcId: aws.String(n.VPCID), GroupName: aws.String(c.Name + "-nodes"),
		Description: aws.String("Communication between all nodes in the cluster")}
	if c.EKS {
		sgIn.TagSpecifications = []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: []ec2types.Tag{
			{Key: aws.String("alpha.eksctl.io/cluster-name"), Value: aws.String(c.Name)},
			{Key: aws.String("aws:cloudformation:logical-id"), Value: aws.String("ClusterSharedNodeSecurityGroup")},
		}}}
	}
	if n.SecurityGroupID, err = createGroup(ctx, client, sgIn); err != nil {
		return n, fmt.Errorf("creating node security group for %s: %w", c.Name, err)
	}
	if c.EKS && c.PrivateEndpoint {
		n.ClusterSecurityGroupID, err = createGroup(ctx, client, &ec2.CreateSecurityGroupInput{VpcId: aws.String(n.VPCID),
			GroupName: aws.String("eks-cluster-sg-" + c.Name), Description: aws.String("EKS created security group applied to ENI that is attached to EKS Control Plane master nodes")})
		if err != nil {
			return n, fmt.Errorf("creating cluster security group for %s: %w", c.Name, err)
		}
	}

	if c.EKS {
		if err := registerEKS(ctx, cfg, c.Name, n); err != nil {
			return n, err
		}
	}
	return n, nil
}

// createGroup creates a security group, tolerating an SDK retry of a call that had succeeded.
func createGroup(ctx context.Context, client *ec2.Client, in *ec2.CreateSecurityGroupInput) (string, error) {
	sg, err := client.CreateSecurityGroup(ctx, in)
	if Retried(err, "InvalidGroup.Duplicate") {
		found, derr := client.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
			{Name: aws.String("vpc-id"), Values: []string{aws.ToString(in.VpcId)}}, {Name: aws.String("group-name"), Values: []string{aws.ToString(in.GroupName)}}}})
		if derr == nil && len(found.SecurityGroups) == 1 {
			return aws.ToString(found.SecurityGroups[0].GroupId), nil
		}
	}
	if err != nil {
		return "", err
	}
	return aws.ToString(sg.GroupId), nil
}

// registerEKS creates an EKS cluster whose VPC config names the VPC. The SDK's CreateCluster cannot carry
// vpcId (AWS fills it in); moto echoes what the request holds, so a signed raw request carries it.
func registerEKS(ctx context.Context, cfg aws.Config, name string, n Network) error {
	vpcConfig := map[string]any{"subnetIds": n.SubnetIDs, "securityGroupIds": []string{n.SecurityGroupID}, "vpcId": n.VPCID}
	if n.PrivateEndpoint {
		vpcConfig["clusterSecurityGroupId"] = n.ClusterSecurityGroupID
		vpcConfig["endpointPrivateAccess"], vpcConfig["endpointPublicAccess"] = true, false
	}
	body, _ := json.Marshal(map[string]any{
		"name":               name,
		"roleArn":            "arn:aws:iam::123456789012:role/eks",
		"resourcesVpcConfig": vpcConfig,
	})
	url := aws.ToString(cfg.BaseEndpoint) + "/clusters"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return err
	}
	sum := sha256Hex(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, sum, "eks", cfg.Region, time.Now()); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("registering EKS cluster %s: HTTP %d", name, resp.StatusCode)
	}
	return nil
}

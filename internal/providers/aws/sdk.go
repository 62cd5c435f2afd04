package aws

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
)

// The SDK clients are not stored in the EC2API, EKSAPI and ELBv2API interfaces directly: meshd keeps method
// values of the operations it calls, and nothing else. A Go binary keeps every exported method of a type that
// reaches an interface (itself, or as a field of a type that does) as soon as any package calls reflect's
// Method or MethodByName with a computed name, and client-go's JSON codec does. *ec2.Client has about 700
// operations, each with its serializer and deserializer: 19 MB of code, and most of the memory an idle meshd
// keeps resident (docs/benchmarks.md). Through method values the linker keeps only the operations below.

// op is one SDK operation, as a method value of its client.
type op[In, Out, Opts any] func(context.Context, *In, ...func(*Opts)) (*Out, error)

// sdkEC2 is the EC2 client meshd uses: the operations of EC2API.
type sdkEC2 struct {
	describeVpcs                  op[ec2.DescribeVpcsInput, ec2.DescribeVpcsOutput, ec2.Options]
	describeSecurityGroups        op[ec2.DescribeSecurityGroupsInput, ec2.DescribeSecurityGroupsOutput, ec2.Options]
	describeRouteTables           op[ec2.DescribeRouteTablesInput, ec2.DescribeRouteTablesOutput, ec2.Options]
	describeVpcPeeringConnections op[ec2.DescribeVpcPeeringConnectionsInput, ec2.DescribeVpcPeeringConnectionsOutput, ec2.Options]
	describeSecurityGroupRules    op[ec2.DescribeSecurityGroupRulesInput, ec2.DescribeSecurityGroupRulesOutput, ec2.Options]
	createVpcPeeringConnection    op[ec2.CreateVpcPeeringConnectionInput, ec2.CreateVpcPeeringConnectionOutput, ec2.Options]
	acceptVpcPeeringConnection    op[ec2.AcceptVpcPeeringConnectionInput, ec2.AcceptVpcPeeringConnectionOutput, ec2.Options]
	deleteVpcPeeringConnection    op[ec2.DeleteVpcPeeringConnectionInput, ec2.DeleteVpcPeeringConnectionOutput, ec2.Options]
	createRoute                   op[ec2.CreateRouteInput, ec2.CreateRouteOutput, ec2.Options]
	replaceRoute                  op[ec2.ReplaceRouteInput, ec2.ReplaceRouteOutput, ec2.Options]
	deleteRoute                   op[ec2.DeleteRouteInput, ec2.DeleteRouteOutput, ec2.Options]
	authorizeSecurityGroupIngress op[ec2.AuthorizeSecurityGroupIngressInput, ec2.AuthorizeSecurityGroupIngressOutput, ec2.Options]
	revokeSecurityGroupIngress    op[ec2.RevokeSecurityGroupIngressInput, ec2.RevokeSecurityGroupIngressOutput, ec2.Options]
	createTags                    op[ec2.CreateTagsInput, ec2.CreateTagsOutput, ec2.Options]
	describeNetworkInterfaces     op[ec2.DescribeNetworkInterfacesInput, ec2.DescribeNetworkInterfacesOutput, ec2.Options]
	describeNetworkAcls           op[ec2.DescribeNetworkAclsInput, ec2.DescribeNetworkAclsOutput, ec2.Options]
	describeManagedPrefixLists    op[ec2.DescribeManagedPrefixListsInput, ec2.DescribeManagedPrefixListsOutput, ec2.Options]
	describeInstances             op[ec2.DescribeInstancesInput, ec2.DescribeInstancesOutput, ec2.Options]
}

func newEC2(cfg aws.Config) EC2API {
	c := ec2.NewFromConfig(cfg)
	return sdkEC2{
		describeVpcs:                  c.DescribeVpcs,
		describeSecurityGroups:        c.DescribeSecurityGroups,
		describeRouteTables:           c.DescribeRouteTables,
		describeVpcPeeringConnections: c.DescribeVpcPeeringConnections,
		describeSecurityGroupRules:    c.DescribeSecurityGroupRules,
		createVpcPeeringConnection:    c.CreateVpcPeeringConnection,
		acceptVpcPeeringConnection:    c.AcceptVpcPeeringConnection,
		deleteVpcPeeringConnection:    c.DeleteVpcPeeringConnection,
		createRoute:                   c.CreateRoute,
		replaceRoute:                  c.ReplaceRoute,
		deleteRoute:                   c.DeleteRoute,
		authorizeSecurityGroupIngress: c.AuthorizeSecurityGroupIngress,
		revokeSecurityGroupIngress:    c.RevokeSecurityGroupIngress,
		createTags:                    c.CreateTags,
		describeNetworkInterfaces:     c.DescribeNetworkInterfaces,
		describeNetworkAcls:           c.DescribeNetworkAcls,
		describeManagedPrefixLists:    c.DescribeManagedPrefixLists,
		describeInstances:             c.DescribeInstances,
	}
}

func (s sdkEC2) DescribeVpcs(ctx context.Context, in *ec2.DescribeVpcsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	return s.describeVpcs(ctx, in, optFns...)
}

func (s sdkEC2) DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	return s.describeSecurityGroups(ctx, in, optFns...)
}

func (s sdkEC2) DescribeRouteTables(ctx context.Context, in *ec2.DescribeRouteTablesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error) {
	return s.describeRouteTables(ctx, in, optFns...)
}

func (s sdkEC2) DescribeVpcPeeringConnections(ctx context.Context, in *ec2.DescribeVpcPeeringConnectionsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeVpcPeeringConnectionsOutput, error) {
	return s.describeVpcPeeringConnections(ctx, in, optFns...)
}

func (s sdkEC2) DescribeSecurityGroupRules(ctx context.Context, in *ec2.DescribeSecurityGroupRulesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupRulesOutput, error) {
	return s.describeSecurityGroupRules(ctx, in, optFns...)
}

func (s sdkEC2) CreateVpcPeeringConnection(ctx context.Context, in *ec2.CreateVpcPeeringConnectionInput, optFns ...func(*ec2.Options)) (*ec2.CreateVpcPeeringConnectionOutput, error) {
	return s.createVpcPeeringConnection(ctx, in, optFns...)
}

func (s sdkEC2) AcceptVpcPeeringConnection(ctx context.Context, in *ec2.AcceptVpcPeeringConnectionInput, optFns ...func(*ec2.Options)) (*ec2.AcceptVpcPeeringConnectionOutput, error) {
	return s.acceptVpcPeeringConnection(ctx, in, optFns...)
}

func (s sdkEC2) DeleteVpcPeeringConnection(ctx context.Context, in *ec2.DeleteVpcPeeringConnectionInput, optFns ...func(*ec2.Options)) (*ec2.DeleteVpcPeeringConnectionOutput, error) {
	return s.deleteVpcPeeringConnection(ctx, in, optFns...)
}

func (s sdkEC2) CreateRoute(ctx context.Context, in *ec2.CreateRouteInput, optFns ...func(*ec2.Options)) (*ec2.CreateRouteOutput, error) {
	return s.createRoute(ctx, in, optFns...)
}

func (s sdkEC2) ReplaceRoute(ctx context.Context, in *ec2.ReplaceRouteInput, optFns ...func(*ec2.Options)) (*ec2.ReplaceRouteOutput, error) {
	return s.replaceRoute(ctx, in, optFns...)
}

func (s sdkEC2) DeleteRoute(ctx context.Context, in *ec2.DeleteRouteInput, optFns ...func(*ec2.Options)) (*ec2.DeleteRouteOutput, error) {
	return s.deleteRoute(ctx, in, optFns...)
}

func (s sdkEC2) AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, optFns ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	return s.authorizeSecurityGroupIngress(ctx, in, optFns...)
}

func (s sdkEC2) RevokeSecurityGroupIngress(ctx context.Context, in *ec2.RevokeSecurityGroupIngressInput, optFns ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error) {
	return s.revokeSecurityGroupIngress(ctx, in, optFns...)
}

func (s sdkEC2) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, optFns ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	return s.createTags(ctx, in, optFns...)
}

func (s sdkEC2) DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	return s.describeNetworkInterfaces(ctx, in, optFns...)
}

func (s sdkEC2) DescribeNetworkAcls(ctx context.Context, in *ec2.DescribeNetworkAclsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error) {
	return s.describeNetworkAcls(ctx, in, optFns...)
}

// sdkEKS is the EKS client meshd uses.
type sdkEKS struct {
	describeCluster            op[eks.DescribeClusterInput, eks.DescribeClusterOutput, eks.Options]
	listNodegroups             op[eks.ListNodegroupsInput, eks.ListNodegroupsOutput, eks.Options]
	describeNodegroup          op[eks.DescribeNodegroupInput, eks.DescribeNodegroupOutput, eks.Options]
	describeAddon              op[eks.DescribeAddonInput, eks.DescribeAddonOutput, eks.Options]
	describeAddonConfiguration op[eks.DescribeAddonConfigurationInput, eks.DescribeAddonConfigurationOutput, eks.Options]
	updateAddon                op[eks.UpdateAddonInput, eks.UpdateAddonOutput, eks.Options]
	describeUpdate             op[eks.DescribeUpdateInput, eks.DescribeUpdateOutput, eks.Options]
}

func newEKS(cfg aws.Config) EKSAPI {
	c := eks.NewFromConfig(cfg)
	return sdkEKS{
		describeCluster:            c.DescribeCluster,
		listNodegroups:             c.ListNodegroups,
		describeNodegroup:          c.DescribeNodegroup,
		describeAddon:              c.DescribeAddon,
		describeAddonConfiguration: c.DescribeAddonConfiguration,
		updateAddon:                c.UpdateAddon,
		describeUpdate:             c.DescribeUpdate,
	}
}

func (s sdkEKS) DescribeAddon(ctx context.Context, in *eks.DescribeAddonInput, optFns ...func(*eks.Options)) (*eks.DescribeAddonOutput, error) {
	return s.describeAddon(ctx, in, optFns...)
}

func (s sdkEKS) DescribeAddonConfiguration(ctx context.Context, in *eks.DescribeAddonConfigurationInput, optFns ...func(*eks.Options)) (*eks.DescribeAddonConfigurationOutput, error) {
	return s.describeAddonConfiguration(ctx, in, optFns...)
}

func (s sdkEKS) UpdateAddon(ctx context.Context, in *eks.UpdateAddonInput, optFns ...func(*eks.Options)) (*eks.UpdateAddonOutput, error) {
	return s.updateAddon(ctx, in, optFns...)
}

func (s sdkEKS) DescribeUpdate(ctx context.Context, in *eks.DescribeUpdateInput, optFns ...func(*eks.Options)) (*eks.DescribeUpdateOutput, error) {
	return s.describeUpdate(ctx, in, optFns...)
}

func (s sdkEKS) DescribeCluster(ctx context.Context, in *eks.DescribeClusterInput, optFns ...func(*eks.Options)) (*eks.DescribeClusterOutput, error) {
	return s.describeCluster(ctx, in, optFns...)
}

func (s sdkEKS) ListNodegroups(ctx context.Context, in *eks.ListNodegroupsInput, optFns ...func(*eks.Options)) (*eks.ListNodegroupsOutput, error) {
	return s.listNodegroups(ctx, in, optFns...)
}

func (s sdkEKS) DescribeNodegroup(ctx context.Context, in *eks.DescribeNodegroupInput, optFns ...func(*eks.Options)) (*eks.DescribeNodegroupOutput, error) {
	return s.describeNodegroup(ctx, in, optFns...)
}

// sdkELB is the ELBv2 client meshd uses.
type sdkELB struct {
	describeLoadBalancers op[elb.DescribeLoadBalancersInput, elb.DescribeLoadBalancersOutput, elb.Options]
}

func newELB(cfg aws.Config) ELBv2API { return sdkELB{elb.NewFromConfig(cfg).DescribeLoadBalancers} }

func (s sdkELB) DescribeLoadBalancers(ctx context.Context, in *elb.DescribeLoadBalancersInput, optFns ...func(*elb.Options)) (*elb.DescribeLoadBalancersOutput, error) {
	return s.describeLoadBalancers(ctx, in, optFns...)
}

func (s sdkEC2) DescribeManagedPrefixLists(ctx context.Context, in *ec2.DescribeManagedPrefixListsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeManagedPrefixListsOutput, error) {
	return s.describeManagedPrefixLists(ctx, in, optFns...)
}

func (s sdkEC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return s.describeInstances(ctx, in, optFns...)
}

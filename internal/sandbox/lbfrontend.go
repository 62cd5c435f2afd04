package sandbox

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	corev1 "k8s.io/api/core/v1"
)

// Annotations of the AWS Load Balancer Controller about an NLB's frontend security groups.
const (
	// AnnotationSecurityGroups names the frontend groups to attach instead of one the controller makes.
	AnnotationSecurityGroups = "service.beta.kubernetes.io/aws-load-balancer-security-groups"
	// AnnotationSourceRanges is the older way to give spec.loadBalancerSourceRanges (used when the field is empty).
	AnnotationSourceRanges = "service.beta.kubernetes.io/load-balancer-source-ranges"
)

// What the stand-in does for frontend security groups, as the AWS Load Balancer Controller v2.6+ documents
// it (docs/deploy/security_groups.md, guide/service/annotations.md "Access control"): unless the Service
// names its groups (AnnotationSecurityGroups, IDs here), the controller makes one group per NLB in the
// cluster's VPC, named k8s-<namespace, 8>-<name, 8>-<10 hex> and described "[k8s] Managed SecurityGroup for
// LoadBalancer", attaches it to the NLB, and lets in each listener port from the Service's
// spec.loadBalancerSourceRanges, else from the source-ranges annotation, else, for an internal NLB, from
// the VPC's CIDR blocks (0.0.0.0/0 for an internet-facing one). It keeps the rules at exactly those blocks
// when they change, and deletes the group with the NLB. (Its backend group and the node group rules are not
// stood in for: the sandbox's traffic does not pass through security groups.)
//
// moto 5.2 keeps an NLB's SecurityGroups as given to CreateLoadBalancer and SetSecurityGroups, and returns
// them from DescribeLoadBalancers.

// frontendGroupName is the name of the group the stand-in makes for a Service's NLB.
func frontendGroupName(cluster, namespace, name string) string {
	lb := LBName(cluster, namespace, name)
	return lb[:len(lb)-10] + sha256Hex([]byte("frontend-sg/" + cluster + "/" + namespace + "/" + name))[:10]
}

// frontendCIDRs are the blocks the NLB's frontend group admits for svc.
func frontendCIDRs(svc *corev1.Service, vpcCIDRs []string) []string {
	cidrs := slices.Clone(svc.Spec.LoadBalancerSourceRanges)
	if len(cidrs) == 0 {
		for _, c := range strings.Split(svc.Annotations[AnnotationSourceRanges], ",") {
			if c = strings.TrimSpace(c); c != "" {
				cidrs = append(cidrs, c)
			}
		}
	}
	if len(cidrs) == 0 {
		if svc.Annotations[AnnotationScheme] == "internet-facing" {
			return []string{"0.0.0.0/0"}
		}
		return slices.Clone(vpcCIDRs)
	}
	return cidrs
}

// frontendGroups makes sure the security groups svc's NLB should have exist with the right rules, and
// returns them: the Service's own (AnnotationSecurityGroups), or the group the stand-in manages.
func (c *LBController) frontendGroups(ctx context.Context, cl LBCluster, ec2c *ec2.Client, svc *corev1.Service, key string) ([]string, error) {
	if named := svc.Annotations[AnnotationSecurityGroups]; named != "" {
		var ids []string
		for _, id := range strings.Split(named, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
		return ids, nil
	}
	vpcs, err := ec2c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{cl.VPCID}})
	if err != nil || len(vpcs.Vpcs) != 1 {
		return nil, fmt.Errorf("describing VPC %s: %v", cl.VPCID, err)
	}
	var vpcCIDRs []string
	for _, a := range vpcs.Vpcs[0].CidrBlockAssociationSet {
		if a.CidrBlockState == nil || a.CidrBlockState.State == ec2types.VpcCidrBlockStateCodeAssociated {
			vpcCIDRs = append(vpcCIDRs, aws.ToString(a.CidrBlock))
		}
	}
	if len(vpcCIDRs) == 0 {
		vpcCIDRs = []string{aws.ToString(vpcs.Vpcs[0].CidrBlock)}
	}

	name := frontendGroupName(cl.Name, svc.Namespace, svc.Name)
	id, err := findGroup(ctx, ec2c, cl.VPCID, name)
	if err != nil {
		return nil, err
	}
	if id == "" {
		if id, err = createGroup(ctx, ec2c, &ec2.CreateSecurityGroupInput{VpcId: aws.String(cl.VPCID), GroupName: aws.String(name),
			Description: aws.String("[k8s] Managed SecurityGroup for LoadBalancer"),
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: []ec2types.Tag{
				{Key: aws.String("elbv2.k8s.aws/cluster"), Value: aws.String(cl.Name)},
				{Key: aws.String("service.k8s.aws/stack"), Value: aws.String(key)},
				{Key: aws.String("service.k8s.aws/resource"), Value: aws.String("ManagedLBSecurityGroup")},
			}}}}); err != nil {
			return nil, fmt.Errorf("creating frontend security group %s: %w", name, err)
		}
		c.logf("lb %s: %s: created frontend security group %s (%s)", cl.Name, key, name, id)
	}

	type perm struct {
		protocol string
		port     int32
		cidr     string
	}
	want := map[perm]bool{}
	for _, p := range svc.Spec.Ports {
		for _, cidr := range frontendCIDRs(svc, vpcCIDRs) {
			want[perm{strings.ToLower(string(p.Protocol)), p.Port, cidr}] = true
		}
	}
	rules, err := ec2c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{id}}}})
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, r := range rules.SecurityGroupRules {
		if aws.ToBool(r.IsEgress) || aws.ToString(r.GroupId) != id {
			continue
		}
		p := perm{aws.ToString(r.IpProtocol), aws.ToInt32(r.FromPort), aws.ToString(r.CidrIpv4)}
		if want[p] && aws.ToInt32(r.ToPort) == p.port {
			delete(want, p)
			continue
		}
		stale = append(stale, aws.ToString(r.SecurityGroupRuleId))
	}
	for p := range want {
		_, err := ec2c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id),
			IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String(p.protocol), FromPort: aws.Int32(p.port), ToPort: aws.Int32(p.port),
				IpRanges: []ec2types.IpRange{{CidrIp: aws.String(p.cidr)}}}}})
		if err != nil && !Retried(err, "InvalidPermission.Duplicate") {
			return nil, fmt.Errorf("admitting %s %d/%s into %s: %w", p.cidr, p.port, p.protocol, id, err)
		}
		c.logf("lb %s: %s: %s admits %s on %d/%s", cl.Name, key, id, p.cidr, p.port, p.protocol)
	}
	if len(stale) > 0 {
		if _, err := ec2c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(id),
			SecurityGroupRuleIds: stale}); err != nil && !Retried(err, "InvalidPermission.NotFound") {
			return nil, fmt.Errorf("revoking %v from %s: %w", stale, id, err)
		}
		c.logf("lb %s: %s: %s no longer has rules %v", cl.Name, key, id, stale)
	}
	return []string{id}, nil
}

// attachGroups sets the NLB's security groups to groups when they differ.
func (c *LBController) attachGroups(ctx context.Context, cl LBCluster, lbs *elbv2.Client, lb *elbtypes.LoadBalancer, groups []string, key string) error {
	if slices.Equal(slices.Sorted(slices.Values(lb.SecurityGroups)), slices.Sorted(slices.Values(groups))) {
		return nil
	}
	if _, err := lbs.SetSecurityGroups(ctx, &elbv2.SetSecurityGroupsInput{LoadBalancerArn: lb.LoadBalancerArn, SecurityGroups: groups}); err != nil {
		return fmt.Errorf("setting the security groups of NLB %s: %w", aws.ToString(lb.LoadBalancerName), err)
	}
	c.logf("lb %s: %s: NLB %s has security groups %v", cl.Name, key, aws.ToString(lb.LoadBalancerName), groups)
	return nil
}

// deleteFrontendGroup deletes the group the stand-in made for a Service's NLB, once the NLB is gone.
func deleteFrontendGroup(ctx context.Context, cl LBCluster, ec2c *ec2.Client, namespace, name string) error {
	id, err := findGroup(ctx, ec2c, cl.VPCID, frontendGroupName(cl.Name, namespace, name))
	if err != nil || id == "" {
		return err
	}
	_, err = ec2c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
	if Retried(err, "InvalidGroup.NotFound") {
		return nil
	}
	return err
}

// findGroup returns the ID of the security group named name in a VPC, or "" when there is none.
func findGroup(ctx context.Context, ec2c *ec2.Client, vpc, name string) (string, error) {
	out, err := ec2c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}}, {Name: aws.String("group-name"), Values: []string{name}}}})
	if err != nil {
		return "", err
	}
	for _, g := range out.SecurityGroups {
		if aws.ToString(g.GroupName) == name && aws.ToString(g.VpcId) == vpc {
			return aws.ToString(g.GroupId), nil
		}
	}
	return "", nil
}

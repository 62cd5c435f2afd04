package aws

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/meshd-io/meshd/internal/model"
)

// TargetGroupAPI is what describing a load_balancer block's target group needs: the group, its health
// (the registered targets), its load balancer, and that load balancer's subnets.
type TargetGroupAPI interface {
	DescribeTargetGroups(context.Context, *elb.DescribeTargetGroupsInput, ...func(*elb.Options)) (*elb.DescribeTargetGroupsOutput, error)
	DescribeTargetHealth(context.Context, *elb.DescribeTargetHealthInput, ...func(*elb.Options)) (*elb.DescribeTargetHealthOutput, error)
	DescribeLoadBalancers(context.Context, *elb.DescribeLoadBalancersInput, ...func(*elb.Options)) (*elb.DescribeLoadBalancersOutput, error)
	DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
}

// sdkTargetGroups holds method values of the operations TargetGroupAPI has (see sdk.go for why).
type sdkTargetGroups struct {
	describeTargetGroups  op[elb.DescribeTargetGroupsInput, elb.DescribeTargetGroupsOutput, elb.Options]
	describeTargetHealth  op[elb.DescribeTargetHealthInput, elb.DescribeTargetHealthOutput, elb.Options]
	describeLoadBalancers op[elb.DescribeLoadBalancersInput, elb.DescribeLoadBalancersOutput, elb.Options]
	describeSubnets       op[ec2.DescribeSubnetsInput, ec2.DescribeSubnetsOutput, ec2.Options]
}

func (s sdkTargetGroups) DescribeTargetGroups(ctx context.Context, in *elb.DescribeTargetGroupsInput, o ...func(*elb.Options)) (*elb.DescribeTargetGroupsOutput, error) {
	return s.describeTargetGroups(ctx, in, o...)
}

func (s sdkTargetGroups) DescribeTargetHealth(ctx context.Context, in *elb.DescribeTargetHealthInput, o ...func(*elb.Options)) (*elb.DescribeTargetHealthOutput, error) {
	return s.describeTargetHealth(ctx, in, o...)
}

func (s sdkTargetGroups) DescribeLoadBalancers(ctx context.Context, in *elb.DescribeLoadBalancersInput, o ...func(*elb.Options)) (*elb.DescribeLoadBalancersOutput, error) {
	return s.describeLoadBalancers(ctx, in, o...)
}

func (s sdkTargetGroups) DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, o ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return s.describeSubnets(ctx, in, o...)
}

func (p *Provider) targetGroupAPI(region string) TargetGroupAPI {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.tgs[region]; ok {
		return c
	}
	if p.tgs == nil {
		p.tgs = map[string]TargetGroupAPI{}
	}
	var c TargetGroupAPI
	if p.opts.TargetGroupClients != nil {
		c = p.opts.TargetGroupClients(region)
	} else {
		cfg := p.Config(region)
		e, x := elb.NewFromConfig(cfg), ec2.NewFromConfig(cfg)
		c = sdkTargetGroups{e.DescribeTargetGroups, e.DescribeTargetHealth, e.DescribeLoadBalancers, x.DescribeSubnets}
	}
	p.tgs[region] = c
	return c
}

// TargetGroup describes the target group arn of a region with its registered targets and the network of
// the load balancer in front of it: its security groups, else its subnets' CIDR blocks (the sources of a
// secondary's TargetGroupBinding ingress). Three calls, four without security groups.
func (p *Provider) TargetGroup(ctx context.Context, region, arn string) (model.TargetGroup, error) {
	c := p.targetGroupAPI(region)
	tgs, err := c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{arn}})
	if err != nil {
		return model.TargetGroup{}, fmt.Errorf("describing target group %s: %w", arn, classified(err))
	}
	if len(tgs.TargetGroups) == 0 {
		return model.TargetGroup{}, fmt.Errorf("target group %s not found in %s", arn, region)
	}
	g := tgs.TargetGroups[0]
	out := model.TargetGroup{ARN: arn, Region: region, VPCID: aws.ToString(g.VpcId), TargetType: string(g.TargetType),
		Protocol: string(g.Protocol), Port: aws.ToInt32(g.Port)}
	health, err := c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
	if err != nil {
		return model.TargetGroup{}, fmt.Errorf("describing the targets of %s: %w", arn, classified(err))
	}
	for _, d := range health.TargetHealthDescriptions {
		t := model.Target{}
		if d.Target != nil {
			t.ID, t.Port = aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port)
		}
		if d.TargetHealth != nil {
			t.State = string(d.TargetHealth.State)
		}
		out.Targets = append(out.Targets, t)
	}
	slices.SortFunc(out.Targets, func(a, b model.Target) int {
		if a.ID != b.ID {
			if a.ID < b.ID {
				return -1
			}
			return 1
		}
		return int(a.Port - b.Port)
	})
	if len(g.LoadBalancerArns) == 0 {
		return out, nil
	}
	out.LoadBalancerARN = g.LoadBalancerArns[0]
	lbs, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{out.LoadBalancerARN}})
	if err != nil {
		return model.TargetGroup{}, fmt.Errorf("describing load balancer %s: %w", out.LoadBalancerARN, classified(err))
	}
	if len(lbs.LoadBalancers) == 0 {
		return out, nil
	}
	lb := lbs.LoadBalancers[0]
	out.SecurityGroups = slices.Sorted(slices.Values(lb.SecurityGroups))
	if len(out.SecurityGroups) > 0 {
		return out, nil
	}
	var subnets []string
	for _, z := range lb.AvailabilityZones {
		if z.SubnetId != nil {
			subnets = append(subnets, *z.SubnetId)
		}
	}
	if len(subnets) == 0 {
		return out, nil
	}
	sn, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: subnets})
	if err != nil {
		return model.TargetGroup{}, fmt.Errorf("describing the subnets of %s: %w", out.LoadBalancerARN, classified(err))
	}
	for _, s := range sn.Subnets {
		if s.CidrBlock != nil {
			out.SubnetCIDRs = append(out.SubnetCIDRs, *s.CidrBlock)
		}
	}
	slices.Sort(out.SubnetCIDRs)
	out.SubnetCIDRs = slices.Compact(out.SubnetCIDRs)
	return out, nil
}

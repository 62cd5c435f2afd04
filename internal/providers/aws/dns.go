package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/poll"
)

// ELBv2API is the part of the ELBv2 client meshd uses: finding the NLB behind a DNS Service.
type ELBv2API interface {
	DescribeLoadBalancers(context.Context, *elb.DescribeLoadBalancersInput, ...func(*elb.Options)) (*elb.DescribeLoadBalancersOutput, error)
}

// ProgressEvery is how often a long wait reports that it is still waiting, by default.
const ProgressEvery = 10 * time.Second

// ELB returns the ELBv2 client for a region, built from Config(region) (so AWS_ENDPOINT_URL and the
// provider's APIOptions apply).
func (p *Provider) ELB(region string) ELBv2API { return p.elbFor(model.Access{}, region) }

// elbFor is the ELBv2 client of an account's region, made on first use with the access's credentials (the
// default ones, or the role's).
func (p *Provider) elbFor(a model.Access, region string) ELBv2API {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := clientKey{a, region}
	if c, ok := p.elb[key]; ok {
		return c
	}
	if p.elb == nil {
		p.elb = map[clientKey]ELBv2API{}
	}
	var c ELBv2API
	if p.opts.ELBClients != nil {
		c = p.opts.ELBClients(region)
	} else {
		c = newELB(p.configLocked(a, region))
	}
	p.elb[key] = c
	return c
}

// ENIDescription is the description AWS gives the network interfaces of a network load balancer:
// "ELB net/<name>/<id>", from the last two segments of its ARN (…:loadbalancer/net/<name>/<id>). The type
// segment is not copied from the ARN: meshd only looks for NLBs, and moto writes "app" there for them too.
func ENIDescription(arn string) string {
	_, path, ok := strings.Cut(arn, ":loadbalancer/")
	parts := strings.Split(path, "/")
	if !ok || len(parts) != 3 {
		return ""
	}
	return "ELB net/" + parts[1] + "/" + parts[2]
}

func sameHost(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// LoadBalancers finds the load balancers of a region whose DNS names are among hostnames (a Service's
// status.loadBalancer hostname), with the private addresses of active ones. It costs one paginated
// DescribeLoadBalancers and one DescribeNetworkInterfaces filtered by all their descriptions, however many
// hostnames. The hostname is matched against DNSName, never cut apart: its format is AWS's business.
func (p *Provider) LoadBalancers(ctx context.Context, region string, hostnames []string) (map[string]model.LoadBalancer, error) {
	return p.LoadBalancersIn(ctx, model.Access{}, region, hostnames)
}

// LoadBalancersIn is LoadBalancers in the account the access reaches (a member's assumed role).
func (p *Provider) LoadBalancersIn(ctx context.Context, a model.Access, region string, hostnames []string) (map[string]model.LoadBalancer, error) {
	out := map[string]model.LoadBalancer{}
	if len(hostnames) == 0 {
		return out, nil
	}
	pages := elb.NewDescribeLoadBalancersPaginator(p.elbFor(a, region), &elb.DescribeLoadBalancersInput{})
	byDescription := map[string]string{} // ENI description -> hostname
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing load balancers in %s: %w", region, classified(err))
		}
		for _, lb := range page.LoadBalancers {
			dns := aws.ToString(lb.DNSName)
			i := slices.IndexFunc(hostnames, func(h string) bool { return sameHost(h, dns) })
			if i < 0 {
				continue
			}
			m := model.LoadBalancer{Name: aws.ToString(lb.LoadBalancerName), ARN: aws.ToString(lb.LoadBalancerArn), DNSName: dns}
			if lb.State != nil {
				m.State = string(lb.State.Code)
			}
			if len(lb.SecurityGroups) > 0 {
				m.SecurityGroups = slices.Sorted(slices.Values(lb.SecurityGroups))
			}
			out[hostnames[i]] = m
			if d := ENIDescription(m.ARN); d != "" && m.State == model.LoadBalancerActive {
				byDescription[d] = hostnames[i]
			}
		}
	}
	if len(byDescription) == 0 {
		return out, nil
	}
	descriptions := sortedKeys(byDescription)
	for _, chunk := range chunks(descriptions) {
		enis := ec2.NewDescribeNetworkInterfacesPaginator(p.ec2For(a, region), &ec2.DescribeNetworkInterfacesInput{
			Filters: []ec2types.Filter{filter("description", chunk)}})
		for enis.HasMorePages() {
			page, err := enis.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("listing the network interfaces of load balancers in %s: %w", region, classified(err))
			}
			for _, eni := range page.NetworkInterfaces {
				host, ok := byDescription[aws.ToString(eni.Description)]
				if !ok {
					continue // an emulator that ignores the filter
				}
				lb := out[host]
				for _, a := range eni.PrivateIpAddresses {
					if ip := aws.ToString(a.PrivateIpAddress); ip != "" {
						lb.Addresses = append(lb.Addresses, ip)
					}
				}
				if len(eni.PrivateIpAddresses) == 0 && aws.ToString(eni.PrivateIpAddress) != "" {
					lb.Addresses = append(lb.Addresses, aws.ToString(eni.PrivateIpAddress))
				}
				out[host] = lb
			}
		}
	}
	for host, lb := range out {
		slices.Sort(lb.Addresses)
		lb.Addresses = slices.Compact(lb.Addresses)
		out[host] = lb
	}
	return out, nil
}

// GroupIngressIn reads the ingress rules with a CIDR source of security groups in a region, in the account
// the access reaches, by group ID: for meshctl verify, the frontend groups of the members' NLBs. A group
// without such rules has no entry. One paginated DescribeSecurityGroupRules per 200 groups.
func (p *Provider) GroupIngressIn(ctx context.Context, a model.Access, region string, groupIDs []string) (map[string][]model.SecurityGroupRule, error) {
	obs := model.NewObserved()
	if err := describeRules(ctx, p.ec2For(a, region), groupIDs, false, obs); err != nil {
		return nil, fmt.Errorf("reading the rules of %s in %s: %w", strings.Join(groupIDs, ", "), a.In(region), classified(err))
	}
	return obs.Rules, nil
}

// WaitLoadBalancer waits until the load balancer whose DNS name is hostname exists, is active and has
// network interfaces, and returns it. It reports progress every Options.ProgressEvery, prefixed with address (the
// change waiting), and gives up after the provider's WaitTimeout.
func (p *Provider) WaitLoadBalancer(ctx context.Context, region, hostname, address string) (model.LoadBalancer, error) {
	return p.WaitLoadBalancerIn(ctx, model.Access{}, region, hostname, address)
}

// WaitLoadBalancerIn is WaitLoadBalancer in the account the access reaches.
func (p *Provider) WaitLoadBalancerIn(ctx context.Context, a model.Access, region, hostname, address string) (model.LoadBalancer, error) {
	var lb model.LoadBalancer
	var status string
	err := poll.Until(ctx, p.waitOptions(), func(ctx context.Context) (bool, error) {
		lbs, err := p.LoadBalancersIn(ctx, a, region, []string{hostname})
		if err != nil {
			return false, err
		}
		var found bool
		lb, found = lbs[hostname]
		status = "no load balancer has that DNS name yet"
		switch {
		case found && lb.State == model.LoadBalancerActive && len(lb.Addresses) > 0:
			return true, nil
		case found && lb.State == model.LoadBalancerActive:
			status = fmt.Sprintf("NLB %s is active but has no network interfaces yet", lb.Name)
		case found:
			status = fmt.Sprintf("NLB %s is %s", lb.Name, orUnknownState(lb.State))
		}
		return false, nil
	}, func(waited time.Duration) {
		p.progress("%s: still waiting for the load balancer %s: %s [%s elapsed]", address, hostname, status, waited)
	})
	if ended, ok := errors.AsType[*poll.Ended](err); ok {
		return model.LoadBalancer{}, fmt.Errorf("waiting for the load balancer %s in %s: %s after %s: %w",
			hostname, region, status, ended.Waited, ended.Err)
	}
	if err != nil {
		return model.LoadBalancer{}, err
	}
	return lb, nil
}

func orUnknownState(s string) string {
	if s == "" {
		return "in an unknown state"
	}
	return s
}

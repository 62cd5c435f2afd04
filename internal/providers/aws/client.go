// Package aws observes and changes the AWS side of a mesh: VPCs, route tables, peering connections and
// security-group rules (and, for DNS, load balancers and their network interfaces).
//
// It talks to AWS only through the narrow interfaces below, with exact aws-sdk-go-v2 signatures, so tests can
// put a stateful stub behind them and integration tests can point the real SDK at moto (AWS_ENDPOINT_URL).
package aws

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/poll"
)

// EC2API is the part of the EC2 client meshd uses.
type EC2API interface {
	DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DescribeRouteTables(context.Context, *ec2.DescribeRouteTablesInput, ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error)
	DescribeVpcPeeringConnections(context.Context, *ec2.DescribeVpcPeeringConnectionsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcPeeringConnectionsOutput, error)
	DescribeSecurityGroupRules(context.Context, *ec2.DescribeSecurityGroupRulesInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupRulesOutput, error)

	CreateVpcPeeringConnection(context.Context, *ec2.CreateVpcPeeringConnectionInput, ...func(*ec2.Options)) (*ec2.CreateVpcPeeringConnectionOutput, error)
	AcceptVpcPeeringConnection(context.Context, *ec2.AcceptVpcPeeringConnectionInput, ...func(*ec2.Options)) (*ec2.AcceptVpcPeeringConnectionOutput, error)
	DeleteVpcPeeringConnection(context.Context, *ec2.DeleteVpcPeeringConnectionInput, ...func(*ec2.Options)) (*ec2.DeleteVpcPeeringConnectionOutput, error)
	CreateRoute(context.Context, *ec2.CreateRouteInput, ...func(*ec2.Options)) (*ec2.CreateRouteOutput, error)
	ReplaceRoute(context.Context, *ec2.ReplaceRouteInput, ...func(*ec2.Options)) (*ec2.ReplaceRouteOutput, error)
	DeleteRoute(context.Context, *ec2.DeleteRouteInput, ...func(*ec2.Options)) (*ec2.DeleteRouteOutput, error)
	AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	RevokeSecurityGroupIngress(context.Context, *ec2.RevokeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error)
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)

	// DescribeNetworkInterfaces finds the private addresses of a DNS load balancer (see dns.go).
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	// DescribeNetworkAcls is for meshctl verify only (Options.ObserveNetwork).
	DescribeNetworkAcls(context.Context, *ec2.DescribeNetworkAclsInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error)
	// DescribeManagedPrefixLists gives the size (max entries) of prefix lists that node-group rules
	// reference, which is what they count for toward the inbound-rules quota; called only when there are such
	// rules.
	DescribeManagedPrefixLists(context.Context, *ec2.DescribeManagedPrefixListsInput, ...func(*ec2.Options)) (*ec2.DescribeManagedPrefixListsOutput, error)
	// DescribeInstances finds the subnets of self-managed node groups of EKS clusters (instances tagged
	// kubernetes.io/cluster/<name>): one call per region with eks_cluster members.
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// EKSAPI is the part of the EKS client meshd uses.
type EKSAPI interface {
	DescribeCluster(context.Context, *eks.DescribeClusterInput, ...func(*eks.Options)) (*eks.DescribeClusterOutput, error)
	// ListNodegroups and DescribeNodegroup find the subnets of an EKS cluster's managed node groups, which
	// may lie outside the subnets the cluster was created with (eksctl adds node groups in new ones).
	ListNodegroups(context.Context, *eks.ListNodegroupsInput, ...func(*eks.Options)) (*eks.ListNodegroupsOutput, error)
	DescribeNodegroup(context.Context, *eks.DescribeNodegroupInput, ...func(*eks.Options)) (*eks.DescribeNodegroupOutput, error)
	// The CoreDNS add-on (addon.go): observed, and written with dns { corefile_via = "eks_addon" }.
	DescribeAddon(context.Context, *eks.DescribeAddonInput, ...func(*eks.Options)) (*eks.DescribeAddonOutput, error)
	DescribeAddonConfiguration(context.Context, *eks.DescribeAddonConfigurationInput, ...func(*eks.Options)) (*eks.DescribeAddonConfigurationOutput, error)
	UpdateAddon(context.Context, *eks.UpdateAddonInput, ...func(*eks.Options)) (*eks.UpdateAddonOutput, error)
	DescribeUpdate(context.Context, *eks.DescribeUpdateInput, ...func(*eks.Options)) (*eks.DescribeUpdateOutput, error)
}

// Options configure a Provider.
type Options struct {
	// Mesh is the mesh name: the value of the meshd.io/mesh tag on what meshd creates.
	Mesh string
	// APIOptions are added to every client's middleware stack (call counting, fault injection in tests).
	APIOptions []func(*middleware.Stack) error
	// PollInterval is how often a wait (a peering becoming active) asks AWS again. Default 2s.
	PollInterval time.Duration
	// WaitTimeout bounds one wait. Default 10 minutes.
	WaitTimeout time.Duration
	// ProgressEvery is how often a long wait reports that it is still waiting. Default ProgressEvery.
	ProgressEvery time.Duration
	// RequestTimeout bounds one HTTP request to AWS, retries apart. Default 30s: an endpoint that accepts
	// connections but never answers (a black-holed network path) must not hang a pass, and with it the
	// daemon's other corrections; a timeout is retried like any transient error.
	RequestTimeout time.Duration
	// Progress receives a line now and then during long waits; nil discards them.
	Progress func(msg string)
	// ObserveNetwork makes Observe also read what meshctl verify checks and the planner does not need: the
	// network ACLs of the members' VPCs (one more DescribeNetworkAcls call per region) and the egress rules
	// of the node security groups (from the DescribeSecurityGroupRules call Observe makes anyway). Off,
	// meshd's idle AWS calls stay what they were.
	ObserveNetwork bool
	// Clients replaces the SDK clients (for tests with stubs). Nil uses the SDK's default chain.
	Clients func(region string) (EC2API, EKSAPI)
	// AccountClients replaces the SDK clients of members with an assumed role (for tests with stubs); nil
	// gives them Clients' too.
	AccountClients func(a model.Access, region string) (EC2API, EKSAPI)
	// ELBClients replaces the ELBv2 clients (for tests with stubs). Nil builds them from Config(region).
	ELBClients func(region string) ELBv2API
	// TargetGroupClients replaces the clients TargetGroup uses (for tests with stubs).
	TargetGroupClients func(region string) TargetGroupAPI
	// Corefile reads the Corefile of a cluster's kube-system/coredns ConfigMap through its kube context:
	// the add-on's default Corefile, when its configuration has none, is that text without meshd's blocks
	// (addon.go). Nil: such a change fails.
	Corefile func(ctx context.Context, kubeContext string) (string, error)
}

// Provider is the AWS side of meshd: one client set per account access (the default credentials, or an
// assumed role) and region, created on first use.
type Provider struct {
	opts Options
	base aws.Config

	mu      sync.Mutex
	regions map[clientKey]*regionClients
	creds   map[model.Access]aws.CredentialsProvider // one cache per assumed role, shared by its regions
	elb     map[clientKey]ELBv2API                   // by access and region (elbFor)
	tgs     map[string]TargetGroupAPI
}

// clientKey names a client set: whose credentials, which region.
type clientKey struct {
	access model.Access
	region string
}

type regionClients struct {
	ec2 EC2API
	eks EKSAPI
}

// New loads the SDK's standard configuration (environment, shared profiles, IRSA web identity; and
// AWS_ENDPOINT_URL, which points it at an emulator) and returns a Provider.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if opts.PollInterval == 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.WaitTimeout == 0 {
		opts.WaitTimeout = 10 * time.Minute
	}
	if opts.ProgressEvery == 0 {
		opts.ProgressEvery = ProgressEvery
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	p := &Provider{opts: opts, regions: map[clientKey]*regionClients{}, creds: map[model.Access]aws.CredentialsProvider{}}
	if opts.Clients != nil {
		return p, nil
	}
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(opts.RequestTimeout)),
		// The standard retryer backs off on throttling (RequestLimitExceeded) and transient errors; the EC2
		// token buckets refill slowly (5 mutations a second), so allow more attempts and longer backoff.
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 8
				o.MaxBackoff = 20 * time.Second
			})
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	cfg.APIOptions = append(cfg.APIOptions, opts.APIOptions...)
	p.base = cfg
	return p, nil
}

func (p *Provider) clients(region string) *regionClients { return p.clientsFor(model.Access{}, region) }

// clientsFor returns the clients that act in a region with the given access: the default credentials for
// the zero Access, else those of the assumed role. Every call for a member's objects goes through here.
func (p *Provider) clientsFor(a model.Access, region string) *regionClients {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := clientKey{a, region}
	if c, ok := p.regions[key]; ok {
		return c
	}
	c := &regionClients{}
	switch {
	case p.opts.AccountClients != nil && a != (model.Access{}):
		c.ec2, c.eks = p.opts.AccountClients(a, region)
	case p.opts.Clients != nil:
		c.ec2, c.eks = p.opts.Clients(region)
	default:
		cfg := p.configLocked(a, region)
		c.ec2 = newEC2(cfg)
		c.eks = newEKS(cfg)
	}
	p.regions[key] = c
	return c
}

// configLocked is the SDK configuration for a region with the given access. An assumed role's credentials
// come from STS AssumeRole, made with the default credentials, and are cached (aws.NewCredentialsCache
// renews them shortly before they expire) once per role for all regions. p.mu is held.
func (p *Provider) configLocked(a model.Access, region string) aws.Config {
	cfg := p.base.Copy()
	cfg.Region = region
	if a.AssumeRole == "" {
		return cfg
	}
	creds, ok := p.creds[a]
	if !ok {
		stsClient := sts.NewFromConfig(cfg)
		creds = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, a.AssumeRole, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "meshd-" + p.opts.Mesh
			if a.ExternalID != "" {
				o.ExternalID = aws.String(a.ExternalID)
			}
		}))
		p.creds[a] = creds
	}
	cfg.Credentials = creds
	return cfg
}

// ec2For and eksFor are the clients of a member's account in its region.
func (p *Provider) ec2For(a model.Access, region string) EC2API { return p.clientsFor(a, region).ec2 }
func (p *Provider) eksFor(a model.Access, region string) EKSAPI { return p.clientsFor(a, region).eks }

// EC2 returns the EC2 client for a region.
func (p *Provider) EC2(region string) EC2API { return p.clients(region).ec2 }

// EKS returns the EKS client for a region.
func (p *Provider) EKS(region string) EKSAPI { return p.clients(region).eks }

// Config returns a copy of the SDK configuration for a region, for other services (ELBv2) built on it.
func (p *Provider) Config(region string) aws.Config {
	cfg := p.base.Copy()
	cfg.Region = region
	return cfg
}

// ConfigFor returns the SDK configuration for a region with the given access (an assumed role's
// credentials cached per role): what a kind registered in kindio reads and writes with.
func (p *Provider) ConfigFor(a model.Access, region string) aws.Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.configLocked(a, region)
}

// waitOptions time the provider's waits (a peering, a load balancer).
func (p *Provider) waitOptions() poll.Options {
	return poll.Options{Interval: p.opts.PollInterval, Timeout: p.opts.WaitTimeout, ProgressEvery: p.opts.ProgressEvery}
}

func (p *Provider) progress(format string, args ...any) {
	if p.opts.Progress != nil {
		p.opts.Progress(fmt.Sprintf(format, args...))
	}
}

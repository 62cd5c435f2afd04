package aws

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
)

// maxFilterValues is how many values one Describe filter takes; longer lists are split into several calls.
const maxFilterValues = 200

// eksctl tags its shared node security group with the cluster name and this CloudFormation logical ID.
const (
	tagEksctlCluster   = "alpha.eksctl.io/cluster-name"
	tagCFNLogicalID    = "aws:cloudformation:logical-id"
	eksctlSharedNodeSG = "ClusterSharedNodeSecurityGroup"
)

// Observation is the result of Observe: the spec's clusters resolved to members, and what AWS holds.
type Observation struct {
	Members  []model.Member // in spec order; only clusters that resolved without errors
	Observed *model.Observed
}

// Former is what the state says meshd made that the spec may no longer name: the members it recorded, and
// the Transit Gateways and gateway route tables its records name. A mesh that switched from the gateway
// topology back to peering reads those (plan.RecordedGateways) to find what meshd made there and remove it.
type Former struct {
	Members                 map[string]model.Member
	Gateways, GatewayTables []string
}

// Observe resolves every cluster of the spec (EKS discovery or named VPC and security group) and reads the
// AWS objects meshd plans against, for those clusters and for former members (clusters removed from the spec
// since the last apply, whose objects may need cleaning up).
//
// Each cluster is observed with its own access (its assumed role, or the default credentials): the work is
// split by access and region, and each part sees only its account's objects.
//
// The cost is a constant number of filtered, paginated Describe calls per access, region and resource kind,
// however many clusters the mesh has (plus, per eks_cluster, EKS's DescribeCluster, ListNodegroups and a
// DescribeNodegroup per node group, which have no batch form).
// Problems with the spec's references (an unknown VPC, say) are diagnostics against the spec; failures to
// talk to AWS are errors.
func (p *Provider) Observe(ctx context.Context, m *spec.Mesh, was Former) (*Observation, hcl.Diagnostics, error) {
	former := was.Members
	type regionWork struct {
		clusters []*spec.Cluster
		former   []model.Member
	}
	work := map[clientKey]*regionWork{}
	get := func(a model.Access, region string) *regionWork {
		k := clientKey{a, region}
		if work[k] == nil {
			work[k] = &regionWork{}
		}
		return work[k]
	}
	for _, c := range m.Clusters {
		if c.External() {
			continue // meshd leaves its network alone: nothing of it is in AWS
		}
		w := get(accessOf(c), c.Region)
		w.clusters = append(w.clusters, c)
	}
	for _, f := range sortedMembers(former) {
		// A cluster that left the spec, or turned external since the state recorded its VPC: what meshd made
		// there is found through that record.
		if c := m.Cluster(f.Name); (c == nil || c.External()) && !f.External {
			w := get(f.Access, f.Region)
			w.former = append(w.former, f)
		}
	}

	type regionResult struct {
		members map[string]model.Member
		obs     *model.Observed
		diags   hcl.Diagnostics
		err     error
	}
	results := map[clientKey]*regionResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for key, w := range work {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &regionResult{obs: model.NewObserved()}
			r.members, r.diags, r.err = p.observeRegion(ctx, key, w.clusters, w.former, r.obs)
			if r.err == nil {
				r.err = p.observeTransitGateways(ctx, key, m, was, r.obs)
			}
			mu.Lock()
			results[key] = r
			mu.Unlock()
		}()
	}
	wg.Wait()

	out := &Observation{Observed: model.NewObserved()}
	var diags hcl.Diagnostics
	members := map[string]model.Member{}
	keys := slices.Collect(maps.Keys(results))
	slices.SortFunc(keys, func(a, b clientKey) int { return strings.Compare(a.String(), b.String()) })
	for _, key := range keys {
		r := results[key]
		if r.err != nil {
			return nil, diags, fmt.Errorf("observing %s: %w", key, classified(r.err))
		}
		diags = append(diags, r.diags...)
		for k, v := range r.members {
			members[k] = v
		}
		merge(out.Observed, r.obs)
	}
	for _, c := range m.Clusters {
		if c.External() {
			out.Members = append(out.Members, model.Member{Name: c.Name, External: true})
		} else if mem, ok := members[c.Name]; ok {
			out.Members = append(out.Members, mem)
		}
	}
	// Regions are observed in parallel; report in the order a reader meets the problems in the spec.
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		if a == nil || b == nil {
			return b != nil
		}
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	return out, diags, nil
}

// accessOf is the access a spec cluster names.
func accessOf(c *spec.Cluster) model.Access {
	return model.Access{AssumeRole: c.AssumeRole, ExternalID: c.ExternalID}
}

// String names a client set in errors: the region, and the role when there is one.
func (k clientKey) String() string { return k.access.In(k.region) }

func (p *Provider) observeRegion(ctx context.Context, key clientKey, clusters []*spec.Cluster, former []model.Member, obs *model.Observed) (map[string]model.Member, hcl.Diagnostics, error) {
	var diags hcl.Diagnostics
	region := key.region
	ec2c := p.ec2For(key.access, region)

	// EKS clusters name their VPC, subnets and cluster security group.
	eksInfo := map[string]*eksCluster{}
	unresolved := map[string]bool{} // already diagnosed
	for _, c := range clusters {
		if c.EKSCluster == "" {
			continue
		}
		info, err := p.describeEKS(ctx, key.access, region, c.EKSCluster)
		if HasCode(err, codeEKSNotFound) {
			unresolved[c.Name] = true
			diags = append(diags, diagAt(c, "eks_cluster", "Unknown EKS cluster",
				fmt.Sprintf("There is no EKS cluster %q in %s (cluster %q). Check the name and region.", c.EKSCluster, region, c.Name)))
			continue
		}
		if err != nil {
			return nil, diags, err
		}
		if info.vpcID == "" {
			unresolved[c.Name] = true
			diags = append(diags, diagAt(c, "eks_cluster", "EKS cluster has no VPC",
				fmt.Sprintf("EKS cluster %q in %s reports no VPC; name it with vpc_id and security_group_id instead.", c.EKSCluster, region)))
			continue
		}
		eksInfo[c.Name] = info
		if info.endpoint.Server != "" {
			if obs.APIEndpoints == nil {
				obs.APIEndpoints = map[string]model.APIEndpoint{}
			}
			obs.APIEndpoints[c.Name] = info.endpoint
		}
		if info.autoMode {
			if obs.EKSAutoMode == nil {
				obs.EKSAutoMode = map[string]bool{}
			}
			obs.EKSAutoMode[c.Name] = true
		}
	}
	if err := selfManagedSubnets(ctx, ec2c, clusters, eksInfo); err != nil {
		return nil, diags, err
	}

	vpcIDs := map[string]bool{}
	for _, c := range clusters {
		if info := eksInfo[c.Name]; info != nil {
			vpcIDs[info.vpcID] = true
		} else if c.VPCID != "" {
			vpcIDs[c.VPCID] = true
		}
	}
	for _, f := range former {
		vpcIDs[f.VPCID] = true
	}
	vpcList := sortedKeys(vpcIDs)
	if len(vpcList) == 0 {
		return nil, diags, nil
	}

	if err := p.describeVPCs(ctx, ec2c, region, vpcList, obs); err != nil {
		return nil, diags, err
	}
	groups, err := describeGroups(ctx, ec2c, vpcList)
	if err != nil {
		return nil, diags, err
	}
	if err := describeRouteTables(ctx, ec2c, region, vpcList, obs); err != nil {
		return nil, diags, err
	}
	if err := describePeerings(ctx, ec2c, region, vpcIDs, obs); err != nil {
		return nil, diags, err
	}

	members := map[string]model.Member{}
	for _, c := range clusters {
		if unresolved[c.Name] {
			continue
		}
		mem, d := resolve(c, eksInfo[c.Name], obs, groups)
		diags = append(diags, d...)
		if !d.HasErrors() {
			members[c.Name] = mem
		}
	}

	groupIDs := map[string]bool{}
	for _, mem := range append(slices.Collect(maps.Values(members)), former...) {
		for _, g := range []string{mem.SecurityGroupID, mem.ClusterSecurityGroupID} {
			if g != "" {
				groupIDs[g] = true
			}
		}
	}
	if err := describeRules(ctx, ec2c, sortedKeys(groupIDs), p.opts.ObserveNetwork, obs); err != nil {
		return nil, diags, err
	}
	if p.opts.ObserveNetwork {
		if err := describeNACLs(ctx, ec2c, vpcList, obs); err != nil {
			return nil, diags, err
		}
	}
	return members, diags, nil
}

type eksCluster struct {
	vpcID, clusterSG string
	// subnets are where the cluster's nodes may run: the subnets it was created with (resourcesVpcConfig),
	// those of its managed node groups, and those of the instances tagged as its (self-managed node
	// groups). Node groups added later often get subnets of their own (eksctl makes new ones).
	subnets  []string
	endpoint model.APIEndpoint
	autoMode bool // computeConfig.enabled: EKS Auto Mode
}

func (e *eksCluster) addSubnets(ids ...string) {
	for _, id := range ids {
		if id != "" && !slices.Contains(e.subnets, id) {
			e.subnets = append(e.subnets, id)
		}
	}
}

// describeEKS reads an EKS cluster's VPC configuration and the subnets of its managed node groups: EKS
// calls per cluster (DescribeCluster, ListNodegroups, a DescribeNodegroup per group), which have no batch
// form.
func (p *Provider) describeEKS(ctx context.Context, a model.Access, region, name string) (*eksCluster, error) {
	client := p.eksFor(a, region)
	out, err := client.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(name)})
	if err != nil {
		return nil, err
	}
	info := &eksCluster{}
	if out.Cluster != nil && out.Cluster.ResourcesVpcConfig != nil {
		vc := out.Cluster.ResourcesVpcConfig
		info.vpcID = aws.ToString(vc.VpcId)
		info.clusterSG = aws.ToString(vc.ClusterSecurityGroupId)
		info.addSubnets(vc.SubnetIds...)
		info.endpoint.PublicAccess, info.endpoint.PrivateAccess = vc.EndpointPublicAccess, vc.EndpointPrivateAccess
	}
	if out.Cluster != nil {
		info.autoMode = out.Cluster.ComputeConfig != nil && aws.ToBool(out.Cluster.ComputeConfig.Enabled)
		info.endpoint.Server = aws.ToString(out.Cluster.Endpoint)
		if ca := out.Cluster.CertificateAuthority; ca != nil {
			// EKS returns the CA bundle base64-encoded; one that does not decode is left out (and the
			// kubeconfig then names no CA).
			info.endpoint.CAData, _ = base64.StdEncoding.DecodeString(aws.ToString(ca.Data))
		}
	}
	pages := eks.NewListNodegroupsPaginator(client, &eks.ListNodegroupsInput{ClusterName: aws.String(name)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, ng := range page.Nodegroups {
			d, err := client.DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{ClusterName: aws.String(name), NodegroupName: aws.String(ng)})
			if HasCode(err, codeEKSNotFound) {
				continue // deleted since it was listed
			}
			if err != nil {
				return nil, err
			}
			if d.Nodegroup != nil {
				info.addSubnets(d.Nodegroup.Subnets...)
			}
		}
	}
	return info, nil
}

// tagClusterPrefix starts the tag that marks an instance as a node of an EKS cluster
// (kubernetes.io/cluster/<name> = owned or shared): how self-managed node groups, which EKS does not list,
// are found.
const tagClusterPrefix = "kubernetes.io/cluster/"

// liveInstanceStates are the states of instances that are, or may again be, nodes.
var liveInstanceStates = []string{"pending", "running", "stopping", "stopped"}

// selfManagedSubnets adds to each EKS member the subnets of the instances in its VPC tagged as its nodes:
// one filtered, paginated DescribeInstances per region for all of the region's EKS clusters, by their tag
// keys (none when the region has no EKS member).
func selfManagedSubnets(ctx context.Context, c EC2API, clusters []*spec.Cluster, eksInfo map[string]*eksCluster) error {
	byTag := map[string]*eksCluster{}
	for _, cl := range clusters {
		if info := eksInfo[cl.Name]; info != nil {
			byTag[tagClusterPrefix+cl.EKSCluster] = info
		}
	}
	if len(byTag) == 0 {
		return nil
	}
	for _, chunk := range chunks(sortedKeys(byTag)) {
		pages := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			filter("tag-key", chunk), filter("instance-state-name", liveInstanceStates)}})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, r := range page.Reservations {
				for _, in := range r.Instances {
					if in.State != nil && !slices.Contains(liveInstanceStates, string(in.State.Name)) {
						continue
					}
					for _, t := range in.Tags {
						if info := byTag[aws.ToString(t.Key)]; info != nil && aws.ToString(in.VpcId) == info.vpcID {
							info.addSubnets(aws.ToString(in.SubnetId))
						}
					}
				}
			}
		}
	}
	return nil
}

func chunks(ids []string) [][]string {
	var out [][]string
	for len(ids) > maxFilterValues {
		out = append(out, ids[:maxFilterValues])
		ids = ids[maxFilterValues:]
	}
	return append(out, ids)
}

func filter(name string, values []string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String(name), Values: values}
}

func (p *Provider) describeVPCs(ctx context.Context, c EC2API, region string, ids []string, obs *model.Observed) error {
	want := setOf(ids)
	for _, chunk := range chunks(ids) {
		pages := ec2.NewDescribeVpcsPaginator(c, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{filter("vpc-id", chunk)}})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, v := range page.Vpcs {
				id := aws.ToString(v.VpcId)
				if !want[id] {
					continue
				}
				vpc := model.VPC{ID: id, Region: region, OwnerID: aws.ToString(v.OwnerId)}
				primary := aws.ToString(v.CidrBlock)
				vpc.CIDRs = append(vpc.CIDRs, primary)
				for _, a := range v.CidrBlockAssociationSet {
					cidr := aws.ToString(a.CidrBlock)
					if cidr == primary || (a.CidrBlockState != nil && a.CidrBlockState.State != ec2types.VpcCidrBlockStateCodeAssociated) {
						continue
					}
					vpc.CIDRs = append(vpc.CIDRs, cidr)
				}
				obs.VPCs[id] = vpc
			}
		}
	}
	return nil
}

type securityGroup struct {
	id, vpcID string
	tags      map[string]string
}

func describeGroups(ctx context.Context, c EC2API, vpcIDs []string) (map[string]securityGroup, error) {
	want := setOf(vpcIDs)
	groups := map[string]securityGroup{}
	for _, chunk := range chunks(vpcIDs) {
		pages := ec2.NewDescribeSecurityGroupsPaginator(c, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{filter("vpc-id", chunk)}})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, g := range page.SecurityGroups {
				if !want[aws.ToString(g.VpcId)] {
					continue
				}
				id := aws.ToString(g.GroupId)
				groups[id] = securityGroup{id: id, vpcID: aws.ToString(g.VpcId), tags: tagMap(g.Tags)}
			}
		}
	}
	return groups, nil
}

func describeRouteTables(ctx context.Context, c EC2API, region string, vpcIDs []string, obs *model.Observed) error {
	want := setOf(vpcIDs)
	for _, chunk := range chunks(vpcIDs) {
		pages := ec2.NewDescribeRouteTablesPaginator(c, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{filter("vpc-id", chunk)}})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, t := range page.RouteTables {
				if !want[aws.ToString(t.VpcId)] {
					continue
				}
				rt := &model.RouteTable{ID: aws.ToString(t.RouteTableId), Region: region, VPCID: aws.ToString(t.VpcId)}
				for _, a := range t.Associations {
					if aws.ToBool(a.Main) {
						rt.Main = true
					}
					if s := aws.ToString(a.SubnetId); s != "" {
						rt.SubnetIDs = append(rt.SubnetIDs, s)
					}
				}
				for _, r := range t.Routes {
					dest := aws.ToString(r.DestinationCidrBlock)
					if dest == "" {
						continue // IPv6 and prefix-list routes are none of meshd's business
					}
					rt.Routes = append(rt.Routes, model.Route{
						DestinationCIDR: dest,
						PeeringID:       aws.ToString(r.VpcPeeringConnectionId),
						Target:          routeTarget(r),
						State:           string(r.State),
						Propagated:      r.Origin == ec2types.RouteOriginEnableVgwRoutePropagation,
					})
				}
				obs.RouteTables[rt.ID] = rt
			}
		}
	}
	return nil
}

// routeTarget names a route's non-peering target, for conflict messages.
func routeTarget(r ec2types.Route) string {
	for _, s := range []*string{r.GatewayId, r.NatGatewayId, r.TransitGatewayId, r.NetworkInterfaceId,
		r.InstanceId, r.CarrierGatewayId, r.LocalGatewayId, r.EgressOnlyInternetGatewayId, r.CoreNetworkArn} {
		if v := aws.ToString(s); v != "" {
			return v
		}
	}
	return ""
}

// describePeerings lists the peerings with one side in this region's member VPCs: one call for the
// requester side, one for the accepter side. moto ignores these filters (real AWS honours them), so the
// result is filtered here as well.
func describePeerings(ctx context.Context, c EC2API, region string, vpcIDs map[string]bool, obs *model.Observed) error {
	ids := sortedKeys(vpcIDs)
	for _, side := range []string{"requester-vpc-info.vpc-id", "accepter-vpc-info.vpc-id"} {
		for _, chunk := range chunks(ids) {
			pages := ec2.NewDescribeVpcPeeringConnectionsPaginator(c, &ec2.DescribeVpcPeeringConnectionsInput{
				Filters: []ec2types.Filter{filter(side, chunk)}})
			for pages.HasMorePages() {
				page, err := pages.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, pc := range page.VpcPeeringConnections {
					p := peeringFromAPI(pc, region)
					if vpcIDs[p.RequesterVPC] || vpcIDs[p.AccepterVPC] {
						mergePeering(obs, p)
					}
				}
			}
		}
	}
	return nil
}

func peeringFromAPI(pc ec2types.VpcPeeringConnection, region string) model.ObservedPeering {
	p := model.ObservedPeering{ID: aws.ToString(pc.VpcPeeringConnectionId), Tags: tagMap(pc.Tags)}
	if v := pc.RequesterVpcInfo; v != nil {
		p.RequesterVPC, p.RequesterRegion = aws.ToString(v.VpcId), aws.ToString(v.Region)
	}
	if v := pc.AccepterVpcInfo; v != nil {
		p.AccepterVPC, p.AccepterRegion = aws.ToString(v.VpcId), aws.ToString(v.Region)
	}
	if p.RequesterRegion == "" {
		p.RequesterRegion = region
	}
	if p.AccepterRegion == "" {
		p.AccepterRegion = region
	}
	if pc.Status != nil {
		p.Status = string(pc.Status.Code)
	}
	return p
}

// statusRank orders peering statuses when the two regions of a cross-region peering disagree for a moment:
// an end state seen on either side wins, then the most advanced live state.
func statusRank(s string) int {
	switch s {
	case model.PeeringRejected, model.PeeringDeleted, model.PeeringDeleting, model.PeeringExpired, model.PeeringFailed:
		return 5
	case model.PeeringActive:
		return 4
	case model.PeeringProvision:
		return 3
	case model.PeeringPending:
		return 2
	}
	return 1
}

// mergePeering adds p to obs, combining the views of a cross-region peering from its two regions (AWS keeps
// tags per region: the requester's side carries meshd's).
func mergePeering(obs *model.Observed, p model.ObservedPeering) {
	old, ok := obs.Peerings[p.ID]
	if !ok {
		obs.Peerings[p.ID] = p
		return
	}
	if statusRank(p.Status) > statusRank(old.Status) {
		old.Status = p.Status
	}
	for k, v := range p.Tags {
		if old.Tags == nil {
			old.Tags = map[string]string{}
		}
		if _, have := old.Tags[k]; !have {
			old.Tags[k] = v
		}
	}
	obs.Peerings[p.ID] = old
}

func describeRules(ctx context.Context, c EC2API, groupIDs []string, egress bool, obs *model.Observed) error {
	if len(groupIDs) == 0 {
		return nil
	}
	want := setOf(groupIDs)
	prefixLists := map[string][]string{} // prefix lists referenced by each group's ingress rules
	for _, chunk := range chunks(groupIDs) {
		pages := ec2.NewDescribeSecurityGroupRulesPaginator(c, &ec2.DescribeSecurityGroupRulesInput{
			Filters: []ec2types.Filter{filter("group-id", chunk)}})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, r := range page.SecurityGroupRules {
				g := aws.ToString(r.GroupId)
				if !want[g] {
					continue
				}
				if aws.ToString(r.CidrIpv4) == "" {
					// IPv6 rules have a quota of their own; an ingress rule referencing a group or a prefix
					// list counts toward the IPv4 one.
					if !aws.ToBool(r.IsEgress) && (r.ReferencedGroupInfo != nil || aws.ToString(r.PrefixListId) != "") {
						obs.ReferencingRules[g]++
					}
					if pl := aws.ToString(r.PrefixListId); pl != "" && !aws.ToBool(r.IsEgress) {
						prefixLists[g] = append(prefixLists[g], pl)
					}
					continue
				}
				rule := model.SecurityGroupRule{
					ID: aws.ToString(r.SecurityGroupRuleId), GroupID: g, Protocol: aws.ToString(r.IpProtocol),
					FromPort: aws.ToInt32(r.FromPort), ToPort: aws.ToInt32(r.ToPort), CIDR: aws.ToString(r.CidrIpv4),
					Description: aws.ToString(r.Description), Tags: tagMap(r.Tags),
				}
				if aws.ToBool(r.IsEgress) {
					if egress {
						if obs.Egress == nil {
							obs.Egress = map[string][]model.SecurityGroupRule{}
						}
						obs.Egress[g] = append(obs.Egress[g], rule)
					}
					continue
				}
				obs.Rules[g] = append(obs.Rules[g], rule)
			}
		}
	}
	if err := countPrefixListEntries(ctx, c, prefixLists, obs); err != nil {
		return err
	}
	for g := range obs.Rules {
		sort.Slice(obs.Rules[g], func(i, j int) bool { return obs.Rules[g][i].ID < obs.Rules[g][j].ID })
	}
	for g := range obs.Egress {
		sort.Slice(obs.Egress[g], func(i, j int) bool { return obs.Egress[g][i].ID < obs.Egress[g][j].ID })
	}
	return nil
}

// describeNACLs reads the network ACLs of the VPCs, with their entries and subnet associations: one
// filtered, paginated call per region.
func describeNACLs(ctx context.Context, c EC2API, vpcIDs []string, obs *model.Observed) error {
	want := setOf(vpcIDs)
	if obs.NACLs == nil {
		obs.NACLs = map[string]model.NetworkACL{}
	}
	for _, chunk := range chunks(vpcIDs) {
		in := &ec2.DescribeNetworkAclsInput{Filters: []ec2types.Filter{filter("vpc-id", chunk)}}
		for {
			page, err := c.DescribeNetworkAcls(ctx, in)
			if err != nil {
				return err
			}
			for _, a := range page.NetworkAcls {
				if !want[aws.ToString(a.VpcId)] {
					continue
				}
				acl := model.NetworkACL{ID: aws.ToString(a.NetworkAclId), VPCID: aws.ToString(a.VpcId), Default: aws.ToBool(a.IsDefault)}
				for _, as := range a.Associations {
					if s := aws.ToString(as.SubnetId); s != "" {
						acl.SubnetIDs = append(acl.SubnetIDs, s)
					}
				}
				sort.Strings(acl.SubnetIDs)
				for _, e := range a.Entries {
					cidr := aws.ToString(e.CidrBlock)
					if cidr == "" {
						continue // IPv6
					}
					ent := model.NACLEntry{RuleNumber: aws.ToInt32(e.RuleNumber), Egress: aws.ToBool(e.Egress),
						Protocol: aws.ToString(e.Protocol), CIDR: cidr, Allow: e.RuleAction == ec2types.RuleActionAllow}
					if e.PortRange != nil {
						ent.FromPort, ent.ToPort = aws.ToInt32(e.PortRange.From), aws.ToInt32(e.PortRange.To)
					}
					acl.Entries = append(acl.Entries, ent)
				}
				sort.SliceStable(acl.Entries, func(i, j int) bool { return acl.Entries[i].RuleNumber < acl.Entries[j].RuleNumber })
				obs.NACLs[acl.ID] = acl
			}
			if aws.ToString(page.NextToken) == "" {
				break
			}
			in.NextToken = page.NextToken
		}
	}
	return nil
}

// resolve turns a spec cluster into a member from what was observed in its region.
func resolve(c *spec.Cluster, info *eksCluster, obs *model.Observed, groups map[string]securityGroup) (model.Member, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	mem := model.Member{Name: c.Name, Region: c.Region, Access: accessOf(c)}
	vpcAttr := "vpc_id"
	if info != nil {
		mem.VPCID = info.vpcID
		vpcAttr = "eks_cluster"
	} else {
		mem.VPCID = c.VPCID
	}
	vpc, ok := obs.VPCs[mem.VPCID]
	if !ok {
		return mem, hcl.Diagnostics{diagAt(c, vpcAttr, "Unknown VPC",
			fmt.Sprintf("VPC %s of cluster %q does not exist in %s.", mem.VPCID, c.Name, c.Region))}
	}
	mem.OwnerID = vpc.OwnerID

	// CIDR blocks: all of the VPC's, or the ones cidr_blocks names, which must belong to the VPC.
	mem.CIDRs = vpc.CIDRs
	if len(c.CIDRBlocks) > 0 {
		mem.CIDRs = nil
		for _, b := range c.CIDRBlocks {
			if !containsCIDR(vpc.CIDRs, b) {
				diags = append(diags, diagAt(c, "cidr_blocks", "CIDR block not in the VPC",
					fmt.Sprintf("%s is not a CIDR block of VPC %s (it has %v).", b, vpc.ID, vpc.CIDRs)))
				continue
			}
			mem.CIDRs = append(mem.CIDRs, b)
		}
	}

	// Route tables: the ones named, all of the VPC's, or (EKS) those of the cluster's subnets.
	var main string
	bySubnet := map[string]string{}
	var vpcTables []string
	for _, rt := range obs.RouteTables {
		if rt.VPCID != mem.VPCID {
			continue
		}
		vpcTables = append(vpcTables, rt.ID)
		if rt.Main {
			main = rt.ID
		}
		for _, s := range rt.SubnetIDs {
			bySubnet[s] = rt.ID
		}
	}
	sort.Strings(vpcTables)
	switch {
	case len(c.RouteTableIDs) > 0:
		for _, id := range c.RouteTableIDs {
			if rt, ok := obs.RouteTables[id]; !ok || rt.VPCID != mem.VPCID {
				diags = append(diags, diagAt(c, "route_table_ids", "Unknown route table",
					fmt.Sprintf("Route table %s is not in VPC %s of cluster %q.", id, mem.VPCID, c.Name)))
				continue
			}
			mem.RouteTableIDs = append(mem.RouteTableIDs, id)
		}
	case info != nil:
		tables := map[string]bool{}
		for _, s := range info.subnets {
			if rt, ok := bySubnet[s]; ok {
				tables[rt] = true
			} else if main != "" {
				tables[main] = true // a subnet without an explicit association uses the main table
			}
		}
		mem.RouteTableIDs = sortedKeys(tables)
		if len(info.subnets) == 0 {
			mem.RouteTableIDs = vpcTables
		}
	default:
		mem.RouteTableIDs = vpcTables
	}
	sort.Strings(mem.RouteTableIDs)

	// Node security group: named, or eksctl's shared node group, or the EKS cluster security group.
	switch {
	case info == nil:
		g, ok := groups[c.SecurityGroupID]
		if !ok || g.vpcID != mem.VPCID {
			diags = append(diags, diagAt(c, "security_group_id", "Unknown security group",
				fmt.Sprintf("Security group %s is not in VPC %s of cluster %q.", c.SecurityGroupID, mem.VPCID, c.Name)))
		}
		mem.SecurityGroupID = c.SecurityGroupID
	default:
		for _, id := range sortedKeys(groups) {
			g := groups[id]
			if g.vpcID == mem.VPCID && g.tags[tagEksctlCluster] == c.EKSCluster && g.tags[tagCFNLogicalID] == eksctlSharedNodeSG {
				mem.SecurityGroupID = id
				break
			}
		}
		if mem.SecurityGroupID == "" {
			mem.SecurityGroupID = info.clusterSG
		} else if info.clusterSG != mem.SecurityGroupID {
			mem.ClusterSecurityGroupID = info.clusterSG
		}
		if mem.SecurityGroupID == "" {
			diags = append(diags, diagAt(c, "eks_cluster", "No node security group found",
				fmt.Sprintf("EKS cluster %q has neither an eksctl shared node security group nor a cluster security group; "+
					"name the VPC and group with vpc_id and security_group_id instead.", c.EKSCluster)))
		}
	}
	return mem, diags
}

func containsCIDR(list []string, cidr string) bool {
	want, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false
	}
	for _, c := range list {
		if p, err := netip.ParsePrefix(c); err == nil && p == want.Masked() {
			return true
		}
	}
	return false
}

func diagAt(c *spec.Cluster, attr, summary, detail string) *hcl.Diagnostic {
	r := c.AttrRange(attr)
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r}
}

// merge adds what one (access, region) observed to the whole. Every map field of model.Observed is merged
// by copying its entries (a field added for a new kind is merged without touching this function, which
// once silently dropped EKSAutoMode); peerings, which both sides of a cross-region pair report, keep the
// most advanced status (mergePeering).
func merge(dst, src *model.Observed) {
	for _, p := range src.Peerings {
		mergePeering(dst, p)
	}
	d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for i := 0; i < s.NumField(); i++ {
		sf, df := s.Field(i), d.Field(i)
		// An empty map that is not nil is kept: the Transit Gateway maps are nil when they were not read.
		if sf.Kind() != reflect.Map || s.Type().Field(i).Name == "Peerings" || sf.IsNil() {
			continue
		}
		if df.IsNil() {
			df.Set(reflect.MakeMap(sf.Type()))
		}
		for it := sf.MapRange(); it.Next(); {
			df.SetMapIndex(it.Key(), it.Value())
		}
	}
}

func tagMap(tags []ec2types.Tag) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func setOf(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedMembers(m map[string]model.Member) []model.Member {
	out := make([]model.Member, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

// countPrefixListEntries weighs each rule that references a prefix list by the list's max entries, as AWS
// does for the inbound-rules quota (describeRules counted it once): one DescribeManagedPrefixLists call, made
// only when such rules exist.
func countPrefixListEntries(ctx context.Context, c EC2API, byGroup map[string][]string, obs *model.Observed) error {
	var ids []string
	for _, pls := range byGroup {
		ids = append(ids, pls...)
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	size := map[string]int{}
	for _, chunk := range chunks(ids) {
		pages := ec2.NewDescribeManagedPrefixListsPaginator(c, &ec2.DescribeManagedPrefixListsInput{PrefixListIds: chunk})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, pl := range page.PrefixLists {
				size[aws.ToString(pl.PrefixListId)] = int(aws.ToInt32(pl.MaxEntries))
			}
		}
	}
	for g, pls := range byGroup {
		for _, pl := range pls {
			if n := size[pl]; n > 1 {
				obs.ReferencingRules[g] += n - 1
			}
		}
	}
	return nil
}

package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
)

// The IAM permissions of a spec. Every AWS call meshd makes is made with one of two kinds of credentials:
// meshd's own (the SDK's default chain), or a member's assume_role, assumed with meshd's own. A policy is
// printed for one of those identities at a time:
//
//	identity                 what it does
//	meshd's own ("")         everything for the members without assume_role, sts:AssumeRole on each role
//	                         the spec names, and the calls the AWS provider makes with the default
//	                         credentials whatever the member: the EKS CoreDNS add-on (DescribeAddon, and
//	                         with corefile_via = "eks_addon" the add-on update) and the load_balancer
//	                         blocks' target groups
//	a member's role          everything done for the members naming that role: observing their VPCs,
//	                         route tables, groups, peerings, EKS clusters and NLBs, and the peering,
//	                         route and rule changes in their account
//
// A kind states its permissions per member (access.Statement.Role), and IAMOf keeps one identity's. The
// observation that no kind owns (the Describe calls of every pass, the NLB and target-group look-ups, STS)
// is iamBase's. Both sides of a peering get the peering permissions (create, accept, delete): which member
// requests is the planner's choice, and an adopted peering keeps the direction it was made with.

// IAMOf returns the IAM statements for the identity that makes cluster's AWS calls under the spec m; ""
// is meshd's own credentials. A cluster without assume_role is made with meshd's own too, so its policy is
// that one. An unknown or external cluster is an error: meshd makes no AWS call with its access.
func IAMOf(m *spec.Mesh, cluster string) ([]access.Statement, error) {
	role := ""
	if cluster != "" {
		c := m.Cluster(cluster)
		switch {
		case c == nil:
			return nil, fmt.Errorf("no cluster %q in the spec", cluster)
		case c.External():
			return nil, fmt.Errorf("cluster %q is external (network = %q): meshd makes no AWS call for it", cluster, spec.NetworkExternal)
		}
		role = c.AssumeRole
	}
	all := iamBase(m)
	for _, k := range Kinds() {
		if k.IAM != nil {
			all = append(all, k.IAM(m)...)
		}
	}
	var out []access.Statement
	for _, s := range all {
		if s.Role == role {
			s.Role = ""
			out = append(out, s)
		}
	}
	return out, nil
}

// iamBase is what no kind owns: the observation of every pass, the NLB and target-group look-ups, and
// sts:AssumeRole.
func iamBase(m *spec.Mesh) []access.Statement {
	var out []access.Statement
	for _, role := range rolesOf(m) {
		clusters := awsClustersOf(m, role)
		var regions, eksRegions, nlbRegions []string
		for _, c := range clusters {
			regions = append(regions, c.Region)
			if c.EKSCluster != "" {
				eksRegions = append(eksRegions, c.Region)
			}
			if !m.DNSDisabled && c.DNSServiceType() == spec.ServiceTypeLoadBalancer {
				nlbRegions = append(nlbRegions, c.Region)
			}
		}
		out = append(out, access.Statement{Role: role,
			Why: "Observe: the members' VPCs, route tables, security groups and their rules, peerings, the " +
				"prefix lists node-group rules reference (their size counts toward the rules quota) and network ACLs " +
				"(meshctl verify and meshd's path checks). EC2's Describe calls take no resource ARNs; they are limited to the members' regions.",
			Actions: []string{"ec2:DescribeVpcs", "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules",
				"ec2:DescribeVpcPeeringConnections", "ec2:DescribeManagedPrefixLists", "ec2:DescribeNetworkAcls"},
			Condition: inRegions(regions)})
		if m.UsesTransitGateway() {
			out = append(out, access.Statement{Role: role,
				Why: "Observe the Transit Gateways (topology = \"transit_gateway\"): the mesh's or the spec's gateways, their route tables, " +
					"attachments and peering attachments, the routes and propagations of the route tables meshd uses. No resource ARNs; limited to the members' regions.",
				Actions: []string{"ec2:DescribeTransitGateways", "ec2:DescribeTransitGatewayRouteTables", "ec2:DescribeTransitGatewayAttachments",
					"ec2:DescribeTransitGatewayPeeringAttachments", "ec2:SearchTransitGatewayRoutes", "ec2:GetTransitGatewayRouteTablePropagations",
					"ec2:GetTransitGatewayRouteTableAssociations"},
				Condition: inRegions(regions)})
		}
		if len(eksRegions) > 0 {
			out = append(out, access.Statement{Role: role,
				Why:       "Find node subnets: the instances of self-managed node groups (tagged kubernetes.io/cluster/<name>), in the regions of eks_cluster members.",
				Actions:   []string{"ec2:DescribeInstances"},
				Condition: inRegions(eksRegions)})
		}
		if len(nlbRegions) > 0 {
			out = append(out, access.Statement{Role: role,
				Why:       "Find NLBs: the load balancer behind each hostname and its private addresses (its network interfaces). No resource ARNs; limited to the members' regions.",
				Actions:   []string{"elasticloadbalancing:DescribeLoadBalancers", "ec2:DescribeNetworkInterfaces"},
				Condition: inRegions(nlbRegions)})
		}
		for _, c := range clusters {
			if c.EKSCluster == "" {
				continue
			}
			out = append(out,
				access.Statement{Role: role,
					Why:       "EKS clusters: VPC, endpoint, security groups and node groups of each eks_cluster, by name.",
					Actions:   []string{"eks:DescribeCluster", "eks:ListNodegroups"},
					Resources: []string{eksARN(c.Region, "cluster/"+c.EKSCluster)}},
				access.Statement{Role: role,
					Why:       "EKS node groups: the subnets of each eks_cluster's managed node groups.",
					Actions:   []string{"eks:DescribeNodegroup"},
					Resources: []string{eksARN(c.Region, "nodegroup/"+c.EKSCluster+"/*")}})
		}
	}
	// Made with meshd's own credentials for every eks_cluster member, whatever its assume_role (the AWS
	// provider's add-on and target-group clients are not per account).
	for _, c := range m.Clusters {
		if c.External() || c.EKSCluster == "" {
			continue
		}
		out = append(out, access.Statement{
			Why:       "Read CoreDNS add-on: whether an add-on update would overwrite meshd's Corefile blocks (every eks_cluster member, whatever its corefile_via).",
			Actions:   []string{"eks:DescribeAddon"},
			Resources: []string{eksARN(c.Region, "addon/"+c.EKSCluster+"/"+model.CoreDNSAddon+"/*")}})
	}
	var lbRegions []string
	for _, lb := range m.LoadBalancers {
		if c := m.Cluster(lb.Primary); c != nil && !c.External() {
			lbRegions = append(lbRegions, c.Region)
		}
	}
	if len(lbRegions) > 0 {
		out = append(out, access.Statement{
			Why: "Target groups: the load_balancer blocks' group, its registered targets, its NLB and that NLB's subnets. " +
				"ELBv2's Describe calls take no resource ARNs; limited to the primaries' regions.",
			Actions: []string{"elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth",
				"elasticloadbalancing:DescribeLoadBalancers", "ec2:DescribeSubnets"},
			Condition: inRegions(lbRegions)})
	}
	var roles []string
	for _, c := range m.Clusters {
		if c.AssumeRole != "" && !c.External() {
			roles = append(roles, c.AssumeRole)
		}
	}
	if len(roles) > 0 {
		out = append(out, access.Statement{
			Why:       "Assume roles: exactly the assume_role ARNs the spec names; meshd does everything for those members with the role's credentials.",
			Actions:   []string{"sts:AssumeRole"},
			Resources: roles})
	}
	return out
}

// rolesOf lists the identities of the spec's AWS members: "" (meshd's own) and each assume_role, sorted.
func rolesOf(m *spec.Mesh) []string {
	var out []string
	for _, c := range m.Clusters {
		if !c.External() {
			out = append(out, c.AssumeRole)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// awsClustersOf lists the members whose AWS calls the role makes ("" : meshd's own credentials).
func awsClustersOf(m *spec.Mesh, role string) []*spec.Cluster {
	var out []*spec.Cluster
	for _, c := range m.Clusters {
		if !c.External() && c.AssumeRole == role {
			out = append(out, c)
		}
	}
	return out
}

// networkedMembers lists the members whose networks meshd meshes: the AWS ones, when there are two or more
// (with fewer there is nothing to peer, route or allow).
func networkedMembers(m *spec.Mesh) []*spec.Cluster {
	var out []*spec.Cluster
	for _, c := range m.Clusters {
		if !c.External() {
			out = append(out, c)
		}
	}
	if len(out) < 2 {
		return nil
	}
	return out
}

// partitionOf is the ARN partition of a region.
func partitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	case strings.HasPrefix(region, "eusc-"):
		return "aws-eusc"
	}
	return "aws"
}

// ec2ARN is the ARN of an EC2 resource of a region in any account: the account is the identity's own
// (a role only acts in its account) or, for a peering, either side's.
func ec2ARN(region, resource string) string {
	return fmt.Sprintf("arn:%s:ec2:%s:*:%s", partitionOf(region), region, resource)
}

// eksARN is the ARN of an EKS resource of a region in any account.
func eksARN(region, resource string) string {
	return fmt.Sprintf("arn:%s:eks:%s:*:%s", partitionOf(region), region, resource)
}

// inRegions limits a statement to AWS requests made to the regions.
func inRegions(regions []string) map[string]map[string][]string {
	r := slices.Clone(regions)
	slices.Sort(r)
	return map[string]map[string][]string{"StringEquals": {"aws:RequestedRegion": slices.Compact(r)}}
}

// taggedForMesh is the condition that the object carries the mesh's ownership tag.
func taggedForMesh(mesh string) map[string]map[string][]string {
	return map[string]map[string][]string{"StringEquals": {"aws:ResourceTag/" + model.TagMesh: {mesh}}}
}

// taggingForMesh is the condition that the request puts the mesh's ownership tag on what it creates;
// with createAction, only as part of that create call (ec2:CreateAction), so that existing objects cannot
// be tagged.
func taggingForMesh(mesh, createAction string) map[string]map[string][]string {
	c := map[string]map[string][]string{"StringEquals": {"aws:RequestTag/" + model.TagMesh: {mesh}}}
	if createAction != "" {
		c["StringEquals"]["ec2:CreateAction"] = []string{createAction}
	}
	return c
}

// adoptTagging is the condition of adopt = true's CreateTags on existing objects: only meshd's own tag keys,
// with this mesh's name.
func adoptTagging(mesh string) map[string]map[string][]string {
	return map[string]map[string][]string{
		"StringEquals":              {"aws:RequestTag/" + model.TagMesh: {mesh}},
		"ForAllValues:StringEquals": {"aws:TagKeys": {model.TagMesh, model.TagID, "Name"}},
	}
}

// peeringIAM is what the peering executor needs, for each networked member's identity: request a peering
// from its VPC, accept one into it, delete meshd's (tagged) ones, and, with adopt = true, tag a hand-made one.
func peeringIAM(m *spec.Mesh) []access.Statement {
	var out []access.Statement
	for _, c := range networkedMembers(m) {
		vpc := ec2ARN(c.Region, "vpc/*")
		var accepter map[string]map[string][]string
		if c.VPCID != "" {
			vpc = ec2ARN(c.Region, "vpc/"+c.VPCID)
			accepter = map[string]map[string][]string{"ArnLike": {"ec2:AccepterVpc": {vpc}}}
		}
		pcx := ec2ARN(c.Region, "vpc-peering-connection/*")
		out = append(out,
			access.Statement{Role: c.AssumeRole,
				Why:       "Peer VPCs: request a peering from it, or accept one into it (the VPC is named when the spec names it).",
				Actions:   []string{"ec2:CreateVpcPeeringConnection", "ec2:AcceptVpcPeeringConnection"},
				Resources: []string{vpc}},
			access.Statement{Role: c.AssumeRole,
				Why:       "Create tagged peerings: the request must tag the new peering with this mesh's name.",
				Actions:   []string{"ec2:CreateVpcPeeringConnection"},
				Resources: []string{pcx}, Condition: taggingForMesh(m.Name, "")},
			access.Statement{Role: c.AssumeRole,
				Why:       "Tag peerings at creation: ec2:CreateTags only as part of CreateVpcPeeringConnection.",
				Actions:   []string{"ec2:CreateTags"},
				Resources: []string{pcx}, Condition: taggingForMesh(m.Name, "CreateVpcPeeringConnection")},
			access.Statement{Role: c.AssumeRole,
				Why: "Accept peerings: into the member's VPC. Not conditioned on meshd's tag: the accepter's account does not see the tags " +
					"a requester in another account put on; limited to the member's VPC when the spec names it.",
				Actions:   []string{"ec2:AcceptVpcPeeringConnection"},
				Resources: []string{pcx}, Condition: accepter},
			access.Statement{Role: c.AssumeRole,
				Why:       "Delete own peerings: only those tagged with this mesh's name (the executor checks the tag again before deleting).",
				Actions:   []string{"ec2:DeleteVpcPeeringConnection"},
				Resources: []string{pcx}, Condition: taggedForMesh(m.Name)})
		if m.Adopt {
			out = append(out, access.Statement{Role: c.AssumeRole,
				Why:       "Adopt: hand-made peerings and rules (adopt = true) are tagged with meshd's tag keys and this mesh's name, nothing else.",
				Actions:   []string{"ec2:CreateTags"},
				Resources: []string{pcx}, Condition: adoptTagging(m.Name)})
		}
	}
	return out
}

// routeIAM is what the route executor needs in each networked member's route tables. Routes take no tags,
// so their deletes cannot be conditioned on meshd's tag: they are limited to the route tables the spec
// names, else to those of the VPC it names (ec2:Vpc), else to the member's region; the executor deletes only
// routes its state records, after checking that the route still has the planned target.
func routeIAM(m *spec.Mesh) []access.Statement {
	var out []access.Statement
	for _, c := range networkedMembers(m) {
		tables := []string{ec2ARN(c.Region, "route-table/*")}
		var cond map[string]map[string][]string
		switch {
		case len(c.RouteTableIDs) > 0:
			tables = nil
			for _, id := range c.RouteTableIDs {
				tables = append(tables, ec2ARN(c.Region, "route-table/"+id))
			}
		case c.VPCID != "":
			cond = map[string]map[string][]string{"ArnLike": {"ec2:Vpc": {ec2ARN(c.Region, "vpc/"+c.VPCID)}}}
		}
		out = append(out,
			access.Statement{Role: c.AssumeRole,
				Why: "Route tables: routes to the other members go into the member's route tables, the ones the spec names, else those of the VPC it names, " +
					"else the region's (an EKS cluster's VPC is found at run time). Routes take no tags: DeleteRoute cannot be conditioned on meshd's tag.",
				Actions:   []string{"ec2:CreateRoute", "ec2:ReplaceRoute", "ec2:DeleteRoute"},
				Resources: tables, Condition: cond},
			access.Statement{Role: c.AssumeRole,
				Why:       "Route targets: a route's target is a peering of the member's region.",
				Actions:   []string{"ec2:CreateRoute", "ec2:ReplaceRoute"},
				Resources: []string{ec2ARN(c.Region, "vpc-peering-connection/*")}})
	}
	return out
}

// sgRuleIAM is what the rule executor needs on each networked member's node security group: add rules that
// carry meshd's tag, revoke only those, and with adopt = true tag a hand-made one.
func sgRuleIAM(m *spec.Mesh) []access.Statement {
	var out []access.Statement
	const why = "Security groups: the other members are allowed in the member's security group, the one the spec names, else the EKS cluster's " +
		"(its cluster security group, tagged aws:eks:cluster-name, or eksctl's shared node group, tagged alpha.eksctl.io/cluster-name). " +
		"The group is not meshd's; the rules are, and are limited by the statements on security-group-rule."
	for _, c := range networkedMembers(m) {
		actions := []string{"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"}
		if c.SecurityGroupID != "" {
			out = append(out, access.Statement{Role: c.AssumeRole, Why: why, Actions: actions,
				Resources: []string{ec2ARN(c.Region, "security-group/"+c.SecurityGroupID)}})
		} else {
			for _, tag := range []string{"aws:eks:cluster-name", "alpha.eksctl.io/cluster-name"} {
				out = append(out, access.Statement{Role: c.AssumeRole, Why: why, Actions: actions,
					Resources: []string{ec2ARN(c.Region, "security-group/*")},
					Condition: map[string]map[string][]string{"StringEquals": {"aws:ResourceTag/" + tag: {c.EKSCluster}}}})
			}
		}
		rules := ec2ARN(c.Region, "security-group-rule/*")
		out = append(out,
			access.Statement{Role: c.AssumeRole,
				Why:       "Create tagged rules: the request must tag the new rule with this mesh's name.",
				Actions:   []string{"ec2:AuthorizeSecurityGroupIngress"},
				Resources: []string{rules}, Condition: taggingForMesh(m.Name, "")},
			access.Statement{Role: c.AssumeRole,
				Why:       "Tag rules at creation: ec2:CreateTags only as part of AuthorizeSecurityGroupIngress.",
				Actions:   []string{"ec2:CreateTags"},
				Resources: []string{rules}, Condition: taggingForMesh(m.Name, "AuthorizeSecurityGroupIngress")},
			access.Statement{Role: c.AssumeRole,
				Why:       "Revoke own rules: only those tagged with this mesh's name (the executor checks the tag again before revoking).",
				Actions:   []string{"ec2:RevokeSecurityGroupIngress"},
				Resources: []string{rules}, Condition: taggedForMesh(m.Name)})
		if m.Adopt {
			out = append(out, access.Statement{Role: c.AssumeRole,
				Why:       "Adopt: hand-made peerings and rules (adopt = true) are tagged with meshd's tag keys and this mesh's name, nothing else.",
				Actions:   []string{"ec2:CreateTags"},
				Resources: []string{rules}, Condition: adoptTagging(m.Name)})
		}
	}
	return out
}

// addonIAM is what the addon_corefile executor needs with corefile_via = "eks_addon": the add-on's
// configuration schema, its update, and the update's progress. The AWS provider makes these calls with
// meshd's own credentials, also for a member with assume_role. Switching corefile_via back to "configmap"
// takes meshd's blocks out of the add-on with the same calls: keep this policy until that apply is done.
func addonIAM(m *spec.Mesh) []access.Statement {
	if m.CorefileVia != spec.CorefileViaEKSAddon {
		return nil
	}
	var out []access.Statement
	var regions []string
	for _, c := range m.Clusters {
		if c.External() || c.EKSCluster == "" {
			continue
		}
		regions = append(regions, c.Region)
		addon := eksARN(c.Region, "addon/"+c.EKSCluster+"/"+model.CoreDNSAddon+"/*")
		out = append(out,
			access.Statement{
				Why:       "Update CoreDNS add-on: meshd's Corefile blocks go into its configuration (corefile_via = \"eks_addon\"): update its configuration and follow the update.",
				Actions:   []string{"eks:UpdateAddon", "eks:DescribeUpdate"},
				Resources: []string{addon}},
			access.Statement{
				Why:       "Update CoreDNS add-on: meshd's Corefile blocks go into its configuration (corefile_via = \"eks_addon\"): update its configuration and follow the update.",
				Actions:   []string{"eks:DescribeUpdate"},
				Resources: []string{eksARN(c.Region, "cluster/"+c.EKSCluster)}})
	}
	if len(regions) > 0 {
		out = append(out, access.Statement{
			Why:       "Add-on schema: whether the CoreDNS add-on's version takes a corefile, from its configuration schema (no resource ARN; limited to the members' regions).",
			Actions:   []string{"eks:DescribeAddonConfiguration"},
			Condition: inRegions(regions)})
	}
	return out
}

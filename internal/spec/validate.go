package spec

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// Formats of the values a spec names. IDs are checked for shape only (whether they exist is known only after
// observing AWS); AWS issues them with 8 or, since 2016, 17 lowercase hex digits.
var (
	vpcIDRe   = regexp.MustCompile(`^vpc-([0-9a-f]{8}|[0-9a-f]{17})$`)
	sgIDRe    = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
	rtbIDRe   = regexp.MustCompile(`^rtb-([0-9a-f]{8}|[0-9a-f]{17})$`)
	eksNameRe = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z_-]{0,99}$`)
	// The shape of a region code, whatever its partition: a prefix, one or more words and a number. Only
	// for telling a near miss (an upper-case code, a zone) from something else; partitionOf decides.
	regionRe = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)
	// An availability zone is the commonest wrong value for a region: us-west-1a.
	zoneRe  = regexp.MustCompile(`^([a-z]{2,4}(?:-[a-z]+)+-[0-9]{1,2})[a-z]$`)
	labelRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// An IAM role ARN: a partition of the table, empty region, 12-digit account, role/ then an optional path
	// and a name of letters, digits and +=,.@_- (IAM's own character set).
	roleARNRe = regexp.MustCompile(`^arn:(` + partitionNames("|") + `):iam::[0-9]{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$`)
	// STS's ExternalId character set (its length, 2 to 1224, is checked apart: RE2 repeats stop at 1000).
	externalIDRe = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
)

// partitions are AWS's partitions and the region codes of each, as the SDK's endpoint rules define them
// (aws-sdk-go-v2 internal/endpoints/awsrulesfn/partitions.json, regionRegex). Both the region check and
// the role-ARN check read this one table, so that a cluster in any region meshd accepts can assume a role
// of that region's partition, and no other.
var partitions = []struct {
	name    string
	regions *regexp.Regexp
}{
	{"aws", regexp.MustCompile(`^(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-[0-9]{1,2}$`)},
	{"aws-cn", regexp.MustCompile(`^cn-[a-z]+-[0-9]{1,2}$`)},
	{"aws-us-gov", regexp.MustCompile(`^us-gov-[a-z]+-[0-9]{1,2}$`)},
	{"aws-iso", regexp.MustCompile(`^us-iso-[a-z]+-[0-9]{1,2}$`)},
	{"aws-iso-b", regexp.MustCompile(`^us-isob-[a-z]+-[0-9]{1,2}$`)},
	{"aws-iso-e", regexp.MustCompile(`^eu-isoe-[a-z]+-[0-9]{1,2}$`)},
	{"aws-iso-f", regexp.MustCompile(`^us-isof-[a-z]+-[0-9]{1,2}$`)},
	{"aws-eusc", regexp.MustCompile(`^eusc-de-[a-z]+-[0-9]{1,2}$`)},
}

// partitionOf is the partition of a region code, or "" when no partition has it.
func partitionOf(region string) string {
	for _, p := range partitions {
		if p.regions.MatchString(region) {
			return p.name
		}
	}
	return ""
}

// partitionNames are the partitions' names joined by sep.
func partitionNames(sep string) string {
	names := make([]string, len(partitions))
	for i, p := range partitions {
		names[i] = p.name
	}
	return strings.Join(names, sep)
}

// rolePartition is the partition an IAM role ARN names ("" when it is not one).
func rolePartition(arn string) string {
	if m := roleARNRe.FindStringSubmatch(arn); m != nil {
		return m[1]
	}
	return ""
}

// validate runs the checks that combine attributes of a cluster, or clusters with each other, once every
// file is decoded.
func (d *decoder) validate() {
	m := d.m
	for _, c := range m.Clusters {
		if _, set := c.Attrs["network"]; set && c.Network == "" {
			continue // an invalid network: which other attributes it needs is not known
		}
		d.checkRequired(c)
		d.checkNetwork(c)
		if !c.External() {
			d.checkIdentity(c)
			d.checkEKSDomain(c)
			d.checkExternalID(c)
		}
	}
	d.checkUnique()
	d.checkCorefileVia()
	d.validateReplicates()
	d.validateLoadBalancers()
	d.validateControlPlanes()
	d.validateTransitGateways()
	d.checkPrivileges()
	// Counted in blocks, not in distinct clusters: two blocks with one name are an error of their own.
	if d.meshBlock != nil && d.clusters < 2 {
		d.warnf(m.DeclRange, "Too few clusters",
			"The mesh %q has %d cluster block(s), so there is nothing to connect. Add a cluster block for each member cluster; a mesh needs two or more.",
			m.Name, d.clusters)
	}
}

// checkExternalID refuses an external_id without assume_role: it is a parameter of AssumeRole, and left alone
// it would suggest a protection that is not there.
func (d *decoder) checkExternalID(c *Cluster) {
	d.checkRolePartition(c)
	if _, ok := c.Attrs["external_id"]; ok && c.AssumeRole == "" {
		if _, set := c.Attrs["assume_role"]; !set {
			d.errorf(c.AttrRange("external_id"), "external_id without assume_role",
				"Cluster %q sets external_id but no assume_role. The external ID is passed when meshd assumes the role named by assume_role; set assume_role to the role's ARN, or remove external_id.", c.Name)
		}
	}
}

// checkRolePartition refuses a role of another partition than the cluster's region: STS of one partition
// cannot issue credentials for a role of another, and AWS objects of one are invisible from the other.
func (d *decoder) checkRolePartition(c *Cluster) {
	rp, cp := rolePartition(c.AssumeRole), partitionOf(c.Region)
	if rp == "" || cp == "" || rp == cp {
		return
	}
	d.errorf(c.AttrRange("assume_role"), "Role in another partition",
		"Cluster %q is in region %s of partition %s, but assume_role names a role of partition %s. Partitions are separate: STS in %s cannot give credentials for that role. Use the ARN of a role in the cluster's partition (arn:%s:iam::...).",
		c.Name, c.Region, cp, rp, cp, cp)
}

func (d *decoder) checkRequired(c *Cluster) {
	if _, ok := c.Attrs["region"]; !ok && !c.External() {
		d.errorf(c.DeclRange, "Missing required argument",
			`Cluster %q has no region. Set region to the AWS region the cluster runs in, like region = "us-west-1".`, c.Name)
	}
	d.checkKubeAuth(c)
	if _, ok := c.Attrs["namespace"]; !ok && d.modeKnown && d.m.ForwardBy == ForwardByNamespace {
		d.errorf(c.DeclRange, "Missing required argument",
			`Cluster %q has no namespace. The mesh forwards DNS by namespace (dns.forward_by = "namespace", the default), so each cluster must name the namespace of its workloads, unique across the mesh. Set namespace, or set forward_by = "cluster_domain" if the clusters have distinct cluster domains.`, c.Name)
	}
}

// checkKubeAuth resolves the default kube_auth and checks that the cluster can be reached with it: through
// kube_context, or (kube_auth = "eks") through the EKS cluster's endpoint.
func (d *decoder) checkKubeAuth(c *Cluster) {
	_, hasContext := c.Attrs["kube_context"]
	_, authSet := c.Attrs["kube_auth"]
	switch {
	case authSet && c.KubeAuth == "":
		return // an invalid kube_auth, already reported
	case !authSet && !hasContext && c.EKSCluster != "" && !c.External():
		c.KubeAuth = KubeAuthEKS
	case !authSet:
		c.KubeAuth = KubeAuthKubeconfig
	}
	switch {
	case c.KubeAuth == KubeAuthEKS && c.Region == "":
		if _, ok := c.Attrs["region"]; !ok && c.External() {
			d.errorf(c.AttrRange("kube_auth"), "kube_auth = \"eks\" without region",
				`Cluster %q has kube_auth = "eks" but no region: an EKS token is signed for the STS endpoint of the cluster's region. Set region, or use kube_auth = "kubeconfig".`, c.Name)
		}
	case c.KubeAuth == KubeAuthEKS && !hasContext && c.EKSCluster == "":
		d.errorf(c.AttrRange("kube_auth"), "Nowhere to reach the cluster",
			`Cluster %q has kube_auth = "eks" but neither eks_cluster nor kube_context. meshd finds the API server and its CA with EKS DescribeCluster of eks_cluster, or in the cluster entry of kube_context in its kubeconfig (whose user credentials are then not used): set one of them.`, c.Name)
	case c.KubeAuth == KubeAuthKubeconfig && !hasContext:
		d.errorf(c.DeclRange, "Missing required argument",
			"Cluster %q has no kube_context. Set it to the kubeconfig context that reaches the cluster (see kubectl config get-contexts), or, for an EKS cluster, set eks_cluster and let meshd sign in itself (kube_auth = \"eks\").", c.Name)
	}
}

// checkIdentity checks that a cluster's network is named in exactly one of the two ways: eks_cluster, or
// vpc_id with security_group_id (and optionally route_table_ids).
func (d *decoder) checkIdentity(c *Cluster) {
	has := func(name string) bool { _, ok := c.Attrs[name]; return ok }
	eks, vpc, sg, rtb := has("eks_cluster"), has("vpc_id"), has("security_group_id"), has("route_table_ids")
	switch {
	case eks && vpc:
		d.errorf(c.Attrs["vpc_id"], "Conflicting network identity",
			"Cluster %q sets both eks_cluster and vpc_id. eks_cluster discovers the VPC, route tables and node security group from EKS; vpc_id with security_group_id names them directly. Keep one of the two.", c.Name)
	case eks && sg:
		d.errorf(c.Attrs["security_group_id"], "Conflicting network identity",
			"Cluster %q uses eks_cluster, which discovers the node security group, so security_group_id has no effect. Remove security_group_id, or replace eks_cluster with vpc_id.", c.Name)
	case eks && rtb:
		d.errorf(c.Attrs["route_table_ids"], "Conflicting network identity",
			"route_table_ids narrows the route tables of vpc_id, but cluster %q uses eks_cluster, which discovers the route tables of its subnets. Remove route_table_ids, or replace eks_cluster with vpc_id and security_group_id.", c.Name)
	case eks:
	case !vpc && !sg && !rtb:
		d.errorf(c.DeclRange, "Missing network identity",
			"Cluster %q does not say which network it is in. Set eks_cluster to discover its VPC, route tables and node security group from EKS, or set vpc_id and security_group_id to name them.", c.Name)
	default:
		if !vpc {
			set := "security_group_id"
			if !sg {
				set = "route_table_ids"
			}
			d.errorf(c.DeclRange, "Missing vpc_id",
				"Cluster %q sets %s but no vpc_id. Set vpc_id to the cluster's VPC, or name the cluster's network with eks_cluster alone.", c.Name, set)
		}
		if !sg {
			d.errorf(c.DeclRange, "Missing security_group_id",
				"Cluster %q names its network directly but has no security_group_id. Set it to the security group of the cluster's nodes, which meshd opens to the other clusters' CIDR blocks, or name the cluster's network with eks_cluster alone.", c.Name)
		}
	}
}

// checkEKSDomain refuses a cluster domain other than cluster.local on an EKS cluster: EKS builds every cluster
// with cluster.local and offers no way to change it, so any other domain would be forwarded to a CoreDNS that
// does not serve it.
func (d *decoder) checkEKSDomain(c *Cluster) {
	if c.EKSCluster == "" || c.ClusterDomain == DefaultClusterDomain || !isDNSSubdomain(c.ClusterDomain) {
		return
	}
	d.errorf(c.AttrRange("cluster_domain"), "Cluster domain not possible on EKS",
		`Cluster %q is the EKS cluster %q, whose cluster domain is always %s (EKS offers no way to change it), but cluster_domain is %q. Remove cluster_domain, or name a self-managed cluster's network with vpc_id and security_group_id instead of eks_cluster. To mesh EKS clusters, use forward_by = "namespace".`,
		c.Name, c.EKSCluster, DefaultClusterDomain, c.ClusterDomain)
}

// checkUnique reports values that must differ between member clusters. Each diagnostic points at the later
// cluster and names the earlier one, in declaration order.
func (d *decoder) checkUnique() {
	m := d.m
	type seenKey struct{ kind, value string }
	first := map[seenKey]*Cluster{}
	// dup records c under key and returns the cluster that had it first, or nil.
	dup := func(kind, value string, c *Cluster) *Cluster {
		if value == "" {
			return nil
		}
		k := seenKey{kind, value}
		if f := first[k]; f != nil {
			return f
		}
		first[k] = c
		return nil
	}

	for i, c := range m.Clusters {
		if d.modeKnown && m.ForwardBy == ForwardByNamespace {
			if f := dup("namespace", c.Namespace, c); f != nil {
				d.errorf(c.AttrRange("namespace"), "Duplicate namespace",
					`Cluster %q (%s) already uses namespace %q. With forward_by = "namespace" a cluster's names are forwarded to it by the zone <namespace>.svc.cluster.local, so namespaces must be unique across the mesh. Use another namespace here, or set forward_by = "cluster_domain" if the clusters have distinct cluster domains.`,
					f.Name, pos(f.AttrRange("namespace")), c.Namespace)
			}
		}
		if d.modeKnown && m.ForwardBy == ForwardByClusterDomain {
			if f := dup("cluster_domain", c.ClusterDomain, c); f != nil {
				// A defaulted domain has no attribute to point at; say where the value comes from.
				how := ""
				if _, set := c.Attrs["cluster_domain"]; !set {
					how = " (the default when cluster_domain is not set)"
				}
				d.errorf(c.AttrRange("cluster_domain"), "Duplicate cluster domain",
					`Cluster %q (%s) already uses cluster domain %q%s. With forward_by = "cluster_domain" a cluster's names are forwarded to it by its cluster domain, so cluster domains must be unique across the mesh. Set a distinct cluster_domain, or use forward_by = "namespace".`,
					f.Name, pos(f.AttrRange("cluster_domain")), c.ClusterDomain, how)
			} else {
				d.checkNested(c, m.Clusters[:i])
			}
		}
		if f := dup("kube_context", c.KubeContext, c); f != nil {
			d.errorf(c.AttrRange("kube_context"), "Duplicate kube context",
				"Cluster %q (%s) already uses kube_context %q. Each member must be reached through a context of its own, or meshd would configure one cluster twice and the other never.",
				f.Name, pos(f.AttrRange("kube_context")), c.KubeContext)
		}
		if f := dup("vpc_id", c.VPCID, c); f != nil {
			d.errorf(c.AttrRange("vpc_id"), "Duplicate VPC",
				"Cluster %q (%s) is in the same VPC %s. meshd peers one VPC per member cluster: give each cluster its own VPC.",
				f.Name, pos(f.AttrRange("vpc_id")), c.VPCID)
		}
		if c.EKSCluster != "" {
			// EKS cluster names are unique per account and region only.
			if f := dup("eks_cluster", c.Region+"/"+c.EKSCluster, c); f != nil {
				d.errorf(c.AttrRange("eks_cluster"), "Duplicate EKS cluster",
					"Cluster %q (%s) already names EKS cluster %q in %s. Each member must be a different cluster.",
					f.Name, pos(f.AttrRange("eks_cluster")), c.EKSCluster, c.Region)
			}
		}
		d.checkOverlap(c, m.Clusters[:i])
	}
}

// checkNested reports a cluster domain that lies inside an earlier cluster's, or holds it (local and
// east.local). Each Corefile forwards the others' domains, and CoreDNS answers a name from the block of the
// longest zone that holds it: the cluster with east.local would send its own names to the cluster with
// local, and the other way round lookups of the shorter domain would be cut in two.
func (d *decoder) checkNested(c *Cluster, earlier []*Cluster) {
	if !isDNSSubdomain(c.ClusterDomain) {
		return
	}
	for _, e := range earlier {
		if !isDNSSubdomain(e.ClusterDomain) || e.ClusterDomain == c.ClusterDomain {
			continue
		}
		inner, outer := c.ClusterDomain, e.ClusterDomain
		if !strings.HasSuffix(inner, "."+outer) {
			inner, outer = outer, inner
			if !strings.HasSuffix(inner, "."+outer) {
				continue
			}
		}
		how := ""
		if _, set := c.Attrs["cluster_domain"]; !set {
			how = " (the default when cluster_domain is not set)"
		} else if _, set := e.Attrs["cluster_domain"]; !set {
			how = fmt.Sprintf(" (cluster %q has the default)", e.Name)
		}
		d.errorf(c.AttrRange("cluster_domain"), "Nested cluster domains",
			`Cluster %q has cluster domain %q and cluster %q (%s) has %q%s: %s lies inside %s. With forward_by = "cluster_domain" each cluster forwards the other clusters' domains, and CoreDNS answers a name from the block with the longest zone that holds it, so the cluster of %s would send names of its own to the other cluster. Give the clusters domains where neither ends with the other, like cluster1.com and cluster2.com.`,
			c.Name, c.ClusterDomain, e.Name, pos(e.AttrRange("cluster_domain")), e.ClusterDomain, how, inner, outer, inner)
	}
}

// checkOverlap reports declared CIDR blocks of c that overlap those declared by an earlier cluster: AWS refuses
// to peer VPCs with overlapping blocks. Every block of the VPCs, declared or not, is compared by the planner.
func (d *decoder) checkOverlap(c *Cluster, earlier []*Cluster) {
	for i, s := range c.CIDRBlocks {
		p := netip.MustParsePrefix(s) // CIDRBlocks holds only valid, canonical prefixes
		for _, e := range earlier {
			if c.VPCID != "" && c.VPCID == e.VPCID {
				continue // already a duplicate VPC
			}
			for j, t := range e.CIDRBlocks {
				if q := netip.MustParsePrefix(t); p.Overlaps(q) {
					d.errorf(c.ElemRange("cidr_blocks", i), "Overlapping CIDR blocks",
						"%s overlaps %s of cluster %q (%s). AWS refuses to peer two VPCs when any of their CIDR blocks overlap, meshed or not: "+
							"give one of the clusters a VPC whose blocks are disjoint from the other's.",
						p, q, e.Name, pos(e.ElemRange("cidr_blocks", j)))
				}
			}
		}
	}
}

func isDNSLabel(s string) bool {
	return len(s) <= 63 && labelRe.MatchString(s)
}

func isDNSSubdomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !isDNSLabel(l) {
			return false
		}
	}
	return true
}

func isRegion(s string) bool { return partitionOf(s) != "" }

func labelDetail(kind, name string) string {
	detail := fmt.Sprintf("%q is not a valid %s name. %s names become AWS tag values and Kubernetes label values, so they must be DNS-1123 labels: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit.",
		name, kind, strings.ToUpper(kind[:1])+kind[1:])
	if s := suggestLabel(name); s != "" {
		detail += fmt.Sprintf(" For example %q.", s)
	}
	return detail
}

// suggestLabel turns name into a DNS-1123 label, or returns "" when it cannot.
func suggestLabel(name string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '-'
	}, name)
	if len(s) > 63 {
		s = s[:63]
	}
	s = strings.Trim(s, "-")
	if s == name || !isDNSLabel(s) {
		return ""
	}
	return s
}

func regionDetail(s string) string {
	if l := strings.ToLower(s); l != s && isRegion(l) {
		return fmt.Sprintf("Region codes are lowercase: write %q.", l)
	}
	if m := zoneRe.FindStringSubmatch(s); m != nil && isRegion(m[1]) {
		return fmt.Sprintf("%q is an availability zone, not a region. Use its region, %q.", s, m[1])
	}
	if regionRe.MatchString(s) {
		return fmt.Sprintf("%q is not a region of an AWS partition meshd knows (%s). Use the code of the region the cluster runs in, like us-west-1, cn-north-1 or us-gov-west-1.", s, partitionNames(", "))
	}
	return fmt.Sprintf("%q is not an AWS region code. Use the code of the region the cluster runs in, like us-west-1, eu-central-1 or us-gov-west-1.", s)
}

func idDetail(s, what string, re *regexp.Regexp, prefix, example string) string {
	if l := strings.ToLower(s); l != s && re.MatchString(l) {
		return fmt.Sprintf("%q is not %s: IDs are lowercase. Write %q.", s, what, l)
	}
	return fmt.Sprintf("%q is not %s: those are %s followed by 8 or 17 lowercase hexadecimal digits, like %s. Give the ID, not a name or an ARN.",
		s, what, prefix, example)
}

// checkCorefileVia warns about the clusters corefile_via = "eks_addon" cannot apply to: without eks_cluster
// meshd does not know an EKS cluster whose add-on it could configure.
func (d *decoder) checkCorefileVia() {
	m := d.m
	if m.CorefileVia != CorefileViaEKSAddon {
		return
	}
	for _, c := range m.Clusters {
		if c.EKSCluster == "" && !c.External() { // an external member has no add-on, and knows it
			d.warnf(c.DeclRange, "No EKS add-on to configure",
				`corefile_via = "eks_addon" (at %s), but cluster %q names no eks_cluster: meshd writes its Corefile blocks into that cluster's ConfigMap only.`,
				pos(m.AttrRange("dns.corefile_via")), c.Name)
		}
	}
}

// Package spec decodes and validates a meshd spec written in HCL.
//
// A spec is one file or a directory of *.hcl files holding exactly one mesh block and two or more cluster
// blocks. Decoding is purely syntactic and static: nothing here talks to AWS or Kubernetes. Checks that need
// the observed world (overlapping CIDRs, unknown VPCs, quotas) are made by the planner, which reports them
// against the ranges kept here.
package spec

import "github.com/hashicorp/hcl/v2"

// Forwarding modes of the mesh's dns block: which zone a cluster's Corefile forwards to another cluster.
const (
	ForwardByNamespace     = "namespace"      // zone <remote-namespace>.svc.cluster.local (EKS: fixed cluster domain)
	ForwardByClusterDomain = "cluster_domain" // zone <remote-cluster-domain> (self-managed clusters)
)

// Where meshd writes its Corefile blocks (dns { corefile_via }).
const (
	CorefileViaConfigMap = "configmap" // the coredns ConfigMap only
	CorefileViaEKSAddon  = "eks_addon" // also the EKS CoreDNS add-on's configurationValues.corefile
)

// DefaultClusterDomain is used when a cluster block does not set cluster_domain.
const DefaultClusterDomain = "cluster.local"

// Mesh is a decoded spec: the mesh block and its member clusters, in declaration order.
type Mesh struct {
	Name      string
	ForwardBy string // ForwardByNamespace (default) or ForwardByClusterDomain
	Adopt     bool   // take over matching pre-existing peerings, routes, rules, copies and the runbook's DNS Service and Corefile blocks
	// AllowPrivileged (allow_privileged = true) lets replicate and control_plane blocks reach what is otherwise
	// refused as a privilege escalation (see privilege.go): kube-* namespaces, admin-like roles, roles that
	// grant wildcards, escalate, bind, impersonate or ServiceAccount tokens.
	AllowPrivileged bool
	// DNSDisabled (dns { enabled = false }) leaves the Kubernetes side alone: no DNS Services, no Corefile
	// blocks, no kube contexts contacted. meshd then manages the AWS network only.
	DNSDisabled bool
	// CorefileVia (dns { corefile_via }) is where meshd writes its Corefile blocks besides the ConfigMap:
	// CorefileViaConfigMap (only there, the default) or CorefileViaEKSAddon (also into the EKS CoreDNS
	// add-on's configurationValues, so that add-on updates keep them). "" means CorefileViaConfigMap.
	CorefileVia string
	// Corefile (dns { corefile | corefile_import }) is where every member's CoreDNS configuration is, unless
	// a cluster's dns block says otherwise; unset: detected per cluster.
	Corefile CorefileLocation
	Quotas   Quotas
	// Topology (topology) is how the members' VPCs reach each other: TopologyPeering ("" means it) or
	// TopologyTransitGateway, with the regions' gateways in TransitGateways (transitgateway.go).
	Topology        string
	TransitGateways []*TransitGateway
	Clusters        []*Cluster
	// Replicates are the replicate blocks, in declaration order.
	Replicates []*Replicate
	// LoadBalancers are the load_balancer blocks, in declaration order.
	LoadBalancers []*LoadBalancer
	// ControlPlanes are the control_plane blocks, in declaration order.
	ControlPlanes []*ControlPlane

	// Files are the sources the spec was read from, by name, for diagnostics and for the plan's spec hash.
	Files map[string][]byte

	DeclRange hcl.Range            // the mesh block's header
	Attrs     map[string]hcl.Range // value range of each attribute set, e.g. "adopt", "dns.forward_by", "quotas.peerings_per_vpc"
}

// Quotas are the AWS limits the plan checks before it would exceed them. Defaults are AWS's defaults;
// accounts with raised quotas set them in the mesh block's quotas block.
type Quotas struct {
	PeeringsPerVPC       int // active VPC peering connections per VPC (default 50)
	RoutesPerRouteTable  int // non-propagated routes per route table (default 50)
	InboundRulesPerGroup int // inbound rules per security group (default 60)
}

// DefaultQuotas are AWS's default quotas (see shared/limits.md).
var DefaultQuotas = Quotas{PeeringsPerVPC: 50, RoutesPerRouteTable: 50, InboundRulesPerGroup: 60}

// How a member's network is provided (a cluster's network attribute).
const (
	NetworkAWS      = "aws"      // an AWS VPC that meshd peers with the other members' (the default)
	NetworkExternal = "external" // someone else's (Cilium ClusterMesh, a data centre's routing): meshd leaves it alone
)

// Types of a member's DNS Service (dns { service_type }).
const (
	ServiceTypeLoadBalancer = "LoadBalancer" // an internal NLB on AWS; on an external member a load balancer that publishes an IP (MetalLB)
	ServiceTypeNodePort     = "NodePort"     // external members only: reached at dns { node_addresses } and the Service's node port
)

// How meshd authenticates to a member's API server (a cluster's kube_auth attribute).
const (
	// KubeAuthEKS: meshd makes its own EKS token (a presigned STS GetCallerIdentity, as aws eks get-token
	// does) with the member's AWS access; the server and CA come from kube_context's cluster entry, else from
	// EKS DescribeCluster.
	KubeAuthEKS = "eks"
	// KubeAuthKubeconfig: the user of kube_context in meshd's kubeconfig.
	KubeAuthKubeconfig = "kubeconfig"
)

// Cluster is one member cluster. On AWS (the default network), exactly one of EKSCluster or
// VPCID+SecurityGroupID identifies its network; an external member names no AWS objects at all.
type Cluster struct {
	Name        string
	Region      string
	KubeContext string
	// KubeAuth is KubeAuthEKS or KubeAuthKubeconfig, the default resolved: "eks" for a member with
	// eks_cluster and no kube_context, else "kubeconfig". "" only in a spec with errors.
	KubeAuth        string
	EKSCluster      string   // discover VPC, route tables and node SG from this EKS cluster
	VPCID           string   // or name the VPC ...
	SecurityGroupID string   // ... and the node security group directly
	RouteTableIDs   []string // narrows the managed route tables (default: every route table of the VPC)
	CIDRBlocks      []string // narrows the meshed CIDR blocks of the VPC (default: all of them); canonical prefixes
	Namespace       string
	ClusterDomain   string // default DefaultClusterDomain
	// APIServer is the endpoint a control plane uses to reach this cluster (api_server); "" means the EKS
	// cluster's endpoint, else the server of the kube context's cluster in meshd's kubeconfig.
	APIServer string
	// AssumeRole is the ARN of an IAM role meshd assumes (STS AssumeRole) to observe and change this
	// cluster's AWS objects, for a cluster in another account; "" uses the default credentials.
	AssumeRole string
	ExternalID string // the sts:ExternalId the role's trust policy may require; only with AssumeRole
	// Network is NetworkAWS or NetworkExternal; "" means NetworkAWS (see External).
	Network string
	// DNS is the cluster's dns block: how the other members reach its CoreDNS.
	DNS ClusterDNS

	// BlockRanges are where the cluster block and its attributes are written, e.g. `cluster "tidb-1" {`.
	BlockRanges
}

// BlockRanges are the source ranges of a block, so that a diagnostic about a value, also one made after
// observing AWS or Kubernetes, points at the most specific place the user can fix.
type BlockRanges struct {
	DeclRange hcl.Range            // the block's header
	Attrs     map[string]hcl.Range // value range of each attribute that was set, by attribute name
	// Elems holds the range of each element of a list attribute written as a list literal, by attribute name
	// (a CIDR block the VPC does not have, a data plane that is not a member).
	Elems map[string][]hcl.Range
}

// newBlockRanges starts the ranges of the block whose header is decl.
func newBlockRanges(decl hcl.Range) BlockRanges {
	return BlockRanges{DeclRange: decl, Attrs: map[string]hcl.Range{}, Elems: map[string][]hcl.Range{}}
}

// ClusterDNS is a cluster block's dns block: the DNS Service that exposes the cluster's CoreDNS to the
// other members.
type ClusterDNS struct {
	// ServiceType is ServiceTypeLoadBalancer or ServiceTypeNodePort; "" when not set (LoadBalancer on AWS,
	// NodePort on an external member with NodeAddresses).
	ServiceType string
	// NodeAddresses are the IP addresses of the cluster's nodes that the other members reach its NodePort
	// DNS Service at.
	NodeAddresses []string
	// ServiceAnnotations are put on the DNS Service: on AWS on top of the internal-NLB ones, on an external
	// member instead of them (MetalLB's address pool, say).
	ServiceAnnotations map[string]string
	// Corefile is this cluster's dns { corefile | corefile_import }; unset: the mesh's, else detected.
	Corefile CorefileLocation
}

// CorefileLocation is where the spec says the cluster's CoreDNS configuration is: the cluster's setting,
// else the mesh's; unset (the zero value) when meshd is to detect it.
func (m *Mesh) CorefileLocation(c *Cluster) CorefileLocation {
	if c.DNS.Corefile.Set() {
		return c.DNS.Corefile
	}
	return m.Corefile
}

// EKSAuth reports whether meshd signs in to the cluster with an EKS token of its own (kube_auth = "eks").
func (c *Cluster) EKSAuth() bool { return c.KubeAuth == KubeAuthEKS }

// EKSName is the name an EKS token for the cluster carries in x-k8s-aws-id: eks_cluster, else the
// member's name.
func (c *Cluster) EKSName() string {
	if c.EKSCluster != "" {
		return c.EKSCluster
	}
	return c.Name
}

// External reports whether meshd leaves the cluster's network to someone else (network = "external").
func (c *Cluster) External() bool { return c.Network == NetworkExternal }

// DNSServiceType is the type of the cluster's DNS Service, defaults applied.
func (c *Cluster) DNSServiceType() string {
	switch {
	case c.DNS.ServiceType != "":
		return c.DNS.ServiceType
	case len(c.DNS.NodeAddresses) > 0:
		return ServiceTypeNodePort
	}
	return ServiceTypeLoadBalancer
}

// AttrRange returns the range of the named attribute if it was set, else the block's header range.
func (b BlockRanges) AttrRange(name string) hcl.Range {
	if r, ok := b.Attrs[name]; ok {
		return r
	}
	return b.DeclRange
}

// ElemRange returns the range of element i of the named list attribute, else the attribute's range (see
// AttrRange).
func (b BlockRanges) ElemRange(name string, i int) hcl.Range {
	if rs := b.Elems[name]; i >= 0 && i < len(rs) {
		return rs[i]
	}
	return b.AttrRange(name)
}

// AttrRange returns the range of the named mesh attribute ("adopt", "dns.forward_by",
// "quotas.routes_per_route_table", ...) if it was set, else the mesh block's header range.
func (m *Mesh) AttrRange(name string) hcl.Range {
	if r, ok := m.Attrs[name]; ok {
		return r
	}
	return m.DeclRange
}

// Cluster returns the member with the given name, or nil.
func (m *Mesh) Cluster(name string) *Cluster {
	for _, c := range m.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Package model holds the plain data that flows between the providers, the planner and the state: what meshd
// observed in AWS and what each member cluster resolved to. It has no behaviour beyond small helpers and
// depends on nothing else in meshd, so every other package may depend on it.
package model

// Tag keys meshd puts on every AWS object that takes tags.
const (
	TagMesh = "meshd.io/mesh" // the mesh name
	TagID   = "meshd.io/id"   // the object's address in the plan, e.g. peering[tidb-1:tidb-2]
)

// FieldManager is the field manager meshd writes Kubernetes objects as; the daemon's watch uses it to tell
// meshd's own writes from drift.
const FieldManager = "meshd"

// Member is a spec cluster resolved against AWS: the network objects meshd manages for it. An External
// member (network = "external") has none: only its name and its Kubernetes side are set.
type Member struct {
	Name            string   `json:"name"`
	External        bool     `json:"external,omitempty"`
	Region          string   `json:"region"`
	VPCID           string   `json:"vpc_id"`
	CIDRs           []string `json:"cidrs"` // primary first, then associated secondary blocks
	RouteTableIDs   []string `json:"route_table_ids"`
	SecurityGroupID string   `json:"security_group_id"`
	OwnerID         string   `json:"owner_id,omitempty"` // the VPC's account

	// ClusterSecurityGroupID is the EKS cluster security group (on the API endpoint's network interfaces)
	// when it is not SecurityGroupID (a node group has its own): where a control plane that reaches the
	// endpoint privately is let in on TCP 443. Kept in the state so that meshd's rules there can be removed.
	ClusterSecurityGroupID string `json:"cluster_security_group_id,omitempty"`

	// Access is whose credentials reach the member's AWS objects: kept in the state so that a cluster removed
	// from the spec can still be cleaned up in its account.
	Access

	// The Kubernetes side, copied from the spec: how to reach the cluster and which zone its names are
	// forwarded by. Kept in the state so that a cluster removed from the spec can still be cleaned up.
	KubeContext   string `json:"kube_context,omitempty"`
	Namespace     string `json:"namespace,omitempty"`
	ClusterDomain string `json:"cluster_domain,omitempty"` // "" means cluster.local
	// DNS is how its DNS Service exposes its CoreDNS, from the cluster's dns block; nil keeps the default
	// (an AWS member's internal NLB, with meshd's annotations only).
	DNS *DNSExposure `json:"dns,omitempty"`
}

// DNSExposure is a member's dns block: the type of its DNS Service, the node addresses a NodePort Service
// is reached at, and the annotations put on the Service besides (AWS) or instead of (external) the NLB's.
type DNSExposure struct {
	ServiceType   string            `json:"service_type,omitempty"` // "LoadBalancer" or "NodePort"
	NodeAddresses []string          `json:"node_addresses,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Access says which credentials meshd uses for a member's AWS objects: the default chain's (the zero value),
// or those of the IAM role AssumeRole, assumed with STS (and ExternalID, when the role's trust policy asks for
// one). Plan resources carry it so that an executor, also one applying a saved plan, acts in the right
// account.
type Access struct {
	AssumeRole string `json:"assume_role,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
}

// In names a region as reached with the access, for messages: "us-west-2", or "us-west-2 as <role ARN>".
func (a Access) In(region string) string {
	if a.AssumeRole == "" {
		return region
	}
	return region + " as " + a.AssumeRole
}

// VPC is an observed VPC.
type VPC struct {
	ID      string
	Region  string
	OwnerID string
	CIDRs   []string // associated IPv4 blocks, primary first
}

// RouteTable is an observed route table with its routes.
type RouteTable struct {
	ID        string
	Region    string
	VPCID     string
	Main      bool
	SubnetIDs []string // explicitly associated subnets
	Routes    []Route
}

// Route is one route of a route table. Exactly one target field is set for the routes meshd cares about;
// Target names any other target (igw-, nat-, local, ...) so that a conflict can say what is there.
type Route struct {
	DestinationCIDR string `json:"destination_cidr"`
	PeeringID       string `json:"peering_id,omitempty"`
	Target          string `json:"target,omitempty"` // non-peering target, for diagnostics
	State           string `json:"state,omitempty"`  // active | blackhole
	// Propagated marks a route a virtual private gateway propagated (Origin EnableVgwRoutePropagation):
	// it does not count toward the routes-per-table quota.
	Propagated bool `json:"propagated,omitempty"`
}

// Peering statuses as AWS reports them.
const (
	PeeringInitiating = "initiating-request"
	PeeringPending    = "pending-acceptance"
	PeeringActive     = "active"
	PeeringProvision  = "provisioning"
	PeeringRejected   = "rejected"
	PeeringDeleted    = "deleted"
	PeeringDeleting   = "deleting"
	PeeringExpired    = "expired"
	PeeringFailed     = "failed"
)

// ObservedPeering is a VPC peering connection as AWS describes it (plan.Peering is the resource a change
// shows).
type ObservedPeering struct {
	ID              string            `json:"id"`
	RequesterVPC    string            `json:"requester_vpc"`
	RequesterRegion string            `json:"requester_region"`
	AccepterVPC     string            `json:"accepter_vpc"`
	AccepterRegion  string            `json:"accepter_region"`
	Status          string            `json:"status"`
	Tags            map[string]string `json:"tags,omitempty"`
}

// Gone reports whether the peering no longer carries traffic and never will again: AWS keeps such
// peerings listed for a while (and moto forever), so they are treated as absent.
func (p ObservedPeering) Gone() bool {
	switch p.Status {
	case PeeringRejected, PeeringDeleted, PeeringDeleting, PeeringExpired, PeeringFailed:
		return true
	}
	return false
}

// Connects reports whether the peering joins the two VPCs, in either direction.
func (p ObservedPeering) Connects(vpcA, vpcB string) bool {
	return (p.RequesterVPC == vpcA && p.AccepterVPC == vpcB) || (p.RequesterVPC == vpcB && p.AccepterVPC == vpcA)
}

// SecurityGroupRule is an observed ingress rule of a security group.
type SecurityGroupRule struct {
	ID          string            `json:"id"`
	GroupID     string            `json:"group_id"`
	Protocol    string            `json:"protocol"` // "-1" for all
	FromPort    int32             `json:"from_port"`
	ToPort      int32             `json:"to_port"`
	CIDR        string            `json:"cidr"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// NetworkACL is an observed network ACL with its entries and the subnets associated with it (AWS lists every
// subnet of the VPC under exactly one ACL: the default ACL holds those without an explicit association).
type NetworkACL struct {
	ID        string
	VPCID     string
	Default   bool
	SubnetIDs []string
	Entries   []NACLEntry // sorted by rule number
}

// NACLEntry is one IPv4 entry of a network ACL. Rule number 32767 is the implicit final deny.
type NACLEntry struct {
	RuleNumber int32
	Egress     bool
	Protocol   string // "-1" for all, else a protocol number ("6" TCP, "17" UDP)
	CIDR       string
	Allow      bool
	FromPort   int32 // for TCP and UDP; 0-0 when the entry names no range
	ToPort     int32
}

// Observed is everything meshd read from AWS in one observe pass.
type Observed struct {
	VPCs        map[string]VPC                 // by VPC ID
	RouteTables map[string]*RouteTable         // by route table ID
	Peerings    map[string]ObservedPeering     // by peering ID, rejected/deleted ones included
	Rules       map[string][]SecurityGroupRule // ingress rules by security group ID
	// ReferencingRules counts, by security group ID, the ingress rules whose source is a security group or
	// a prefix list rather than a CIDR block. They are not in Rules (meshd neither makes nor matches them),
	// but they count toward the inbound-rules-per-group quota.
	ReferencingRules map[string]int

	// APIEndpoints are the EKS members' API server endpoints, by cluster name (DescribeCluster): what a
	// control plane's kubeconfig reaches them at.
	APIEndpoints map[string]APIEndpoint
	// EKSAutoMode are the EKS members that run in EKS Auto Mode (DescribeCluster's computeConfig): their
	// DNS is a node component without a CoreDNS ConfigMap that meshd could edit.
	EKSAutoMode map[string]bool

	// Transit Gateways (transitgateway.go), by ID: observed only for topology = "transit_gateway".
	TransitGateways map[string]TransitGateway
	TGWAttachments  map[string]TGWAttachment
	TGWRouteTables  map[string]TGWRouteTable

	// Observed only for meshctl verify (aws.Options.ObserveNetwork); nil otherwise.
	NACLs  map[string]NetworkACL          // by network ACL ID, for the members' VPCs
	Egress map[string][]SecurityGroupRule // egress rules by security group ID
}

// APIEndpoint is an EKS cluster's API server as DescribeCluster reports it.
type APIEndpoint struct {
	Server string // https://...
	CAData []byte // PEM
	// PublicAccess and PrivateAccess are the endpoint's access settings.
	PublicAccess  bool
	PrivateAccess bool
}

// NewObserved returns an empty Observed ready to be filled.
func NewObserved() *Observed {
	return &Observed{
		VPCs:        map[string]VPC{},
		RouteTables: map[string]*RouteTable{},
		Peerings:    map[string]ObservedPeering{},
		Rules:       map[string][]SecurityGroupRule{},

		ReferencingRules: map[string]int{},
	}
}

// Labels meshd puts on every Kubernetes object it creates.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByMeshd = "meshd"
	LabelMesh      = TagMesh // meshd.io/mesh=<mesh name>
)

// DNSObserved is what meshd read for one cluster's DNS, for the dns_service and corefile kinds: its DNS
// Service, the NLB behind it, and the CoreDNS ConfigMaps. Nil pointers are objects that do not exist (or, for the load
// balancer, that were not found).
type DNSObserved struct {
	Service      *Service
	LoadBalancer *LoadBalancer
	// CoreDNS is the ConfigMap whose Corefile CoreDNS reads (kube-system/coredns in most layouts); in an
	// import layout that the spec names, the importing ConfigMap is not read and this is nil.
	CoreDNS *ConfigMap
	// Site is where meshd writes its server blocks; the zero value when no CoreDNS configuration was
	// found (Looked then names what was looked for).
	Site   CorefileSite
	Looked []string
	// Custom is the import layout's ConfigMap (Site.Import), nil while it does not exist.
	Custom *ConfigMap
	Backup *ConfigMap // <site name>-meshd-backup, beside the edited Corefile
	// NodeLocal is kube-system/node-local-dns, the NodeLocal DNSCache's Corefile, and NodeLocalBackup
	// meshd's copy of its original; read in cluster-domain mode only (see plan/nodelocal.go).
	NodeLocal, NodeLocalBackup *ConfigMap
}

// CorefileSite is where meshd writes its server blocks in a cluster: into the Corefile held by a key of a
// ConfigMap, keeping every other byte, or (Import) as a key of its own in a ConfigMap whose files the
// Corefile imports, touching no other key.
type CorefileSite struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Key       string `json:"key"`
	Import    bool   `json:"import,omitempty"`
	// Layout is what meshd recognised ("EKS add-on", "kubeadm", "k3s", "AKS", "RKE2"), or "spec" when the
	// spec named the place.
	Layout string `json:"layout,omitempty"`
}

// Found reports whether a CoreDNS configuration was found.
func (s CorefileSite) Found() bool { return s.Name != "" }

func (s CorefileSite) String() string {
	where := s.Namespace + "/" + s.Name
	if s.Key != "Corefile" {
		where += " key " + s.Key
	}
	return where
}

// Service is an observed Service: the fields meshd sets, as the API server returned them (server-set
// annotations, labels and ports included; the planner compares only what meshd sets).
type Service struct {
	Spec     ServiceSpec `json:"spec"`
	Hostname string      `json:"hostname,omitempty"` // status.loadBalancer.ingress[0].hostname
	// IPs are the addresses of status.loadBalancer.ingress[].ip, sorted: what a load balancer that publishes
	// no hostname (MetalLB) gives.
	IPs []string `json:"ips,omitempty"`
	// NodePort is the node port the API server allocated to the DNS port (53/TCP); 0 when none.
	NodePort int32 `json:"node_port,omitempty"`
}

// ServiceSpec is the part of a Service meshd manages.
type ServiceSpec struct {
	Type        string            `json:"type"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Selector    map[string]string `json:"selector,omitempty"`
	Ports       []ServicePort     `json:"ports,omitempty"`
	// SourceRanges is spec.loadBalancerSourceRanges: the blocks a load balancer controller that makes
	// frontend security groups (AWS Load Balancer Controller v2.6+) admits.
	SourceRanges []string `json:"source_ranges,omitempty"`
}

// ServicePort is one port of a Service (the node port, set by the server, is left out).
type ServicePort struct {
	Name       string `json:"name,omitempty"`
	Protocol   string `json:"protocol"`
	Port       int32  `json:"port"`
	TargetPort string `json:"target_port"`
}

// LoadBalancer is an observed ELBv2 load balancer with the private addresses of its network interfaces.
type LoadBalancer struct {
	Name      string   `json:"name"`
	ARN       string   `json:"arn"`
	DNSName   string   `json:"dns_name"`
	State     string   `json:"state"`               // active | provisioning | active_impaired | failed
	Addresses []string `json:"addresses,omitempty"` // sorted
	// SecurityGroups are the load balancer's security groups, sorted: its frontend groups (AWS Load Balancer
	// Controller v2.6+ makes one per NLB); none for an NLB made without (an older controller).
	SecurityGroups []string `json:"security_groups,omitempty"`
}

// LoadBalancerActive is the State of a load balancer that serves traffic.
const LoadBalancerActive = "active"

// ConfigMap is an observed ConfigMap: its labels, its data and who manages its fields.
type ConfigMap struct {
	Labels map[string]string `json:"labels,omitempty"`
	Data   map[string]string `json:"data,omitempty"`
	// Managers are the field managers of its managedFields (e.g. "eks" for the EKS CoreDNS add-on).
	Managers []string `json:"managers,omitempty"`
}

// TaggedBy reports whether an AWS object's tags mark it as meshd's for mesh: the one ownership check for
// every kind that takes tags.
func TaggedBy(tags map[string]string, mesh string) bool { return tags[TagMesh] == mesh }

// MeshOf is the mesh an object's tags give it to, or "" when it carries no meshd tag.
func MeshOf(tags map[string]string) string { return tags[TagMesh] }

// OwnedBy reports whether labels mark a Kubernetes object as meshd's for mesh: the one ownership check for
// every Kubernetes kind.
func OwnedBy(labels map[string]string, mesh string) bool {
	return labels[LabelManagedBy] == ManagedByMeshd && labels[LabelMesh] == mesh
}

// Addon is a member's EKS CoreDNS managed add-on as DescribeAddon showed it (and, when meshd is to write
// into it, DescribeAddonConfiguration for its version). ConfigurationValues may hold credentials (a
// Corefile's route53 keys, say): it never leaves the process, as a plan's Corefile text does not.
type Addon struct {
	Cluster    string `json:"cluster"`
	Region     string `json:"region"`
	EKSCluster string `json:"eks_cluster"`
	Name       string `json:"name"` // "coredns"
	Version    string `json:"version"`
	Status     string `json:"status"` // ACTIVE, UPDATING, DEGRADED, ...
	// ConfigurationValues are the add-on's configuration as AWS returned it ("" when it has none).
	ConfigurationValues string `json:"-"`
	// SchemaChecked reports that the configuration schema of Version was read; SchemaHasCorefile that it
	// has a corefile property (without it the add-on cannot take meshd's blocks).
	SchemaChecked     bool `json:"schema_checked,omitempty"`
	SchemaHasCorefile bool `json:"schema_has_corefile,omitempty"`
}

// CoreDNSAddon is the name of the EKS CoreDNS managed add-on.
const CoreDNSAddon = "coredns"

// Package model holds the plain data that flows between the providers, the planner and the state: what meshd
// observed in AWS and what each member cluster resolved to. It has no behaviour beyond small helpers and
// depends on nothing else in meshd, so every other package may depend on it.
package model

// Tag keys meshd puts on every AWS object that takes tags.
const (
	TagMesh = "meshd.io/mesh" // the mesh name
	TagID   = "meshd.io/id"   // the object's address in the plan, e.g. peering[tidb-1/tidb-2]
)

// Member is a spec cluster resolved against AWS: the network objects meshd manages for it.
type Member struct {
	Name            string   `json:"name"`
	Region          string   `json:"region"`
	VPCID           string   `json:"vpc_id"`
	CIDRs           []string `json:"cidrs"` // primary first, then associated secondary blocks
	RouteTableIDs   []string `json:"route_table_ids"`
	SecurityGroupID string   `json:"security_group_id"`
	OwnerID         string   `json:"owner_id,omitempty"` // the VPC's account
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

// Peering is an observed VPC peering connection.
type Peering struct {
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
func (p Peering) Gone() bool {
	switch p.Status {
	case PeeringRejected, PeeringDeleted, PeeringDeleting, PeeringExpired, PeeringFailed:
		return true
	}
	return false
}

// Connects reports whether the peering joins the two VPCs, in either direction.
func (p Peering) Connects(vpcA, vpcB string) bool {
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

// Observed is everything meshd read from AWS in one observe pass.
type Observed struct {
	VPCs        map[string]VPC                 // by VPC ID
	RouteTables map[string]*RouteTable         // by route table ID
	Peerings    map[string]Peering             // by peering ID, rejected/deleted ones included
	Rules       map[string][]SecurityGroupRule // ingress rules by security group ID
}

// NewObserved returns an empty Observed ready to be filled.
func NewObserved() *Observed {
	return &Observed{
		VPCs:        map[string]VPC{},
		RouteTables: map[string]*RouteTable{},
		Peerings:    map[string]Peering{},
		Rules:       map[string][]SecurityGroupRule{},
	}
}

package plan

import (
	"sort"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/state"
)

// Input is everything Compute needs. Members are the spec's clusters resolved against AWS, in spec order;
// Observed must cover their VPCs and those of the state's members (so that a cluster removed from the spec
// can be cleaned up).
type Input struct {
	Mesh     string
	SpecHash string
	Adopt    bool
	Members  []model.Member
	Observed *model.Observed
	State    *state.State
	// Destroy plans the removal of everything meshd owns, whatever the members ask for.
	Destroy bool

	// AllowPrivileged (the mesh's allow_privileged) lets replicated roles and control-plane roles that grant
	// wildcards, escalate, bind, impersonate or ServiceAccount tokens into the plan (privilege.go).
	AllowPrivileged bool

	// DNS, when set, plans the DNS Services and Corefiles as well (see dns.go); nil leaves DNS alone.
	DNS *DNSInput
	// Replicas, when set, plans the copies of replicated objects (see replica.go); nil leaves them alone.
	Replicas *ReplicaInput
	// LoadBalancers, when set, plans the load_balancer blocks (see loadbalancer.go); nil leaves them alone.
	LoadBalancers *LoadBalancerInput
	// ControlPlanes, when set, plans the control planes' accounts and kubeconfig Secrets (see
	// controlplane.go); nil leaves them alone.
	ControlPlanes *ControlPlaneInput
	// TransitGateways, for topology = "transit_gateway", is the spec's gateways (transitgateway.go); nil
	// for a mesh that peers.
	TransitGateways *TGWInput
	// Kinds holds the observations of kinds registered outside this package (KindInfo.Plan), by kind.
	Kinds map[Kind]any
}

// Compute diffs the desired mesh against the observed world. Ownership decides what may be touched:
//
//	object       | meshd's when                                   | observed, not desired | desired, observed, not meshd's
//	-------------+------------------------------------------------+-----------------------+-------------------------------
//	peering      | tag meshd.io/mesh = mesh                       | - delete              | = keep (> adopt if adopt)
//	route        | recorded in state with the same target, or (if | - delete (if recorded) | same peering: = keep (> adopt);
//	             | desired) its target is a peering meshd owns    |                       | other target: conflict
//	sg_rule      | tag meshd.io/mesh = mesh                       | - delete              | = keep if it allows the traffic
//
// Desired and missing is a create (+); meshd's but different (a pending peering, a route to a peering that was
// deleted) is an update (~). Rejected, deleted and expired peerings count as missing: AWS keeps listing them.
func Compute(in Input) *Plan {
	c := newComputer(in)
	for _, k := range Kinds() { // by rank: a kind's planner may use what the planners before it found
		switch {
		case k.planner != nil:
			k.planner(c)
		case k.Plan != nil:
			k.Plan(in, c.plan)
		}
	}
	return c.finish()
}

type computer struct {
	in      Input
	members []model.Member // sorted by name; empty when destroying
	// networked are the members whose network meshd manages (not External): the ones peered, routed and
	// let in.
	networked []model.Member
	plan      *Plan

	// peeringRef is, by pair address, how routes of that pair reach their peering.
	peeringRef map[string]peeringRef
	// ownedPeerings are the observed, not gone, peerings of this mesh by ID; usedPeerings are those the
	// desired mesh keeps.
	ownedPeerings map[string]model.ObservedPeering
	usedPeerings  map[string]bool
	// routedPeerings are the peerings the state records routes through (routesRecordedThrough).
	routedPeerings map[string]bool
	// routeDeletesByPeering lets a peering's delete wait for the deletes of routes through it.
	routeDeletesByPeering map[string][]string
	// tgwAttach is, by cluster, the change that makes or associates its gateway attachment; tgwRouteChanges
	// are the changes that route through the gateways (meshd's peerings are deleted after them).
	tgwAttach       map[string]string
	tgwRouteChanges []string
	// tgwPeer is, by "region:peer region", how routes reach the regions' peering attachment; tgwStatic is,
	// by "region|block", the change that makes the region's gateway route to a remote block.
	tgwPeer   map[string]tgwPeerRef
	tgwStatic map[string]string
	// gatewayMoves are, by member, the route kind's replacements of meshd's routes to a gateway by routes
	// through a peering (the switch back from the gateway topology) from or to the member: its gateway
	// attachment goes after them. gatewayRoutes is the state's records of meshd's VPC routes to gateways
	// (gatewayRouteRecords).
	gatewayMoves  map[string][]string
	gatewayMoved  map[string]bool // route table | destination
	gatewayRoutes map[string]gatewayRouteRecord
}

func newComputer(in Input) *computer {
	members := append([]model.Member(nil), in.Members...)
	if in.Destroy {
		members = nil
	}
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	byName := map[string]model.Member{}
	for _, m := range in.Members {
		byName[m.Name] = m
	}
	if in.Destroy {
		byName = nil // after a complete destroy the state has no members left
	}
	c := &computer{
		in:      in,
		members: members,
		plan: &Plan{
			FormatVersion: FormatVersion, Mesh: in.Mesh, Destroy: in.Destroy, SpecHash: in.SpecHash,
			Lineage: in.State.Lineage, Serial: in.State.Serial, Members: byName,
		},
		peeringRef:            map[string]peeringRef{},
		ownedPeerings:         map[string]model.ObservedPeering{},
		usedPeerings:          map[string]bool{},
		routeDeletesByPeering: map[string][]string{},
		gatewayMoves:          map[string][]string{},
		gatewayMoved:          map[string]bool{},
	}
	for _, m := range members {
		if m.External {
			c.plan.UnmanagedNetworks = append(c.plan.UnmanagedNetworks, m.Name)
		} else {
			c.networked = append(c.networked, m)
		}
	}
	for id, p := range in.Observed.Peerings {
		if !p.Gone() && model.TaggedBy(p.Tags, in.Mesh) {
			c.ownedPeerings[id] = p
		}
	}
	return c
}

func (c *computer) add(ch Change) { c.plan.Changes = append(c.plan.Changes, ch) }

// memberOfVPC finds the member (current, else former, in name order) whose VPC this is.
func (c *computer) memberOfVPC(vpc string) (model.Member, bool) {
	for _, m := range c.in.Members {
		if vpc != "" && m.VPCID == vpc {
			return m, true
		}
	}
	for _, name := range sortedNames(c.in.State.Members) {
		if m := c.in.State.Members[name]; vpc != "" && m.VPCID == vpc {
			return m, true
		}
	}
	return model.Member{}, false
}

// clusterOfVPC names the member whose VPC this is, else the VPC itself.
func (c *computer) clusterOfVPC(vpc string) string {
	if m, ok := c.memberOfVPC(vpc); ok {
		return m.Name
	}
	return vpc
}

// memberOfGroup finds the member (current, else former) whose node security group this is.
func (c *computer) memberOfGroup(group string) model.Member {
	for _, m := range c.in.Members {
		if m.SecurityGroupID == group || m.ClusterSecurityGroupID == group {
			return m
		}
	}
	for _, name := range sortedNames(c.in.State.Members) {
		if m := c.in.State.Members[name]; m.SecurityGroupID == group || m.ClusterSecurityGroupID == group {
			return m
		}
	}
	return model.Member{Name: group}
}

func sortedNames(m map[string]model.Member) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Package plan turns what the spec asks for and what was observed into an ordered list of changes.
//
// Compute is a pure function: no I/O, no clock, no randomness. The same inputs give the same plan, byte for
// byte, which is what makes golden tests and "a second plan shows no changes" possible.
package plan

import (
	"time"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/state"
)

// FormatVersion is the version of the saved-plan and JSON output format.
const FormatVersion = 1

// Change is one step of a plan. What Before and After hold depends on the action (see Action).
type Change struct {
	Action  Action   `json:"action"`
	Address string   `json:"address"`
	Kind    Kind     `json:"kind"`
	Reason  string   `json:"reason"`
	Before  Resource `json:"before"`
	After   Resource `json:"after"`
	// DependsOn lists addresses of changes in the same plan that must succeed first.
	DependsOn []string `json:"depends_on,omitempty"`
}

// Conflict is something the spec asks for that meshd will not do because an object it does not own is in the
// way. It is never resolved by overwriting: the user decides.
type Conflict struct {
	Address string `json:"address"`
	Summary string `json:"summary"`
	Detail  string `json:"detail"`
}

// Member is a resolved cluster, as stored in plans and state.
type Member = model.Member

// Plan is the ordered result of Compute, and the content of a saved plan file.
type Plan struct {
	FormatVersion int    `json:"format_version"`
	Mesh          string `json:"mesh"`
	Destroy       bool   `json:"destroy,omitempty"`
	// SpecHash, Lineage and Serial pin the plan to the spec and state it was made from: applying it against
	// anything else is refused, because the world it describes may have changed.
	SpecHash string `json:"spec_hash"`
	SpecPath string `json:"spec_path,omitempty"`
	Lineage  string `json:"lineage,omitempty"`
	Serial   uint64 `json:"serial"`

	Changes   []Change   `json:"changes"`
	Conflicts []Conflict `json:"conflicts,omitempty"`
	Warnings  []string   `json:"warnings,omitempty"`
	// Unobserved are the member clusters whose Kubernetes side could not be read (DNSInput.Unobserved):
	// the plan leaves their DNS alone, so it is not the whole correction.
	Unobserved []string `json:"unobserved,omitempty"`

	// UnmanagedNetworks are the external members (network = "external"): no peering, route or rule is
	// planned for them, which the rendered plan says once.
	UnmanagedNetworks []string `json:"unmanaged_networks,omitempty"`

	// Members are the clusters as resolved for this plan; apply stores them in the state.
	Members map[string]model.Member `json:"members"`
	// Record and Forget fix the state without touching AWS: routes that are meshd's by their target but were
	// not recorded (an apply interrupted after CreateRoute), and records of routes that no longer exist.
	Record []state.RouteRecord `json:"record,omitempty"`
	Forget []state.RouteRecord `json:"forget,omitempty"`
	// RecordTGW and ForgetTGW are the same for the gateway attachments and VPC routes (tgw_attachment,
	// tgw_vpc_route), by address.
	RecordTGW map[string]TGWRecord `json:"record_tgw,omitempty"`
	ForgetTGW []string             `json:"forget_tgw,omitempty"`
	// Retain are former members the state must keep although this plan may succeed: objects of theirs that
	// it holds back (a DNS Service another Corefile may still forward to) are deleted by a later plan,
	// which finds them through the state's record of the member.
	Retain []string `json:"retain,omitempty"`
	// ForgetReplicas are addresses of recorded copies that are gone and no longer wanted, or recorded at
	// another address now; RecordReplicas are meshd's copies found where the state has no (or another)
	// record of them.
	ForgetReplicas []string                       `json:"forget_replicas,omitempty"`
	RecordReplicas map[string]state.ReplicaRecord `json:"record_replicas,omitempty"`
	// ForgetLoadBalancers and RecordLoadBalancers are the same for the objects of load_balancer blocks.
	ForgetLoadBalancers []string                            `json:"forget_load_balancers,omitempty"`
	RecordLoadBalancers map[string]state.LoadBalancerRecord `json:"record_load_balancers,omitempty"`
	// TargetGroups are what the plan shows of each load_balancer block's target group: not a change.
	TargetGroups []TargetGroupStatus `json:"target_groups,omitempty"`

	// CoreDNS says, per member whose Kubernetes side was observed, where meshd found its CoreDNS
	// configuration (the layout), or that it found none (NoCoreDNS, which Check reports at the cluster).
	CoreDNS   []CoreDNSFound `json:"coredns,omitempty"`
	NoCoreDNS []NoCoreDNS    `json:"-"`
	// DomainMismatches are members whose CoreDNS does not serve their declared cluster domain, found by
	// Compute for Check to report against the spec. Not saved: Check runs on the plan Compute returned.
	DomainMismatches []DomainMismatch `json:"-"`
	// Privileged are the replicated objects and control-plane roles that grant what a spec may hand out
	// only with allow_privileged (privilege.go), found by Compute for Check. Not saved.
	Privileged []Privileged `json:"-"`
	// Addons say, for each member whose CoreDNS is an EKS managed add-on, what an add-on update would do to
	// meshd's blocks (addon.go). ForgetAddons are clusters whose add-on record is void: the add-on is
	// gone, or meshd's blocks are no longer in it.
	Addons       []AddonNote `json:"addons,omitempty"`
	ForgetAddons []string    `json:"forget_addons,omitempty"`
	// ForgetControlPlanes and RecordControlPlanes are the same for the objects of control_plane blocks.
	ForgetControlPlanes []string                       `json:"forget_control_planes,omitempty"`
	RecordControlPlanes map[string]state.ReplicaRecord `json:"record_control_planes,omitempty"`
	// NextRenewal is when the earliest token this plan keeps is due for renewal: meshd plans again then.
	NextRenewal *time.Time `json:"next_renewal,omitempty"`
}

// Summary counts changes by action.
type Summary struct {
	Add, Change, Destroy, Adopt int
}

// Summary counts the plan's changes.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			s.Add++
		case Update:
			s.Change++
		case Delete:
			s.Destroy++
		case Adopt:
			s.Adopt++
		case Replace:
			s.Add++
			s.Destroy++
		}
	}
	return s
}

// HasChanges reports whether applying the plan would change anything in AWS or Kubernetes.
func (p *Plan) HasChanges() bool {
	for _, c := range p.Changes {
		if c.Action.IsChange() {
			return true
		}
	}
	return false
}

// Find returns the change at address, or nil.
func (p *Plan) Find(address string) *Change {
	for i := range p.Changes {
		if p.Changes[i].Address == address {
			return &p.Changes[i]
		}
	}
	return nil
}

// FixState applies the plan's fixes of the state's records, kind by kind (Records.Fix): the fixes that need
// no change in AWS or Kubernetes. Apply calls it before any change runs, so that the changes' own records
// win.
func (p *Plan) FixState(st *state.State) {
	for _, k := range Kinds() {
		if k.State != nil && k.State.Fix != nil {
			k.State.Fix(p, st)
		}
	}
}

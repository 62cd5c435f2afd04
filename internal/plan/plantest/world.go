// Package plantest provides an in-memory world for planner tests and benchmarks: members with their VPCs,
// route tables and security groups, the DNS objects of their Kubernetes clusters (see dns.go), and
// executors that apply plan changes to the world the way AWS and Kubernetes would. It lets a test run
// plan -> apply -> plan without a network, so "a converged mesh plans no changes" is derived from the code,
// never written down by hand.
package plantest

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/kindio"
	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// World is a fake AWS account holding a mesh's network objects, and the fake Kubernetes clusters of its
// members.
type World struct {
	Mesh     string
	Observed *model.Observed
	// DNS is what each cluster holds for DNS, by cluster name: meshd's Service and its load balancer, the
	// CoreDNS ConfigMap and the backup. Tests may change it between plans.
	DNS map[string]model.DNSObserved
	// Unobserved clusters cannot be read (an unreachable API server): DNSInput leaves them out.
	Unobserved map[string]bool
	// ForwardBy is the spec's dns.forward_by ("" is namespace mode); NodeLocal caches are put with PutNodeLocal.
	ForwardBy string
	// LoadBalancerAddresses, by cluster, are the addresses a new load balancer of its DNS Service gets.
	LoadBalancerAddresses map[string][]string
	// StuckLoadBalancers never get a load balancer: creating or updating their Service fails waiting.
	StuckLoadBalancers map[string]bool

	// Objects are the objects of any kind in each cluster that replicate blocks copy, by cluster, then
	// "<kind> <namespace>/<name>" (objects.go); Replicates are the blocks.
	Objects    map[string]map[string]kubeobj.Object
	Replicates []Replicate

	// ControlPlanes and LoadBalancers are the spec's control_plane and load_balancer blocks, whose objects
	// are in Objects (controlplane.go, loadbalancer.go). Addons are the members' EKS CoreDNS add-ons by
	// cluster, and CorefileVia the spec's dns.corefile_via (addon.go).
	ControlPlanes []*spec.ControlPlane
	LoadBalancers []*spec.LoadBalancer
	Addons        map[string]model.Addon
	CorefileVia   string
	// TransitGateways, when set, makes the mesh's topology transit_gateway (transitgateway.go).
	TransitGateways *plan.TGWInput

	mu               sync.Mutex
	uids             int
	kube             map[string]kubeclient.Interface // fake clients by cluster (kinds.go)
	created          map[string]int                  // objects created per address, so IDs do not depend on goroutine order
	originalCorefile map[string]string
	// originalNodeLocal are the cache Corefiles PutNodeLocal put, by cluster.
	originalNodeLocal map[string]string
	cidrs             map[string]string // first CIDR block by cluster
}

// Cluster describes one member to create in the world.
type Cluster struct {
	Name, Region string
	CIDRs        []string
	RouteTables  int
	// Corefile is the cluster's Corefile before meshd; "" is the EKS CoreDNS add-on's default.
	Corefile string
	// External makes a member whose network meshd does not manage (network = "external"): no VPC, route
	// tables or security group; Region, CIDRs and RouteTables are ignored.
	External bool
}

// NewWorld creates a VPC, route tables and a node security group for each cluster, and a CoreDNS ConfigMap
// in its Kubernetes cluster, and returns the world and the resolved members, in the given order.
func NewWorld(mesh string, clusters []Cluster) (*World, []model.Member) {
	w := &World{Mesh: mesh, Observed: model.NewObserved(), DNS: map[string]model.DNSObserved{},
		originalCorefile: map[string]string{}, cidrs: map[string]string{}}
	var members []model.Member
	for i, c := range clusters {
		text := c.Corefile
		if text == "" {
			text = corefile.EKSDefault
		}
		w.originalCorefile[c.Name] = text
		w.DNS[c.Name] = model.DNSObserved{CoreDNS: &model.ConfigMap{Data: map[string]string{plan.CorefileKey: text}}}
		if c.External {
			members = append(members, model.Member{Name: c.Name, External: true})
			continue
		}
		w.cidrs[c.Name] = c.CIDRs[0]
		vpc := fmt.Sprintf("vpc-%04x", i+1)
		m := model.Member{Name: c.Name, Region: c.Region, VPCID: vpc, CIDRs: c.CIDRs,
			SecurityGroupID: fmt.Sprintf("sg-%04x", i+1), OwnerID: "123456789012"}
		w.Observed.VPCs[vpc] = model.VPC{ID: vpc, Region: c.Region, CIDRs: c.CIDRs, OwnerID: m.OwnerID}
		for j := 0; j < c.RouteTables; j++ {
			rt := fmt.Sprintf("rtb-%04x%02x", i+1, j)
			w.Observed.RouteTables[rt] = &model.RouteTable{ID: rt, Region: c.Region, VPCID: vpc, Main: j == 0,
				Routes: []model.Route{{DestinationCIDR: c.CIDRs[0], Target: "local", State: "active"}}}
			m.RouteTableIDs = append(m.RouteTableIDs, rt)
		}
		w.Observed.Rules[m.SecurityGroupID] = nil
		members = append(members, m)
	}
	return w, members
}

// Grid returns n clusters spread over four regions, each with one /16 and the given number of route tables.
func Grid(n, routeTables int) []Cluster {
	regions := []string{"us-west-1", "us-west-2", "us-east-1", "eu-west-1"}
	out := make([]Cluster, n)
	for i := range out {
		out[i] = Cluster{Name: fmt.Sprintf("c%03d", i+1), Region: regions[i%len(regions)],
			CIDRs: []string{fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)}, RouteTables: routeTables}
	}
	return out
}

// id derives an object's ID from its address and how often that address was created before.
func (w *World) id(prefix, address string) string {
	if w.created == nil {
		w.created = map[string]int{}
	}
	w.created[address]++
	h := fnv.New32a()
	fmt.Fprintf(h, "%s#%d", address, w.created[address])
	return fmt.Sprintf("%s-%08x", prefix, h.Sum32())
}

// executors are the world's executors of the built-in kinds, each registered by the file that simulates
// the kind (as the providers' are).
var executors apply.Table[*World]

// Executors returns apply executors that change the world: the built-in kinds it simulates, and the kinds
// registered in kindio with a Kubernetes Execute, run against the world's fake clients.
func (w *World) Executors() map[plan.Kind]apply.Executor {
	out := executors.Make(w)
	for _, k := range kindio.KubeKinds() {
		io, _ := kindio.KubeOf(k)
		out[k] = kindio.KubeExecutor(io, func(cl kindio.Cluster) (kubeclient.Interface, error) { return w.KubeClient(cl.Name), nil })
	}
	return out
}

type executor struct{ w *World }

func init() {
	executors.Register(func(w *World) apply.Executor { return executor{w} }, plan.KindPeering, plan.KindRoute, plan.KindSGRule)
}

// Execute applies an AWS change to the world and, for routes, records it in the state as the AWS provider's
// executor does.
func (e executor) Execute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	id, err := e.run(ctx, ch, known)
	if err != nil || ch.Kind != plan.KindRoute {
		return apply.WithID(id, err)
	}
	if ch.Action == plan.Delete {
		r := ch.Before.(plan.Route)
		return apply.Outcome{Record: func(st *state.State) { st.RemoveRoute(r.RouteTableID, r.DestinationCIDR) }}, nil
	}
	r := ch.After.(plan.Route)
	peering := r.PeeringID
	if peering == "" {
		peering, _ = known(r.PeeringAddress)
	}
	rec := state.RouteRecord{Region: r.Region, VPCID: r.VPCID, RouteTableID: r.RouteTableID, DestinationCIDR: r.DestinationCIDR, PeeringID: peering}
	return apply.Outcome{Record: func(st *state.State) {
		st.AddRoute(rec)
		plan.ForgetTGWVPCRouteOf(st, r.Cluster, r.RouteTableID, r.DestinationCIDR)
	}}, nil
}

func (e executor) run(_ context.Context, ch plan.Change, known apply.Known) (string, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	obs := w.Observed
	tags := map[string]string{model.TagMesh: w.Mesh, model.TagID: ch.Address}
	switch r := pick(ch).(type) {
	case plan.Peering:
		switch ch.Action {
		case plan.Create:
			id := w.id("pcx", ch.Address)
			obs.Peerings[id] = model.ObservedPeering{ID: id, RequesterVPC: r.Requester.VPCID, RequesterRegion: r.Requester.Region,
				AccepterVPC: r.Accepter.VPCID, AccepterRegion: r.Accepter.Region, Status: model.PeeringActive, Tags: tags}
			return id, nil
		case plan.Update, plan.Adopt:
			p := obs.Peerings[r.ID]
			p.Status = model.PeeringActive
			if ch.Action == plan.Adopt {
				p.Tags = tags
			}
			obs.Peerings[r.ID] = p
			return r.ID, nil
		case plan.Delete:
			p := obs.Peerings[r.ID]
			p.Status = model.PeeringDeleted
			obs.Peerings[r.ID] = p
			return "", nil
		}
	case plan.Route:
		rt := obs.RouteTables[r.RouteTableID]
		if rt == nil {
			return "", fmt.Errorf("no route table %s", r.RouteTableID)
		}
		peering := r.PeeringID
		if peering == "" {
			peering, _ = known(r.PeeringAddress)
		}
		switch ch.Action {
		case plan.Create, plan.Update:
			for i := range rt.Routes {
				if rt.Routes[i].DestinationCIDR == r.DestinationCIDR {
					if ch.Action == plan.Create {
						return "", fmt.Errorf("RouteAlreadyExists: %s in %s", r.DestinationCIDR, r.RouteTableID)
					}
					rt.Routes[i] = model.Route{DestinationCIDR: r.DestinationCIDR, PeeringID: peering, State: "active"}
					return "", nil
				}
			}
			if ch.Action == plan.Update {
				return "", fmt.Errorf("InvalidRoute.NotFound: %s in %s", r.DestinationCIDR, r.RouteTableID)
			}
			rt.Routes = append(rt.Routes, model.Route{DestinationCIDR: r.DestinationCIDR, PeeringID: peering, State: "active"})
		case plan.Delete:
			w.DeleteRoute(r.RouteTableID, r.DestinationCIDR)
		}
		return "", nil
	case plan.SGRule:
		switch ch.Action {
		case plan.Create:
			id := w.id("sgr", ch.Address)
			obs.Rules[r.GroupID] = append(obs.Rules[r.GroupID], model.SecurityGroupRule{ID: id, GroupID: r.GroupID,
				Protocol: r.Protocol, FromPort: -1, ToPort: -1, CIDR: r.CIDR, Description: r.Description, Tags: tags})
			return id, nil
		case plan.Adopt:
			for i, rule := range obs.Rules[r.GroupID] {
				if rule.ID == r.RuleID {
					obs.Rules[r.GroupID][i].Tags = tags
				}
			}
			return r.RuleID, nil
		case plan.Delete:
			w.DeleteRule(r.GroupID, r.RuleID)
			return "", nil
		}
	}
	return "", fmt.Errorf("unsupported change %s %s", ch.Action, ch.Address)
}

func pick(ch plan.Change) plan.Resource {
	if ch.Action == plan.Delete {
		return ch.Before
	}
	return ch.After
}

// DeleteRoute removes a route, as someone with console access might.
func (w *World) DeleteRoute(routeTable, cidr string) {
	rt := w.Observed.RouteTables[routeTable]
	for i := range rt.Routes {
		if rt.Routes[i].DestinationCIDR == cidr {
			rt.Routes = append(rt.Routes[:i], rt.Routes[i+1:]...)
			return
		}
	}
}

// DeleteRule removes a security-group rule by ID.
func (w *World) DeleteRule(group, id string) {
	rules := w.Observed.Rules[group]
	for i := range rules {
		if rules[i].ID == id {
			w.Observed.Rules[group] = append(rules[:i], rules[i+1:]...)
			return
		}
	}
}

// AddRoute adds a route that meshd did not create.
func (w *World) AddRoute(routeTable string, r model.Route) {
	rt := w.Observed.RouteTables[routeTable]
	rt.Routes = append(rt.Routes, r)
}

// PeeringBetween returns the live peering joining two VPCs, if any.
func (w *World) PeeringBetween(vpcA, vpcB string) (model.ObservedPeering, bool) {
	ids := make([]string, 0, len(w.Observed.Peerings))
	for id := range w.Observed.Peerings {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := w.Observed.Peerings[id]
		if !p.Gone() && p.Connects(vpcA, vpcB) {
			return p, true
		}
	}
	return model.ObservedPeering{}, false
}

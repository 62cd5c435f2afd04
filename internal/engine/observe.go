package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"golang.org/x/sync/errgroup"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// observation is what one plan reads of the world. Each observer fills its own part of it; in is the
// planner's input the parts end up in.
type observation struct {
	e       *Engine
	v       *passView
	m       *spec.Mesh
	st      *state.State
	destroy bool
	// dnsOn: with DNS turned off meshd leaves Kubernetes alone — except that destroy still removes DNS
	// objects an earlier apply made (the state records their Corefile zones), rather than orphaning them.
	dnsOn bool

	aws     *awsprovider.Observation
	held    map[string]model.Member // members AWS could not resolve, planned around (PartialDNS)
	kubeObs map[string]model.DNSObserved
	// unobserved are the clusters whose Kubernetes side could not be read (PartialDNS: planned around).
	unobserved map[string]bool
	addons     addonObservation
	in         plan.Input
	diags      hcl.Diagnostics

	partsMu sync.Mutex
	parts   map[plan.Kind]*plan.Parts // of the kinds registered in kindio (kindparts.go)
}

// observer reads one part of the world for a plan: the AWS side, or what a group of kinds plans from. The
// observers a plan needs run at the same time (observe); then, by order, each one's resolve, which needs
// the members AWS resolved.
type observer struct {
	name string
	// order places a built-in observer among the others: their diagnostics are reported and their
	// resolves run by order, lower first. It is unique; the plan goldens show the order, and
	// TestBuiltinObserverOrder pins it.
	order int
	// kinds are the kinds whose observation this is (TestEveryKindIsObserved).
	kinds []plan.Kind
	on    func(o *observation) bool
	// observe reads the part; it must not touch another observer's part.
	observe func(o *observation, ctx context.Context) (hcl.Diagnostics, error)
	// resolve, when set, completes the part once the members are known. Unless evenWithErrors, it does not
	// run when the plan already has errors.
	resolve        func(o *observation, ctx context.Context) (hcl.Diagnostics, error)
	evenWithErrors bool
}

// builtinObservers are the parts the built-in kinds read, by order, each registered (registerObserver) by
// the engine file that implements it. A kind registered outside them registers its I/O in kindio instead,
// and its observer comes from there; a plan runs both (observers, kindparts.go).
var builtinObservers []observer

// registerObserver adds a built-in observer. It panics when the observer's name or order is taken or one of
// its kinds is already another's: programming errors, found by any test that loads the package.
func registerObserver(ob observer) {
	for _, other := range builtinObservers {
		if other.name == ob.name || other.order == ob.order {
			panic(fmt.Sprintf("engine: observers %q and %q have the same name or order %d", other.name, ob.name, ob.order))
		}
		for _, k := range ob.kinds {
			if slices.Contains(other.kinds, k) {
				panic(fmt.Sprintf("engine: kind %q observed by both %q and %q", k, other.name, ob.name))
			}
		}
	}
	builtinObservers = append(builtinObservers, ob)
	slices.SortFunc(builtinObservers, func(a, b observer) int { return cmp.Compare(a.order, b.order) })
}

// The AWS side and the DNS read, which several kinds plan from; the other built-in observers are
// registered by their files (replicas.go, addons.go, controlplane.go, loadbalancers.go).
func init() {
	registerObserver(observer{name: "aws", order: 10, kinds: []plan.Kind{plan.KindPeering, plan.KindRoute, plan.KindSGRule,
		plan.KindTransitGateway, plan.KindTGWRouteTable, plan.KindTGWAttachment, plan.KindTGWVPCRoute, plan.KindTGWPeering, plan.KindTGWRoute},
		on: func(*observation) bool { return true }, observe: (*observation).observeAWS})
	registerObserver(observer{name: "dns", order: 20, kinds: []plan.Kind{plan.KindDNSService, plan.KindCorefile, plan.KindNodeLocalDNS},
		on: func(o *observation) bool { return o.dnsOn }, observe: (*observation).observeKubeDNS})
	// Last: it reads the NLBs behind the DNS Services the dns observer read, and hands the add-ons over.
	registerObserver(observer{name: "dns load balancers", order: 70, on: func(o *observation) bool { return o.dnsOn },
		resolve: (*observation).resolveDNS})
}

// observe runs the observers the plan needs: their reads at the same time, then their resolves in order. It
// returns the first error in list order; diagnostics are in o.diags.
func (o *observation) observe(ctx context.Context) error {
	var active []observer
	for _, ob := range observers() {
		if ob.on(o) {
			active = append(active, ob)
		}
	}
	diags := make([]hcl.Diagnostics, len(active))
	errs := make([]error, len(active))
	var g errgroup.Group // not WithContext: a failed part does not cut the others short
	for i, ob := range active {
		if ob.observe != nil {
			g.Go(func() error { diags[i], errs[i] = ob.observe(o, ctx); return nil })
		}
	}
	_ = g.Wait()
	for _, d := range diags {
		o.diags = append(o.diags, d...)
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	o.in.Members = withKube(o.m, o.in.Members)
	for _, ob := range active {
		if ob.resolve == nil || (!ob.evenWithErrors && o.diags.HasErrors()) {
			continue
		}
		d, err := ob.resolve(o, ctx)
		if o.diags = append(o.diags, d...); err != nil {
			return err
		}
	}
	return nil
}

// observeAWS resolves the members and observes their VPCs, or reuses the last observation (obsCache).
func (o *observation) observeAWS(ctx context.Context) (hcl.Diagnostics, error) {
	type awsResult struct {
		obs   *awsprovider.Observation
		diags hcl.Diagnostics
	}
	res, err := awsPart(o.v, "observe", func() (awsResult, error) {
		ctx, cancel := o.e.awsObserveContext(ctx, o.v.scope)
		defer cancel()
		obs, diags, err := o.e.AWS.Observe(ctx, o.m, former(o.st))
		return awsResult{obs, diags}, err
	})
	diags := cloneDiags(res.diags)
	if err != nil {
		return diags, err
	}
	o.aws, o.in.Observed, o.in.Members = res.obs, res.obs.Observed, res.obs.Members
	if o.e.PartialDNS {
		o.in.Members, o.held = holdUnresolved(o.m, o.st, o.in.Members, diags)
	}
	return diags, nil
}

// former is what the state says meshd made that AWS's observation looks for even where the spec no longer
// names it.
func former(st *state.State) awsprovider.Former {
	gateways, tables := plan.RecordedGateways(st)
	return awsprovider.Former{Members: st.Members, Gateways: gateways, GatewayTables: tables}
}

// observeKubeDNS reads every cluster's DNS Service and Corefile. With PartialDNS a cluster missing from the
// observation is planned around (Engine.PartialDNS), and what kept it out is a warning rather than an error.
func (o *observation) observeKubeDNS(ctx context.Context) (hcl.Diagnostics, error) {
	var diags hcl.Diagnostics
	o.kubeObs, diags = o.e.observeDNS(ctx, o.v, kubeTargets(o.m, o.st))
	if !o.e.PartialDNS {
		return diags, nil
	}
	o.unobserved = map[string]bool{}
	for _, c := range o.m.Clusters {
		if _, ok := o.kubeObs[c.Name]; !ok {
			o.unobserved[c.Name] = true
		}
	}
	for _, d := range diags {
		d.Severity = hcl.DiagWarning
	}
	return diags, nil
}

// resolveDNS finds the NLBs behind the DNS Services and hands the DNS part to the planner.
func (o *observation) resolveDNS(ctx context.Context) (hcl.Diagnostics, error) {
	if err := o.e.observeLoadBalancers(ctx, o.v, o.in.Members, o.st.Members, o.kubeObs); err != nil {
		return nil, err
	}
	o.in.DNS = &plan.DNSInput{ForwardBy: o.m.ForwardBy, Clusters: o.kubeObs, Unobserved: o.unobserved}
	o.addons.into(o.in.DNS, o.m)
	return nil, nil
}

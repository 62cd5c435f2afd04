package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

const defaultCorefile = ".:53 {\n    errors\n    kubernetes cluster.local\n    forward . /etc/resolv.conf\n}\n"

// cachedStubs are newStubs with a default Corefile in each cluster, so that every plan has Corefile changes
// that show the upstreams they would forward to.
func cachedStubs() (*stubAWS, *stubKube) {
	aws, k := newStubs()
	for ctx, o := range k.clusters {
		o.CoreDNS = &model.ConfigMap{Data: map[string]string{plan.CorefileKey: defaultCorefile}}
		k.clusters[ctx] = o
	}
	return aws, k
}

// upstreamsIn returns what the plan's Corefile change for cluster forwards the zone to.
func upstreamsIn(t *testing.T, p *plan.Plan, cluster, zone string) []string {
	t.Helper()
	ch := p.Find(plan.CorefileAddress(cluster))
	if ch == nil {
		t.Fatalf("no Corefile change for %s", cluster)
	}
	for _, b := range ch.After.(plan.Corefile).Blocks {
		if b.Zone == zone {
			return b.Upstreams
		}
	}
	t.Fatalf("the Corefile change for %s has no block for %s", cluster, zone)
	return nil
}

// cachedEngine is an engine over cachedStubs, with the two-cluster spec and an empty state.
func cachedEngine(t *testing.T) (*Engine, *stubAWS, *stubKube, *spec.Mesh, *state.State) {
	aws, k := cachedStubs()
	return &Engine{AWS: aws, Kube: k}, aws, k, twoClusters(t, ""), state.New("m")
}

func scoped(kube ...string) model.ObserveScope {
	return model.ObserveScope{Scoped: true, Kube: kube, AWSMaxAge: time.Hour, KeepLastKnown: true}
}

// serviceChanged is the scope of a pass triggered by the watch of cluster's DNS Service.
func serviceChanged(cluster string) model.ObserveScope {
	s := scoped(cluster)
	s.LoadBalancers = []string{cluster}
	return s
}

func planScoped(t *testing.T, e *Engine, m *spec.Mesh, st *state.State, scope model.ObserveScope) (*plan.Plan, model.ObserveReport) {
	t.Helper()
	p, rep, diags, err := e.PlanScoped(context.Background(), m, st, scope)
	if err != nil || diags.HasErrors() {
		t.Fatalf("PlanScoped: %v %v", err, diags)
	}
	return p, rep
}

// TestPlanScopedObservesOnlyWhatChanged: a watch-triggered plan reads the Kubernetes objects of the cluster
// named, and reuses AWS (NLBs included) and the other cluster; a Service event makes its cluster's NLB be
// looked up again; a plan without a scope reads everything.
func TestPlanScopedObservesOnlyWhatChanged(t *testing.T) {
	e, aws, k, m, st := cachedEngine(t)
	// A converged AWS side, so that the scoped plan has no AWS change to re-observe for.
	p, _ := planScoped(t, e, m, st, model.ObserveScope{})
	e.Apply(context.Background(), p, st, 0)
	planScoped(t, e, m, st, model.ObserveScope{}) // after apply: everything read again
	aws.observed, k.targets, aws.lbAsked = 0, nil, nil

	_, rep := planScoped(t, e, m, st, scoped("c001"))
	if aws.observed != 0 || rep.AWSFresh {
		t.Errorf("a plan scoped to c001 observed AWS (%d times, report %+v); want the last observation reused", aws.observed, rep)
	}
	if diff := cmp.Diff([]string{"c001"}, k.targets); diff != "" {
		t.Errorf("clusters read in Kubernetes: -want, +got:\n%s", diff)
	}
	if len(aws.lbAsked) != 0 {
		t.Errorf("NLBs looked up for a Corefile event: %v, want none", aws.lbAsked)
	}
	if diff := cmp.Diff([]string{"c001"}, rep.Kube); diff != "" {
		t.Errorf("report of the clusters read: -want, +got:\n%s", diff)
	}
	planScoped(t, e, m, st, serviceChanged("c001"))
	if diff := cmp.Diff(map[string][]string{"us-west-1": {"nlb-1.elb.us-west-1.amazonaws.com"}}, aws.lbAsked); diff != "" {
		t.Errorf("NLBs looked up for c001's Service event: only c001's: -want, +got:\n%s", diff)
	}
	// meshctl's Plan reads everything, always.
	k.targets = nil
	if _, _, err := e.Plan(context.Background(), m, st, false); err != nil {
		t.Fatal(err)
	}
	if aws.observed != 1 || len(k.targets) != 2 {
		t.Errorf("Plan: AWS observed %d times and clusters %v read; want once and both", aws.observed, k.targets)
	}
}

// TestPlanScopedNeverUsesNLBAddressesOlderThanTheirChange: a Corefile repair forwards to the NLB addresses
// of the last observe that saw them change, not to those of the last full observe. The DNS Service watch
// event of c002 makes its NLB be looked up again, also when its hostname stays the same; another hostname
// is looked up whatever the event.
func TestPlanScopedNeverUsesNLBAddressesOlderThanTheirChange(t *testing.T) {
	e, aws, k, m, st := cachedEngine(t)
	p, _ := planScoped(t, e, m, st, model.ObserveScope{})
	if diff := cmp.Diff([]string{"10.0.1.53"}, upstreamsIn(t, p, "c001", "n2.svc.cluster.local")); diff != "" {
		t.Fatalf("full plan: c001 forwarding n2 to: -want, +got:\n%s", diff)
	}
	e.Apply(context.Background(), p, st, 0)
	planScoped(t, e, m, st, model.ObserveScope{})

	// c002's NLB is replaced under the same hostname: new addresses. The watch sees c002's Service change.
	host := "nlb-2.elb.us-west-2.amazonaws.com"
	aws.lbs["us-west-2"][host] = model.LoadBalancer{Name: "nlb-2", State: model.LoadBalancerActive, Addresses: []string{"10.0.9.53"}}
	p, _ = planScoped(t, e, m, st, serviceChanged("c002"))
	if diff := cmp.Diff([]string{"10.0.9.53"}, upstreamsIn(t, p, "c001", "n2.svc.cluster.local")); diff != "" {
		t.Errorf("after c002's Service event: c001 forwarding n2 to: -want, +got:\n%s", diff)
	}
	// That plan is not applied (say the pass failed); then c001's Corefile is reverted: its repair uses
	// the addresses the c002 event's observe saw, not the full observe's.
	p, rep := planScoped(t, e, m, st, scoped("c001"))
	if rep.AWSFresh {
		t.Fatalf("the plan for c001 observed AWS: %+v", rep)
	}
	if diff := cmp.Diff([]string{"10.0.9.53"}, upstreamsIn(t, p, "c001", "n2.svc.cluster.local")); diff != "" {
		t.Errorf("c001's Corefile repair forwarding n2 to: -want, +got:\n%s", diff)
	}

	// c002's Service names another NLB: looked up for the new hostname.
	k.clusters["k2"] = model.DNSObserved{Service: ownedService("nlb-3.elb.us-west-2.amazonaws.com"), CoreDNS: k.clusters["k2"].CoreDNS}
	aws.lbs["us-west-2"]["nlb-3.elb.us-west-2.amazonaws.com"] = model.LoadBalancer{Name: "nlb-3", State: model.LoadBalancerActive, Addresses: []string{"10.0.7.53"}}
	planScoped(t, e, m, st, scoped("c002")) // even without the Service event: another hostname
	p, _ = planScoped(t, e, m, st, scoped("c001"))
	if diff := cmp.Diff([]string{"10.0.7.53"}, upstreamsIn(t, p, "c001", "n2.svc.cluster.local")); diff != "" {
		t.Errorf("after c002's Service moved to another NLB: c001 forwarding n2 to: -want, +got:\n%s", diff)
	}
}

// TestPlanScopedApplyDropsWhatItTouched: after an apply, what its changes touched is read again — the AWS
// side for AWS changes, each cluster a Kubernetes change was in — so no plan works from what meshd itself
// changed since (its own writes do not trigger the watch).
func TestPlanScopedApplyDropsWhatItTouched(t *testing.T) {
	e, aws, k, m, st := cachedEngine(t)
	p, _ := planScoped(t, e, m, st, model.ObserveScope{})
	e.Apply(context.Background(), p, st, 0) // peerings, routes, rules; both Services and Corefiles
	aws.observed, k.targets = 0, nil
	_, rep := planScoped(t, e, m, st, scoped())
	if aws.observed != 1 || !rep.AWSFresh {
		t.Errorf("AWS observed %d times after an apply that changed it; want once", aws.observed)
	}
	if diff := cmp.Diff([]string{"c001", "c002"}, k.targets); diff != "" {
		t.Errorf("clusters read after an apply that changed both: -want, +got:\n%s", diff)
	}
	// Nothing applied since: the next scoped plan reuses all of it.
	aws.observed, k.targets = 0, nil
	planScoped(t, e, m, st, scoped())
	if aws.observed != 0 || len(k.targets) != 0 {
		t.Errorf("a plan with nothing changed since observed AWS %d times and read %v", aws.observed, k.targets)
	}
}

// TestPlanScopedAWSDriftIsObservedAgain: a plan from a reused AWS observation that would change AWS is
// made again from a fresh one: nothing is applied to AWS from the cache.
func TestPlanScopedAWSDriftIsObservedAgain(t *testing.T) {
	e, aws, _, m, st := cachedEngine(t)
	planScoped(t, e, m, st, model.ObserveScope{}) // the empty world: AWS changes to make, not applied
	aws.observed = 0
	p, rep := planScoped(t, e, m, st, scoped("c001"))
	if aws.observed != 1 || !rep.AWSFresh {
		t.Errorf("AWS observed %d times (report %+v) for a plan with AWS changes; want once", aws.observed, rep)
	}
	if !hasAWSChanges(p) {
		t.Error("the plan lost its AWS changes")
	}
}

// TestPlanScopedKeepsLastKnownWhenAWSFails: AWS that cannot be observed does not stop the Kubernetes
// corrections: they are planned from the last AWS observation and NLB addresses, nothing changes in AWS,
// and the report says why. Without KeepLastKnown (meshctl) it is an error.
func TestPlanScopedKeepsLastKnownWhenAWSFails(t *testing.T) {
	e, aws, _, m, st := cachedEngine(t)
	planScoped(t, e, m, st, model.ObserveScope{}) // AWS changes pending; nothing applied
	aws.observeErr = errors.New("connection timed out")
	aws.lbErr = aws.observeErr
	p, rep := planScoped(t, e, m, st, model.ObserveScope{KeepLastKnown: true})
	if !errors.Is(rep.AWSError, aws.observeErr) {
		t.Errorf("report's AWS error: %v, want the observe error", rep.AWSError)
	}
	if hasAWSChanges(p) {
		t.Error("a plan from an AWS observation that could not be renewed changes AWS")
	}
	if diff := cmp.Diff([]string{"10.0.1.53"}, upstreamsIn(t, p, "c001", "n2.svc.cluster.local")); diff != "" {
		t.Errorf("c001 forwarding n2 to the last known addresses: -want, +got:\n%s", diff)
	}
	if _, _, err := e.Plan(context.Background(), m, st, false); !errors.Is(err, aws.observeErr) {
		t.Errorf("Plan (meshctl) with AWS failing: %v, want the error", err)
	}
}

// TestPlanHoldsAClusterAWSCannotResolve: with PartialDNS (meshd), a cluster whose VPC is gone is a warning
// at its spec line, every change naming it is held back, and the other clusters are still corrected; it
// stays a member as the state recorded it, so nothing of it is deleted as if it had left. meshctl refuses.
func TestPlanHoldsAClusterAWSCannotResolve(t *testing.T) {
	aws, k := cachedStubs()
	m := twoClusters(t, "")
	st := state.New("m")
	e := &Engine{AWS: aws, Kube: k, PartialDNS: true}
	p, _ := planScoped(t, e, m, st, model.ObserveScope{})
	e.Apply(context.Background(), p, st, 0)
	st.Members = p.Members // as the daemon's state write records them
	// c002's VPC is deleted, and a route of c001 deleted.
	aws.unresolved = "c002"
	aws.world.DeleteRoute(aws.members[0].RouteTableIDs[0], aws.members[1].CIDRs[0])
	p, _, diags, err := e.PlanScoped(context.Background(), m, st, model.ObserveScope{})
	if err != nil || diags.HasErrors() {
		t.Fatalf("PlanScoped: %v %v", err, diags)
	}
	if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Subject == nil || diags[0].Subject.Start.Line != 15 {
		t.Fatalf("diagnostics %v: want one warning at c002's vpc_id (line 15)", diags)
	}
	for _, ch := range p.Changes {
		if ch.Action.IsChange() && (strings.Contains(ch.Address, "c002") || strings.Contains(ch.Address, aws.members[1].CIDRs[0])) {
			t.Errorf("the plan changes %s, which names the held cluster", ch.Address)
		}
		if ch.Action == plan.Delete {
			t.Errorf("the plan deletes %s", ch.Address)
		}
	}
	if p.Find(plan.CorefileAddress("c001")) == nil {
		t.Error("c001's Corefile is not corrected while c002 is held")
	}
	e.PartialDNS = false
	if _, diags, _ := e.Plan(context.Background(), m, st, false); !diags.HasErrors() {
		t.Error("meshctl's plan (no PartialDNS) does not fail on the unknown VPC")
	}
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/providers/kube"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// stubAWS is an in-memory AWS side: the members and objects of a plantest world, load balancers by region,
// and a record of what the engine asked for.
type stubAWS struct {
	world   *plantest.World
	members []model.Member
	// observeErr and lbErr, when set, are what Observe and LoadBalancers fail with.
	observeErr, lbErr error
	// unresolved names a member Observe cannot resolve: it is left out, with an error at its vpc_id.
	unresolved string
	// lbs are the load balancers by region and DNS name: a hostname asked for in the wrong region is not found.
	lbs map[string]map[string]model.LoadBalancer

	mu       sync.Mutex
	observed int
	lbAsked  map[string][]string // hostnames by region
}

func (s *stubAWS) Observe(_ context.Context, m *spec.Mesh, _ awsprovider.Former) (*awsprovider.Observation, hcl.Diagnostics, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observed++
	if s.observeErr != nil {
		return nil, nil, fmt.Errorf("observing us-west-1: %w", s.observeErr)
	}
	var members []model.Member
	var diags hcl.Diagnostics
	for _, mem := range s.members {
		c := m.Cluster(mem.Name)
		switch {
		case c == nil:
		case mem.Name == s.unresolved:
			r := c.AttrRange("vpc_id")
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown VPC", Subject: &r})
		default:
			members = append(members, mem)
		}
	}
	return &awsprovider.Observation{Members: members, Observed: s.world.Observed}, diags, nil
}

func (s *stubAWS) LoadBalancersIn(_ context.Context, _ model.Access, region string, hostnames []string) (map[string]model.LoadBalancer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lbAsked == nil {
		s.lbAsked = map[string][]string{}
	}
	s.lbAsked[region] = append(s.lbAsked[region], hostnames...)
	slices.Sort(s.lbAsked[region])
	if s.lbErr != nil {
		return nil, s.lbErr
	}
	out := map[string]model.LoadBalancer{}
	for _, h := range hostnames {
		if lb, ok := s.lbs[region][h]; ok {
			out[h] = lb
		}
	}
	return out, nil
}

func (s *stubAWS) Executors() map[plan.Kind]apply.Executor { return s.world.Executors() }

// stubKube is an in-memory Kubernetes side: what each reachable kube context holds.
type stubKube struct {
	// clusters are the DNS objects by kube context; a context missing from it is unreachable.
	clusters map[string]model.DNSObserved

	mu       sync.Mutex
	targets  []string // clusters asked for, in order
	executed []string // addresses
}

func (s *stubKube) Observe(_ context.Context, targets []kube.Target) (map[string]model.DNSObserved, hcl.Diagnostics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]model.DNSObserved{}
	var diags hcl.Diagnostics
	for _, t := range targets {
		s.targets = append(s.targets, t.Cluster)
		o, ok := s.clusters[t.KubeContext]
		if !ok {
			sev := hcl.DiagError
			if t.Subject == nil {
				sev = hcl.DiagWarning
			}
			diags = append(diags, &hcl.Diagnostic{Severity: sev, Summary: "Cannot reach cluster " + t.Cluster, Subject: t.Subject})
			continue
		}
		out[t.Cluster] = o
	}
	return out, diags
}

func (s *stubKube) ObserveObjects(context.Context, []kube.ObjectQuery) map[kube.ObjectQuery]kube.ObjectResult {
	return nil
}

func (s *stubKube) Executors() map[plan.Kind]apply.Executor {
	return map[plan.Kind]apply.Executor{plan.KindCorefile: s, plan.KindDNSService: s}
}

func (s *stubKube) Execute(_ context.Context, ch plan.Change, _ apply.Known) (apply.Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.executed = append(s.executed, ch.Address)
	return apply.Outcome{}, nil
}

// twoClusters is a mesh of c001 (us-west-1, context k1) and c002 (us-west-2, context k2); dnsBlock goes in
// the mesh block.
func twoClusters(t *testing.T, dnsBlock string) *spec.Mesh {
	t.Helper()
	text := fmt.Sprintf(`mesh "m" {
%s
}
cluster "c001" {
  region            = "us-west-1"
  kube_context      = "k1"
  namespace         = "n1"
  vpc_id            = "vpc-00000001"
  security_group_id = "sg-00000001"
}
cluster "c002" {
  region            = "us-west-2"
  kube_context      = "k2"
  namespace         = "n2"
  vpc_id            = "vpc-00000002"
  security_group_id = "sg-00000002"
}
`, dnsBlock)
	path := filepath.Join(t.TempDir(), "mesh.hcl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	m, diags := spec.Load(path)
	if diags.HasErrors() {
		t.Fatalf("spec: %v", diags)
	}
	return m
}

// ownedService is a DNS Service meshd made, whose load balancer has the DNS name hostname; its type differs
// from meshd's, so the plan carries it as an update showing what was observed.
func ownedService(hostname string) *model.Service {
	return &model.Service{Spec: model.ServiceSpec{Type: "ClusterIP", Labels: plan.OwnerLabels("m")}, Hostname: hostname}
}

func newStubs() (*stubAWS, *stubKube) {
	w, members := plantest.NewWorld("m", plantest.Grid(2, 1))
	aws := &stubAWS{world: w, members: members, lbs: map[string]map[string]model.LoadBalancer{
		"us-west-1": {"nlb-1.elb.us-west-1.amazonaws.com": {Name: "nlb-1", State: model.LoadBalancerActive, Addresses: []string{"10.0.0.53"}}},
		"us-west-2": {"nlb-2.elb.us-west-2.amazonaws.com": {Name: "nlb-2", State: model.LoadBalancerActive, Addresses: []string{"10.0.1.53"}}},
	}}
	// Each member as an EKS cluster has it: meshd's Service, and the CoreDNS add-on's Corefile.
	coredns := func() *model.ConfigMap {
		return &model.ConfigMap{Data: map[string]string{plan.CorefileKey: corefile.EKSDefault}}
	}
	k := &stubKube{clusters: map[string]model.DNSObserved{
		"k1": {Service: ownedService("nlb-1.elb.us-west-1.amazonaws.com"), CoreDNS: coredns()},
		"k2": {Service: ownedService("nlb-2.elb.us-west-2.amazonaws.com"), CoreDNS: coredns()},
	}}
	return aws, k
}

// TestEnginePlanObservesKubernetes: which runs observe the Kubernetes side (and its load balancers).
func TestEnginePlanObservesKubernetes(t *testing.T) {
	cases := map[string]struct {
		reason      string
		dns         string
		corefiles   map[string][]string // the state's records
		destroy     bool
		wantTargets []string
		wantLBs     map[string][]string
	}{
		"DNSOn": {
			reason:      "with DNS on (the default) every cluster's Kubernetes side is observed, and the NLBs behind its Services",
			wantTargets: []string{"c001", "c002"},
			wantLBs: map[string][]string{
				"us-west-1": {"nlb-1.elb.us-west-1.amazonaws.com"},
				"us-west-2": {"nlb-2.elb.us-west-2.amazonaws.com"},
			},
		},
		"DNSOff": {
			reason: "dns { enabled = false } leaves Kubernetes alone: not even observed",
			dns:    "dns {\n  enabled = false\n}",
		},
		"DNSOffDestroyWithoutRecords": {
			reason:  "a destroy with DNS off and no Corefile records has nothing to remove in Kubernetes",
			dns:     "dns {\n  enabled = false\n}",
			destroy: true,
		},
		"DNSOffDestroyWithRecords": {
			reason:      "a destroy still removes the Corefile blocks an earlier apply made, so Kubernetes is observed",
			dns:         "dns {\n  enabled = false\n}",
			corefiles:   map[string][]string{"c001": {"n2.svc.cluster.local"}},
			destroy:     true,
			wantTargets: []string{"c001", "c002"},
			wantLBs: map[string][]string{
				"us-west-1": {"nlb-1.elb.us-west-1.amazonaws.com"},
				"us-west-2": {"nlb-2.elb.us-west-2.amazonaws.com"},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			aws, k := newStubs()
			e := &Engine{AWS: aws, Kube: k}
			st := state.New("m")
			if tc.corefiles != nil {
				st.Corefiles = tc.corefiles
			}
			_, diags, err := e.Plan(context.Background(), twoClusters(t, tc.dns), st, tc.destroy)
			if err != nil || diags.HasErrors() {
				t.Fatalf("Plan: %v %v", err, diags)
			}
			if diff := cmp.Diff(tc.wantTargets, k.targets); diff != "" {
				t.Errorf("%s\nclusters observed in Kubernetes: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantLBs, aws.lbAsked); diff != "" {
				t.Errorf("%s\nload balancers asked for, by region: -want, +got:\n%s", tc.reason, diff)
			}
			if aws.observed != 1 {
				t.Errorf("%s\nAWS observed %d times, want once", tc.reason, aws.observed)
			}
		})
	}
}

// TestEnginePlanFormerMembersAreObserved: a cluster that left the spec is observed through the kube context
// the state remembers, its problems are warnings, and its NLB is asked for in its own region.
func TestEnginePlanFormerMembersAreObserved(t *testing.T) {
	aws, k := newStubs()
	k.clusters["k3"] = model.DNSObserved{Service: ownedService("nlb-3.elb.eu-west-1.amazonaws.com")}
	st := state.New("m")
	st.Members["c003"] = model.Member{Name: "c003", Region: "eu-west-1", KubeContext: "k3"}
	st.Members["c004"] = model.Member{Name: "c004", Region: "eu-west-1", KubeContext: "k4"} // unreachable
	e := &Engine{AWS: aws, Kube: k}
	_, diags, err := e.Plan(context.Background(), twoClusters(t, ""), st, false)
	if err != nil || diags.HasErrors() {
		t.Fatalf("Plan: %v %v", err, diags)
	}
	if diff := cmp.Diff([]string{"c001", "c002", "c003", "c004"}, k.targets); diff != "" {
		t.Errorf("clusters observed in Kubernetes: -want, +got:\n%s", diff)
	}
	if diff := cmp.Diff([]string{"nlb-3.elb.eu-west-1.amazonaws.com"}, aws.lbAsked["eu-west-1"]); diff != "" {
		t.Errorf("load balancers asked for in the former member's region: -want, +got:\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Cannot reach cluster c004"}, summaries(diags)); diff != "" {
		t.Errorf("diagnostics: -want, +got:\n%s", diff)
	}
}

// TestEnginePlanAttachesLoadBalancers: each Service's NLB is looked up in its cluster's region and attached
// to that cluster, as the plan shows.
func TestEnginePlanAttachesLoadBalancers(t *testing.T) {
	aws, k := newStubs()
	e := &Engine{AWS: aws, Kube: k}
	p, diags, err := e.Plan(context.Background(), twoClusters(t, ""), state.New("m"), false)
	if err != nil || diags.HasErrors() {
		t.Fatalf("Plan: %v %v", err, diags)
	}
	want := map[string][]string{"c001": {"nlb-1", "10.0.0.53"}, "c002": {"nlb-2", "10.0.1.53"}}
	got := map[string][]string{}
	for _, cluster := range []string{"c001", "c002"} {
		ch := p.Find(plan.DNSServiceAddress(cluster))
		if ch == nil {
			t.Fatalf("no change for %s's DNS Service in the plan", cluster)
		}
		before := ch.Before.(plan.DNSService)
		got[cluster] = append([]string{before.LoadBalancer}, before.Addresses...)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("load balancer and addresses observed for each cluster's Service: -want, +got:\n%s", diff)
	}
}

// TestEnginePlanPartialDNS: an unreachable cluster fails the plan, unless PartialDNS plans around it.
func TestEnginePlanPartialDNS(t *testing.T) {
	cases := map[string]struct {
		reason         string
		partial        bool
		wantSeverity   hcl.DiagnosticSeverity
		wantPlan       bool
		wantUnobserved []string
	}{
		"Strict": {
			reason:       "meshctl: a cluster that cannot be reached is an error, and there is no plan",
			wantSeverity: hcl.DiagError,
		},
		"Partial": {
			reason:         "meshd: the cluster is a warning, the plan is made without its DNS and says so",
			partial:        true,
			wantSeverity:   hcl.DiagWarning,
			wantPlan:       true,
			wantUnobserved: []string{"c002"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			aws, k := newStubs()
			delete(k.clusters, "k2")
			e := &Engine{AWS: aws, Kube: k, PartialDNS: tc.partial}
			p, diags, err := e.Plan(context.Background(), twoClusters(t, ""), state.New("m"), false)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			if len(diags) != 1 {
				t.Fatalf("%s\ndiagnostics: %v, want the unreachable cluster's", tc.reason, diags)
			}
			if diff := cmp.Diff(tc.wantSeverity, diags[0].Severity); diff != "" {
				t.Errorf("%s\nseverity of %q: -want, +got:\n%s", tc.reason, diags[0].Summary, diff)
			}
			if diff := cmp.Diff(tc.wantPlan, p != nil); diff != "" {
				t.Fatalf("%s\na plan was made: -want, +got:\n%s", tc.reason, diff)
			}
			if p == nil {
				return
			}
			if diff := cmp.Diff(tc.wantUnobserved, p.Unobserved); diff != "" {
				t.Errorf("%s\nunobserved clusters: -want, +got:\n%s", tc.reason, diff)
			}
			if p.Find(plan.DNSServiceAddress("c002")) != nil {
				t.Errorf("%s\nthe plan changes the DNS Service of the cluster it could not observe", tc.reason)
			}
		})
	}
}

// TestEnginePlanAWSObserveError: failing to talk to AWS is an error, not a diagnostic, and there is no plan.
func TestEnginePlanAWSObserveError(t *testing.T) {
	aws, k := newStubs()
	aws.observeErr = errors.New("RequestLimitExceeded")
	e := &Engine{AWS: aws, Kube: k}
	p, diags, err := e.Plan(context.Background(), twoClusters(t, ""), state.New("m"), false)
	if !errors.Is(err, aws.observeErr) {
		t.Errorf("Plan error: %v, want the AWS observe error", err)
	}
	if p != nil || diags.HasErrors() {
		t.Errorf("Plan after an AWS error: plan %v, diagnostics %v; want neither", p, diags)
	}
}

// TestEngineApplyUsesBothProviders: a plan's AWS changes go to the AWS executors and its DNS changes to the
// Kubernetes ones, in one apply.
func TestEngineApplyUsesBothProviders(t *testing.T) {
	aws, k := newStubs()
	e := &Engine{AWS: aws, Kube: k}
	m := twoClusters(t, "")
	st := state.New("m")
	p, diags, err := e.Plan(context.Background(), m, st, false)
	if err != nil || diags.HasErrors() {
		t.Fatalf("Plan: %v %v", err, diags)
	}
	res := e.Apply(context.Background(), p, st, 0)
	if err := res.Err(); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var wantKube []string
	for _, ch := range p.Changes {
		if ch.Action.IsChange() && (ch.Kind == plan.KindCorefile || ch.Kind == plan.KindDNSService) {
			wantKube = append(wantKube, ch.Address)
		}
	}
	slices.Sort(wantKube)
	slices.Sort(k.executed)
	if len(wantKube) == 0 {
		t.Fatal("the plan has no DNS changes to apply")
	}
	if diff := cmp.Diff(wantKube, k.executed); diff != "" {
		t.Errorf("changes the Kubernetes executors made: -want, +got:\n%s", diff)
	}
	if got := len(aws.world.Observed.Peerings); got != 1 {
		t.Errorf("peerings in the AWS world after apply: %d, want 1", got)
	}
}

func summaries(diags hcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		out = append(out, d.Summary)
	}
	return out
}

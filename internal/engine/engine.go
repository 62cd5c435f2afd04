// Package engine ties the pieces into the two operations every front end needs: make a plan (observe, diff,
// check) and apply one (execute, record). meshctl runs each once; meshd runs them in a loop.
package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/middleware"
	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/providers/kube"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
	"github.com/meshd-io/meshd/internal/verify"
)

// AWS is what the engine needs from the AWS side (the AWS provider; a stub in tests).
type AWS interface {
	Observe(ctx context.Context, m *spec.Mesh, former map[string]model.Member) (*awsprovider.Observation, hcl.Diagnostics, error)
	// LoadBalancers finds the NLBs of a region behind the DNS Services' hostnames.
	LoadBalancers(ctx context.Context, region string, hostnames []string) (map[string]model.LoadBalancer, error)
	Executors() map[plan.Kind]apply.Executor
}

// Kube is what the engine needs from the Kubernetes side (the kube provider; a stub in tests).
type Kube interface {
	Observe(ctx context.Context, targets []kube.Target) (map[string]model.DNSObserved, hcl.Diagnostics)
	// ObserveObjects reads owned objects of any kind (the replicated objects and their copies).
	ObserveObjects(ctx context.Context, queries []kube.ObjectQuery) map[kube.ObjectQuery]kube.ObjectResult
	Executors() map[plan.Kind]apply.Executor
}

// kubeClients hands out the Kubernetes clients the Kube side works with (the kube provider).
type kubeClients interface {
	Client(kubeContext string) (kubeclient.Interface, error)
}

// Engine plans and applies one mesh.
type Engine struct {
	AWS AWS
	// Kube is the Kubernetes side (DNS Services and Corefiles). Nil, or a spec with dns { enabled = false },
	// leaves DNS alone.
	Kube Kube
	// PartialDNS plans around member clusters whose Kubernetes side cannot be observed (an API server that is
	// down, a context missing from the kubeconfig) instead of failing: their DNS is left alone, the other
	// Corefiles keep their blocks for them, and the diagnostics come back as warnings. meshd sets it, so that
	// one cluster that is down does not stop the correction of AWS and of the other clusters; meshctl does not,
	// so that a user sees the problem before anything changes.
	PartialDNS  bool
	Parallelism int
	Progress    func(string)
	// VerifyPaths makes each Plan also check, from the same observation, that every pair of members can
	// reach and resolve each other (verify.Verify, without probes); Paths returns the last report. meshd sets
	// it to export meshd_path_ok. The network layer needs ObserveNetwork.
	VerifyPaths bool

	pathsMu sync.Mutex
	paths   *verify.Report

	clients kubeClients
}

// Options configure New: what meshctl and meshd each pass, in one place.
type Options struct {
	// Mesh is the mesh name, which both providers tag and label what they create with.
	Mesh string
	// Kubeconfig is the kubeconfig file (--kubeconfig). Empty: $KUBECONFIG, else ~/.kube/config. It is read
	// only when a cluster is first contacted, so a spec with dns { enabled = false } never needs one.
	Kubeconfig string
	// Progress receives the providers' lines during long waits (a peering, a load balancer); nil discards them.
	Progress func(string)
	// ApplyProgress receives one line per started and finished change; nil discards them.
	ApplyProgress func(string)
	// PartialDNS and Parallelism are the Engine's fields.
	PartialDNS  bool
	Parallelism int

	// AWSAPIOptions are added to every AWS client's middleware stack (call counting, fault injection).
	AWSAPIOptions []func(*middleware.Stack) error
	// KubeWrapTransport wraps every Kubernetes client's HTTP transport (call counting).
	KubeWrapTransport func(http.RoundTripper) http.RoundTripper
	// KubeWaitTimeout bounds one wait of the Kubernetes side (a DNS Service's load balancer). Zero: the
	// provider's default.
	KubeWaitTimeout time.Duration
	// ObserveNetwork makes the AWS side also read what Verify checks beyond the plan: network ACLs and the
	// node groups' egress rules (awsprovider.Options.ObserveNetwork).
	ObserveNetwork bool
	// VerifyPaths is the Engine's field.
	VerifyPaths bool
	// AWSTuning and KubeTuning adjust the providers' options last (poll intervals in tests).
	AWSTuning  func(*awsprovider.Options)
	KubeTuning func(*kube.Options)
}

// New builds the AWS and Kubernetes providers and the engine over them. The Kubernetes provider waits for
// its DNS Services' load balancers through the AWS one.
func New(ctx context.Context, opts Options) (*Engine, error) {
	awsOpts := awsprovider.Options{Mesh: opts.Mesh, APIOptions: opts.AWSAPIOptions, Progress: opts.Progress,
		ObserveNetwork: opts.ObserveNetwork}
	if opts.AWSTuning != nil {
		opts.AWSTuning(&awsOpts)
	}
	awsSide, err := awsprovider.New(ctx, awsOpts)
	if err != nil {
		return nil, err
	}
	kubeOpts := kube.Options{Mesh: opts.Mesh, Kubeconfig: opts.Kubeconfig, LoadBalancers: awsSide,
		Progress: opts.Progress, WrapTransport: opts.KubeWrapTransport, WaitTimeout: opts.KubeWaitTimeout}
	if opts.KubeTuning != nil {
		opts.KubeTuning(&kubeOpts)
	}
	kubeSide := kube.New(kubeOpts)
	return &Engine{AWS: awsSide, Kube: kubeSide, clients: kubeSide, PartialDNS: opts.PartialDNS,
		Parallelism: opts.Parallelism, Progress: opts.ApplyProgress, VerifyPaths: opts.VerifyPaths}, nil
}

// KubeClient returns the client of a kubeconfig context: the one the engine itself uses, so that meshd's
// watches, Events and state Secret share its connections and its reading of the kubeconfig.
func (e *Engine) KubeClient(kubeContext string) (kubeclient.Interface, error) {
	if e.clients == nil {
		return nil, errors.New("this engine has no Kubernetes provider")
	}
	return e.clients.Client(kubeContext)
}

// CurrentKubeContext returns the kubeconfig's current context.
func (e *Engine) CurrentKubeContext() (string, error) {
	cc, ok := e.clients.(interface{ CurrentContext() (string, error) })
	if !ok {
		return "", errors.New("this engine has no kubeconfig")
	}
	return cc.CurrentContext()
}

// Plan observes AWS and Kubernetes for the spec's clusters (and the state's former members) and computes
// the plan. Spec problems found against the observed world come back as diagnostics (a kube context that
// is missing or unreachable among them); failures to observe AWS as an error.
func (e *Engine) Plan(ctx context.Context, m *spec.Mesh, st *state.State, destroy bool) (*plan.Plan, hcl.Diagnostics, error) {
	// With DNS turned off meshd leaves Kubernetes alone — except that destroy still removes DNS objects an
	// earlier apply made (the state records their Corefile zones), rather than orphaning them.
	dnsOn := e.Kube != nil && (!m.DNSDisabled || (destroy && len(st.Corefiles) > 0))

	// The two sides are observed at the same time: neither needs the other until the load balancers.
	var kubeObs map[string]model.DNSObserved
	var kubeDiags, replicaDiags hcl.Diagnostics
	var replicas *plan.ReplicaInput
	var wg sync.WaitGroup
	if dnsOn {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kubeObs, kubeDiags = e.Kube.Observe(ctx, kubeTargets(m, st))
		}()
	}
	if e.replicasOn(m, st) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replicas, replicaDiags = e.observeReplicas(ctx, m, st, destroy)
		}()
	}
	obs, diags, err := e.AWS.Observe(ctx, m, st.Members)
	wg.Wait()
	// With PartialDNS a cluster missing from the observation is planned around (see the field), and what
	// kept it out is a warning rather than an error.
	var unobserved map[string]bool
	if e.PartialDNS && dnsOn {
		unobserved = map[string]bool{}
		for _, c := range m.Clusters {
			if _, ok := kubeObs[c.Name]; !ok {
				unobserved[c.Name] = true
			}
		}
		for _, d := range kubeDiags {
			d.Severity = hcl.DiagWarning
		}
	}
	diags = append(diags, kubeDiags...)
	diags = append(diags, replicaDiags...)
	if err != nil || diags.HasErrors() {
		return nil, diags, err
	}
	members := withKube(m, obs.Members)

	in := plan.Input{
		Mesh: m.Name, SpecHash: m.Hash(), Adopt: m.Adopt, Members: members,
		Observed: obs.Observed, State: st, Destroy: destroy, Replicas: replicas,
	}
	if dnsOn {
		if err := e.observeLoadBalancers(ctx, members, st.Members, kubeObs); err != nil {
			return nil, diags, err
		}
		in.DNS = &plan.DNSInput{ForwardBy: m.ForwardBy, Clusters: kubeObs, Unobserved: unobserved}
	}
	if e.VerifyPaths && !destroy {
		e.verifyPaths(m, st, members, obs.Observed, in.DNS)
	}
	p := plan.Compute(in)
	diags = append(diags, plan.Check(m, members, obs.Observed, p)...)
	return p, diags, nil
}

// withKube copies each cluster's Kubernetes settings from the spec onto its member.
func withKube(m *spec.Mesh, members []model.Member) []model.Member {
	out := make([]model.Member, len(members))
	for i, mem := range members {
		if c := m.Cluster(mem.Name); c != nil {
			mem.KubeContext, mem.Namespace, mem.ClusterDomain = c.KubeContext, c.Namespace, c.ClusterDomain
		}
		out[i] = mem
	}
	return out
}

// kubeTargets are the spec's clusters and the former members the state knows a kube context for.
func kubeTargets(m *spec.Mesh, st *state.State) []kube.Target {
	var out []kube.Target
	for _, c := range m.Clusters {
		r := c.AttrRange("kube_context")
		out = append(out, kube.Target{Cluster: c.Name, KubeContext: c.KubeContext, Subject: &r})
	}
	for _, name := range slices.Sorted(maps.Keys(st.Members)) {
		f := st.Members[name]
		if m.Cluster(name) == nil && f.KubeContext != "" {
			out = append(out, kube.Target{Cluster: name, KubeContext: f.KubeContext})
		}
	}
	return out
}

// accountLoadBalancers is the AWS side's LoadBalancers in the account of a member with an assumed role
// (the AWS provider has it; a stub without it sees one account).
type accountLoadBalancers interface {
	LoadBalancersIn(ctx context.Context, a model.Access, region string, hostnames []string) (map[string]model.LoadBalancer, error)
}

// loadBalancersIn looks up load balancers with the access, when the AWS side can.
func (e *Engine) loadBalancersIn(ctx context.Context, a model.Access, region string, hostnames []string) (map[string]model.LoadBalancer, error) {
	if in, ok := e.AWS.(accountLoadBalancers); ok && a != (model.Access{}) {
		return in.LoadBalancersIn(ctx, a, region, hostnames)
	}
	return e.AWS.LoadBalancers(ctx, region, hostnames)
}

// observeLoadBalancers finds the NLB behind every observed DNS Service that has a hostname: one batch per
// account access and region (a member with an assumed role has its load balancer in its own account).
func (e *Engine) observeLoadBalancers(ctx context.Context, members []model.Member, former map[string]model.Member, obs map[string]model.DNSObserved) error {
	type where struct {
		access model.Access
		region string
	}
	at := map[string]where{}
	for _, f := range former {
		at[f.Name] = where{f.Access, f.Region}
	}
	for _, mem := range members {
		at[mem.Name] = where{mem.Access, mem.Region}
	}
	hosts := map[where][]string{}
	for name, o := range obs {
		if w := at[name]; o.Service != nil && o.Service.Hostname != "" && w.region != "" {
			hosts[w] = append(hosts[w], o.Service.Hostname)
		}
	}
	type result struct {
		lbs map[string]model.LoadBalancer
		err error
	}
	results := map[where]result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w, hs := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lbs, err := e.loadBalancersIn(ctx, w.access, w.region, hs)
			mu.Lock()
			results[w] = result{lbs, err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	keys := slices.SortedFunc(maps.Keys(results), func(a, b where) int {
		return strings.Compare(a.region+" "+a.access.AssumeRole, b.region+" "+b.access.AssumeRole)
	})
	for _, w := range keys {
		if err := results[w].err; err != nil {
			if w.access.AssumeRole != "" {
				return fmt.Errorf("observing %s as %s: %w", w.region, w.access.AssumeRole, err)
			}
			return fmt.Errorf("observing %s: %w", w.region, err)
		}
	}
	for name, o := range obs {
		if o.Service == nil || o.Service.Hostname == "" {
			continue
		}
		if lb, ok := results[at[name]].lbs[o.Service.Hostname]; ok {
			o.LoadBalancer = &lb
			obs[name] = o
		}
	}
	return nil
}

// Executors returns the executor of every registered kind, from the provider its registration names. A kind
// whose provider is not configured (no Kubernetes side) has none, and its changes fail.
func (e *Engine) Executors() map[plan.Kind]apply.Executor {
	byProvider := map[plan.Provider]map[plan.Kind]apply.Executor{plan.ProviderAWS: e.AWS.Executors()}
	if e.Kube != nil {
		byProvider[plan.ProviderKube] = e.Kube.Executors()
	}
	out := map[plan.Kind]apply.Executor{}
	for _, k := range plan.Kinds() {
		if ex, ok := byProvider[k.Provider][k.Kind]; ok {
			out[k.Kind] = ex
		}
	}
	return out
}

// Apply executes p against the world and records the outcome in st (in memory: the caller writes it).
// withheld counts the changes a policy took out of p (see apply.Options.Withheld); meshctl withholds none.
func (e *Engine) Apply(ctx context.Context, p *plan.Plan, st *state.State, withheld int) *apply.Result {
	executors := e.Executors()
	return apply.Run(ctx, p, st, apply.Options{
		Executors:   executors,
		Parallelism: e.Parallelism,
		Progress:    e.Progress,
		Withheld:    withheld,
	})
}

// verifyPaths checks every pair from the observation the plan is made from (no second observe) and keeps
// the report for Paths. Clusters whose Kubernetes side was not observed are left out of the DNS layer.
func (e *Engine) verifyPaths(m *spec.Mesh, st *state.State, members []model.Member, obs *model.Observed, dns *plan.DNSInput) {
	var clusters map[string]model.DNSObserved
	if dns != nil && len(dns.Unobserved) == 0 {
		clusters = dns.Clusters
	}
	report := verify.Verify(verifyInput(m, st, members, obs, clusters))
	e.pathsMu.Lock()
	e.paths = &report
	e.pathsMu.Unlock()
}

// Paths returns the path report of the last Plan (with VerifyPaths), or false when there is none.
func (e *Engine) Paths() (verify.Report, bool) {
	e.pathsMu.Lock()
	defer e.pathsMu.Unlock()
	if e.paths == nil {
		return verify.Report{}, false
	}
	return *e.paths, true
}

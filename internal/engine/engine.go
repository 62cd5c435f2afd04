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
	Observe(ctx context.Context, m *spec.Mesh, was awsprovider.Former) (*awsprovider.Observation, hcl.Diagnostics, error)
	// LoadBalancersIn finds the NLBs of a region behind the DNS Services' hostnames, in the account the
	// access reaches (a member's assumed role; the zero Access is the default credentials').
	LoadBalancersIn(ctx context.Context, a model.Access, region string, hostnames []string) (map[string]model.LoadBalancer, error)
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
	// Clock decides which control-plane tokens are due for renewal; nil: time.Now. Tests inject one.
	Clock func() time.Time

	// AWSObserveTimeout bounds the AWS observation of a plan that may go on with the last one
	// (ObserveScope.KeepLastKnown, meshd): an AWS that does not answer must not hold back the Kubernetes
	// corrections. Zero: no bound but the context's.
	AWSObserveTimeout time.Duration

	pathsMu sync.Mutex
	paths   *verify.Report
	cache   obsCache

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
	// WaitTimeout bounds one wait of either side (a peering becoming active, a DNS Service's load balancer
	// appearing and becoming active). Zero: the providers' default (10 minutes).
	WaitTimeout time.Duration
	// AWSObserveTimeout is the Engine's field.
	AWSObserveTimeout time.Duration
	// ObserveNetwork makes the AWS side also read what Verify checks beyond the plan: network ACLs and the
	// node groups' egress rules (awsprovider.Options.ObserveNetwork).
	ObserveNetwork bool
	// VerifyPaths is the Engine's field.
	VerifyPaths bool
	// Clock is the Engine's field (and the kube provider's Now).
	Clock func() time.Time
	// AWSTuning and KubeTuning adjust the providers' options last (poll intervals in tests).
	AWSTuning  func(*awsprovider.Options)
	KubeTuning func(*kube.Options)
}

// New builds the AWS and Kubernetes providers and the engine over them. The Kubernetes provider waits for
// its DNS Services' load balancers through the AWS one.
func New(ctx context.Context, opts Options) (*Engine, error) {
	var kubeSide *kube.Provider
	awsOpts := awsprovider.Options{Mesh: opts.Mesh, APIOptions: opts.AWSAPIOptions, Progress: opts.Progress,
		ObserveNetwork: opts.ObserveNetwork, WaitTimeout: opts.WaitTimeout,
		Corefile: corefileReader(func() kubeClients { return kubeSide })}
	if opts.AWSTuning != nil {
		opts.AWSTuning(&awsOpts)
	}
	awsSide, err := awsprovider.New(ctx, awsOpts)
	if err != nil {
		return nil, err
	}
	kubeOpts := kube.Options{Mesh: opts.Mesh, Kubeconfig: opts.Kubeconfig, LoadBalancers: awsSide, TargetGroups: awsSide,
		Progress: opts.Progress, WrapTransport: opts.KubeWrapTransport, WaitTimeout: opts.WaitTimeout, Now: opts.Clock, EKS: awsSide}
	if opts.KubeTuning != nil {
		opts.KubeTuning(&kubeOpts)
	}
	kubeSide = kube.New(kubeOpts)
	return &Engine{AWS: awsSide, Kube: kubeSide, clients: kubeSide, PartialDNS: opts.PartialDNS,
		Parallelism: opts.Parallelism, Progress: opts.ApplyProgress, VerifyPaths: opts.VerifyPaths, Clock: opts.Clock,
		AWSObserveTimeout: opts.AWSObserveTimeout}, nil
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
// is missing or unreachable among them); failures to observe AWS as an error. It always observes
// everything (meshctl); meshd's passes use PlanScoped.
func (e *Engine) Plan(ctx context.Context, m *spec.Mesh, st *state.State, destroy bool) (*plan.Plan, hcl.Diagnostics, error) {
	p, _, diags, err := e.plan(ctx, m, st, destroy, model.ObserveScope{})
	return p, collapseForbidden(diags, specPath(m)), err
}

// plan is Plan under an observe scope (see obsCache): what the scope lets it reuse comes from the cache,
// the rest is observed and cached. The observers (observe.go) read the world; Compute and Check make the plan.
func (e *Engine) plan(ctx context.Context, m *spec.Mesh, st *state.State, destroy bool, scope model.ObserveScope) (*plan.Plan, *passView, hcl.Diagnostics, error) {
	o := &observation{e: e, v: e.cache.begin(m, st, destroy, scope), m: m, st: st, destroy: destroy,
		dnsOn: e.Kube != nil && (!m.DNSDisabled || (destroy && len(st.Corefiles) > 0))}
	if err := o.observe(ctx); err != nil || o.diags.HasErrors() {
		return nil, o.v, o.diags, err
	}
	in := o.in
	in.Mesh, in.SpecHash, in.Adopt, in.AllowPrivileged = m.Name, m.Hash(), m.Adopt, m.AllowPrivileged
	in.State, in.Destroy = st, destroy
	in.TransitGateways = plan.TransitGatewayInput(m)
	if e.VerifyPaths && !destroy {
		e.verifyPaths(m, st, in.Members, in.Observed, in.DNS)
	}
	p := plan.Compute(in)
	checked := plan.Check(m, in.Members, in.Observed, p)
	if e.PartialDNS {
		plan.PrivilegesAsWarnings(checked) // withheld from the plan: meshd keeps the rest of the mesh
	}
	dropHeld(m, p, o.held, checked)
	return p, o.v, append(o.diags, checked...), nil
}

// awsObserveContext bounds the AWS observation of a plan that may go on without it (AWSObserveTimeout).
func (e *Engine) awsObserveContext(ctx context.Context, scope model.ObserveScope) (context.Context, context.CancelFunc) {
	if scope.KeepLastKnown && e.AWSObserveTimeout > 0 {
		return context.WithTimeout(ctx, e.AWSObserveTimeout)
	}
	return ctx, func() {}
}

// observeDNS reads the DNS objects of the targets, reusing the clusters the view lets it.
func (e *Engine) observeDNS(ctx context.Context, v *passView, targets []kube.Target) (map[string]model.DNSObserved, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	out := kubeParts(v, "dns", targets, func(t kube.Target) string { return t.Cluster }, func(t kube.Target) string { return t.Cluster },
		func(todo []kube.Target) map[string]model.DNSObserved {
			var got map[string]model.DNSObserved
			got, diags = e.Kube.Observe(ctx, todo)
			return got
		}, nil)
	return out, diags
}

// withKube copies each cluster's Kubernetes settings from the spec onto its member.
func withKube(m *spec.Mesh, members []model.Member) []model.Member {
	out := make([]model.Member, len(members))
	for i, mem := range members {
		if c := m.Cluster(mem.Name); c != nil {
			mem.KubeContext, mem.Namespace, mem.ClusterDomain = KubeContext(c), c.Namespace, c.ClusterDomain
			mem.DNS = dnsExposure(c)
		}
		out[i] = mem
	}
	return out
}

// dnsExposure is a cluster's dns block as its member carries it: nil when the block changes nothing of
// the default (an AWS member's internal NLB).
func dnsExposure(c *spec.Cluster) *model.DNSExposure {
	if !c.External() && len(c.DNS.ServiceAnnotations) == 0 {
		return nil
	}
	return &model.DNSExposure{ServiceType: c.DNSServiceType(), NodeAddresses: c.DNS.NodeAddresses,
		Annotations: c.DNS.ServiceAnnotations}
}

// kubeTargets are the spec's clusters and the former members the state knows a kube context for.
func kubeTargets(m *spec.Mesh, st *state.State) []kube.Target {
	var out []kube.Target
	for _, c := range m.Clusters {
		r := c.AttrRange("kube_context")
		out = append(out, kube.Target{Cluster: c.Name, KubeContext: KubeContext(c), Subject: &r, Mesh: m, Member: c})
	}
	for _, name := range slices.Sorted(maps.Keys(st.Members)) {
		f := st.Members[name]
		if m.Cluster(name) == nil && f.KubeContext != "" {
			out = append(out, kube.Target{Cluster: name, KubeContext: f.KubeContext, Mesh: m})
		}
	}
	return out
}

// observeLoadBalancers finds the NLB behind every observed DNS Service that has a hostname: one batch per
// account access and region (a member with an assumed role has its load balancer in its own account), for
// the clusters whose lookup the view cannot reuse (see obsCache).
func (e *Engine) observeLoadBalancers(ctx context.Context, v *passView, members []model.Member, former map[string]model.Member, obs map[string]model.DNSObserved) error {
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
	found := map[string]lbEntry{} // by cluster
	hosts := map[where][]string{} // to look up
	for name, o := range obs {
		if o.Service == nil || o.Service.Hostname == "" || at[name].region == "" {
			continue
		}
		if got, ok := v.loadBalancer(name, o.Service.Hostname); ok {
			found[name] = got
			continue
		}
		if v.awsFailed() {
			// AWS did not answer this plan's observation: do not wait for it again.
			if got, ok := v.lastLoadBalancer(name, o.Service.Hostname); ok {
				found[name] = got
			}
			continue
		}
		hosts[at[name]] = append(hosts[at[name]], o.Service.Hostname)
	}
	type result struct {
		lbs map[string]model.LoadBalancer
		err error
	}
	results := map[where]result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	lbCtx, cancel := e.awsObserveContext(ctx, v.scope)
	defer cancel()
	for w, hs := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lbs, err := e.AWS.LoadBalancersIn(lbCtx, w.access, w.region, hs)
			mu.Lock()
			results[w] = result{lbs, err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	// In name order, so that the error a plan reports does not depend on map order.
	for _, name := range slices.Sorted(maps.Keys(obs)) {
		o := obs[name]
		if o.Service == nil || o.Service.Hostname == "" || at[name].region == "" {
			continue
		}
		res, looked := results[at[name]]
		if _, ok := found[name]; ok || !looked {
			continue
		}
		if res.err != nil {
			// A plan that may go on without AWS uses the last lookup for the same hostname.
			err := fmt.Errorf("observing %s: %w", at[name].access.In(at[name].region), res.err)
			last, ok := v.lastLoadBalancer(name, o.Service.Hostname)
			if !ok || !v.scope.KeepLastKnown {
				return err
			}
			v.failedAWS(err, v.c.seen)
			found[name] = last
			continue
		}
		entry := lbEntry{hostname: o.Service.Hostname}
		if lb, ok := res.lbs[o.Service.Hostname]; ok {
			entry.lb = &lb
		}
		v.storeLoadBalancer(name, entry)
		found[name] = entry
	}
	for name, got := range found {
		if got.lb != nil {
			o := obs[name]
			lb := *got.lb
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
	defer e.cache.invalidate(p)
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

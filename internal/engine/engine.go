// Package engine ties the pieces into the two operations every front end needs: make a plan (observe, diff,
// check) and apply one (execute, record). meshctl runs each once; meshd runs them in a loop.
package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/providers/kube"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// Engine plans and applies one mesh.
type Engine struct {
	AWS *awsprovider.Provider
	// Kube is the Kubernetes side (DNS Services and Corefiles). Nil, or a spec with dns { enabled = false },
	// leaves DNS alone.
	Kube *kube.Provider
	// PartialDNS plans around member clusters whose Kubernetes side cannot be observed (an API server that is
	// down, a context missing from the kubeconfig) instead of failing: their DNS is left alone, the other
	// Corefiles keep their blocks for them, and the diagnostics come back as warnings. meshd sets it, so that
	// one cluster that is down does not stop the correction of AWS and of the other clusters; meshctl does not,
	// so that a user sees the problem before anything changes.
	PartialDNS  bool
	Parallelism int
	Progress    func(string)
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
	var kubeDiags hcl.Diagnostics
	var wg sync.WaitGroup
	if dnsOn {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kubeObs, kubeDiags = e.Kube.Observe(ctx, kubeTargets(m, st))
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
	if err != nil || diags.HasErrors() {
		return nil, diags, err
	}
	members := withKube(m, obs.Members)

	in := plan.Input{
		Mesh: m.Name, SpecHash: m.Hash(), Adopt: m.Adopt, Members: members,
		Observed: obs.Observed, State: st, Destroy: destroy,
	}
	if dnsOn {
		if err := e.observeLoadBalancers(ctx, members, st.Members, kubeObs); err != nil {
			return nil, diags, err
		}
		in.DNS = &plan.DNSInput{ForwardBy: m.ForwardBy, Clusters: kubeObs, Unobserved: unobserved}
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

// observeLoadBalancers finds the NLB behind every observed DNS Service that has a hostname: one batch per
// region.
func (e *Engine) observeLoadBalancers(ctx context.Context, members []model.Member, former map[string]model.Member, obs map[string]model.DNSObserved) error {
	region := map[string]string{}
	for _, f := range former {
		region[f.Name] = f.Region
	}
	for _, mem := range members {
		region[mem.Name] = mem.Region
	}
	hosts := map[string][]string{} // by region
	for name, o := range obs {
		if o.Service != nil && o.Service.Hostname != "" && region[name] != "" {
			hosts[region[name]] = append(hosts[region[name]], o.Service.Hostname)
		}
	}
	type result struct {
		lbs map[string]model.LoadBalancer
		err error
	}
	results := map[string]result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for r, hs := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lbs, err := e.AWS.LoadBalancers(ctx, r, hs)
			mu.Lock()
			results[r] = result{lbs, err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, r := range slices.Sorted(maps.Keys(results)) {
		if results[r].err != nil {
			return fmt.Errorf("observing %s: %w", r, results[r].err)
		}
	}
	for name, o := range obs {
		if o.Service == nil || o.Service.Hostname == "" {
			continue
		}
		if lb, ok := results[region[name]].lbs[o.Service.Hostname]; ok {
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
func (e *Engine) Apply(ctx context.Context, p *plan.Plan, st *state.State, filter func(plan.Change) bool) *apply.Result {
	executors := e.Executors()
	return apply.Run(ctx, p, st, apply.Options{
		Executors:   executors,
		Parallelism: e.Parallelism,
		Progress:    e.Progress,
		Filter:      filter,
	})
}

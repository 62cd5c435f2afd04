package engine

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
	"github.com/meshd-io/meshd/internal/verify"
)

// ObserveForVerify observes what verify.Verify checks: the members and AWS (with network ACLs and egress
// rules when the engine was built with ObserveNetwork), and each member's DNS with its load balancer. The
// probe results are the caller's to add. A member whose Kubernetes side cannot be observed is an error
// diagnostic, as for meshctl plan.
func (e *Engine) ObserveForVerify(ctx context.Context, m *spec.Mesh, st *state.State) (verify.Input, hcl.Diagnostics, error) {
	dnsOn := e.Kube != nil && !m.DNSDisabled
	var kubeObs map[string]model.DNSObserved
	var kubeDiags hcl.Diagnostics
	var wg sync.WaitGroup
	if dnsOn {
		wg.Add(1)
		go func() {
			defer wg.Done()
			targets := kubeTargets(m, st)
			for i := range targets {
				targets[i].ReadNodeLocal = true // verify follows a Pod's query through the cache, if there is one
			}
			kubeObs, kubeDiags = e.Kube.Observe(ctx, targets)
		}()
	}
	obs, diags, err := e.AWS.Observe(ctx, m, former(st))
	wg.Wait()
	diags = append(diags, kubeDiags...)
	if err != nil || diags.HasErrors() {
		return verify.Input{}, diags, err
	}
	members := withKube(m, obs.Members)
	if !dnsOn {
		return verifyInput(m, st, members, obs.Observed, nil), diags, nil
	}
	if err := e.observeLoadBalancers(ctx, uncached(), members, st.Members, kubeObs); err != nil {
		return verify.Input{}, diags, err
	}
	in := verifyInput(m, st, members, obs.Observed, kubeObs)
	if in.LoadBalancerRules, err = e.loadBalancerRules(ctx, members, kubeObs); err != nil {
		return verify.Input{}, diags, err
	}
	return in, diags, nil
}

// groupIngress reads security groups' ingress rules (the AWS provider): what verify checks an NLB's
// frontend groups with. An AWS side without it leaves that check out.
type groupIngress interface {
	GroupIngressIn(ctx context.Context, a model.Access, region string, groupIDs []string) (map[string][]model.SecurityGroupRule, error)
}

// loadBalancerRules reads the ingress rules of the security groups of the members' NLBs (the frontend
// groups AWS Load Balancer Controller v2.6+ makes), one call per account access and region.
func (e *Engine) loadBalancerRules(ctx context.Context, members []model.Member, dns map[string]model.DNSObserved) (map[string][]model.SecurityGroupRule, error) {
	reader, ok := e.AWS.(groupIngress)
	if !ok {
		return nil, nil
	}
	type where struct {
		access model.Access
		region string
	}
	groups := map[where][]string{}
	for _, mem := range members {
		if lb := dns[mem.Name].LoadBalancer; !mem.External && lb != nil {
			w := where{mem.Access, mem.Region}
			groups[w] = append(groups[w], lb.SecurityGroups...)
		}
	}
	out := map[string][]model.SecurityGroupRule{}
	for _, w := range slices.SortedFunc(maps.Keys(groups), func(x, y where) int {
		return cmp.Or(strings.Compare(x.region, y.region), strings.Compare(x.access.AssumeRole, y.access.AssumeRole))
	}) {
		ids := slices.Compact(slices.Sorted(slices.Values(groups[w])))
		if len(ids) == 0 {
			continue
		}
		rules, err := reader.GroupIngressIn(ctx, w.access, w.region, ids)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, rules)
	}
	return out, nil
}

// verifyInput is what verify.Verify checks, from one observation: meshctl verify's, or the plan's for
// meshd's path checks. dns nil leaves the DNS layer unchecked.
func verifyInput(m *spec.Mesh, st *state.State, members []model.Member, obs *model.Observed, dns map[string]model.DNSObserved) verify.Input {
	in := verify.Input{Mesh: m.Name, Members: members, Observed: obs, ForwardBy: m.ForwardBy,
		TransitGateways: plan.TransitGatewayInput(m)}
	if dns != nil {
		in.DNS = dns
		in.OwnedZones, in.NodeLocalZones = map[string][]string{}, map[string][]string{}
		for _, mem := range members {
			in.OwnedZones[mem.Name] = st.CorefileZones(mem.Name)
			in.NodeLocalZones[mem.Name] = plan.NodeLocalZones(st, mem.Name)
		}
	}
	return in
}

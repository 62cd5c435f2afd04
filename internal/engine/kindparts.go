package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/kindio"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/providers/kube"
)

// observers are the built-in observers, then one per kind registered in kindio, by rank.
func observers() []observer {
	out := slices.Clone(builtinObservers)
	for _, k := range kindio.KubeKinds() {
		io, _ := kindio.KubeOf(k)
		if io.Observe == nil {
			continue
		}
		out = append(out, observer{name: string(k), kinds: []plan.Kind{k},
			on: func(o *observation) bool { return o.e.Kube != nil },
			observe: func(o *observation, ctx context.Context) (hcl.Diagnostics, error) {
				return o.observeKubePart(ctx, k, io)
			}})
	}
	for _, k := range kindio.AWSKinds() {
		io, _ := kindio.AWSOf(k)
		if io.Observe == nil {
			continue
		}
		out = append(out, observer{name: string(k), kinds: []plan.Kind{k}, on: func(*observation) bool { return true },
			resolve: func(o *observation, ctx context.Context) (hcl.Diagnostics, error) {
				return o.observeAWSPart(ctx, k, io)
			}})
	}
	return out
}

// part returns the kind's Parts in the planner's input, made on first use; o.partsMu is held.
func (o *observation) part(k plan.Kind) *plan.Parts {
	if o.parts == nil {
		o.parts = map[plan.Kind]*plan.Parts{}
	}
	p, ok := o.parts[k]
	if !ok {
		p = &plan.Parts{}
		o.parts[k] = p
		if o.in.Kinds == nil {
			o.in.Kinds = map[plan.Kind]any{}
		}
		o.in.Kinds[k] = p
	}
	return p
}

// kubePartResult is one cluster's reading of a kind's part.
type kubePartResult struct {
	val any
	err error
}

// observeKubePart reads a registered kind's part of every member cluster (and former member the state
// knows a kube context for), reusing the clusters the view lets it (kubeParts: the cache's per-cluster
// rules). A cluster that could not be read is left out of the part; with PartialDNS that is a warning.
func (o *observation) observeKubePart(ctx context.Context, k plan.Kind, io kindio.Kube) (hcl.Diagnostics, error) {
	targets := kubeTargets(o.m, o.st)
	got := kubeParts(o.v, "kind/"+string(k), targets, func(t kube.Target) string { return t.Cluster }, func(t kube.Target) string { return t.Cluster },
		func(todo []kube.Target) map[string]kubePartResult {
			out := map[string]kubePartResult{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, t := range todo {
				wg.Go(func() {
					var r kubePartResult
					c, err := o.e.KubeClient(t.KubeContext)
					if err == nil {
						r.val, r.err = io.Observe(ctx, c, kindio.Cluster{Name: t.Cluster, KubeContext: t.KubeContext})
					} else {
						r.err = err
					}
					mu.Lock()
					out[t.Cluster] = r
					mu.Unlock()
				})
			}
			wg.Wait()
			return out
		}, func(r kubePartResult) bool { return r.err == nil })
	o.partsMu.Lock()
	defer o.partsMu.Unlock()
	p := o.part(k)
	p.Kube = map[string]any{}
	var diags hcl.Diagnostics
	for _, name := range slices.Sorted(maps.Keys(got)) {
		r := got[name]
		if r.err == nil {
			p.Kube[name] = r.val
			continue
		}
		if p.Unobserved == nil {
			p.Unobserved = map[string]bool{}
		}
		p.Unobserved[name] = true
		sev := hcl.DiagError
		if o.e.PartialDNS {
			sev = hcl.DiagWarning
		}
		diags = append(diags, &hcl.Diagnostic{Severity: sev, Summary: fmt.Sprintf("cluster %s: observing %s: %v", name, k, r.err)})
	}
	return diags, nil
}

// configSource is the AWS side's SDK configuration per access and region (the AWS provider).
type configSource interface {
	ConfigFor(a model.Access, region string) aws.Config
}

// observeAWSPart reads a registered kind's part in every (access, region) of the members and former
// members, as an AWS part of the cache (awsPart: reused while AWS is, read again after any AWS change).
func (o *observation) observeAWSPart(ctx context.Context, k plan.Kind, io kindio.AWS) (hcl.Diagnostics, error) {
	cs, ok := o.e.AWS.(configSource)
	if !ok {
		return nil, fmt.Errorf("observing %s: this engine's AWS side has no SDK configuration", k)
	}
	wheres := map[plan.Where]bool{}
	for _, m := range o.in.Members {
		if !m.External && m.Region != "" {
			wheres[plan.Where{Access: m.Access, Region: m.Region}] = true
		}
	}
	for _, m := range o.st.Members {
		if !m.External && m.Region != "" && o.m.Cluster(m.Name) == nil {
			wheres[plan.Where{Access: m.Access, Region: m.Region}] = true
		}
	}
	all := slices.SortedFunc(maps.Keys(wheres), func(a, b plan.Where) int {
		return strings.Compare(a.Access.In(a.Region), b.Access.In(b.Region))
	})
	vals := make([]any, len(all))
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, at := range all {
		wg.Go(func() {
			vals[i], errs[i] = awsPart(o.v, fmt.Sprintf("kind/%s/%s", k, at.Access.In(at.Region)), func() (any, error) {
				ctx, cancel := o.e.awsObserveContext(ctx, o.v.scope)
				defer cancel()
				return io.Observe(ctx, cs.ConfigFor(at.Access, at.Region), at)
			})
		})
	}
	wg.Wait()
	o.partsMu.Lock()
	defer o.partsMu.Unlock()
	p := o.part(k)
	p.AWS = map[plan.Where]any{}
	for i, at := range all {
		if errs[i] != nil {
			return nil, fmt.Errorf("observing %s in %s: %w", k, at.Access.In(at.Region), errs[i])
		}
		p.AWS[at] = vals[i]
	}
	return nil, nil
}

package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// The observation cache lets meshd's watch-triggered passes (PlanScoped) plan against the last observation
// instead of observing everything again. What a plan observes comes in two parts:
//
//   - AWS, per pass: everything read from AWS (Observe, the NLBs behind the DNS Services, and whatever a
//     kind reads there through awsPart). It is reused while younger than ObserveScope.AWSMaxAge; a plan
//     that would change anything in AWS from a reused observation is made again from a fresh one, so
//     nothing is applied to AWS from the cache.
//   - Kubernetes, per cluster: everything read in one cluster (the DNS objects, replicated objects and
//     copies, through kubeParts). A cluster named in ObserveScope.Kube (a watched object of its changed) is
//     read again; the others' last reading is reused.
//
// What the cache must never do is hand a plan a value that a change since could have invalidated. So:
//
//   - every change a plan applied (or tried to) drops what it touched: the AWS part for an AWS kind, the
//     cluster of the object for a Kubernetes kind (Touched), all clusters for a kind that does not say;
//   - a cluster's NLB addresses are looked up again whenever a Service of the cluster changed (its watch
//     event: ObserveScope.LoadBalancers; or meshd's own write to it) or its Service names another
//     hostname, so a Corefile block never forwards to addresses older than the last observe that saw them
//     change;
//   - another spec, or other former members in the state, start from nothing (the epoch);
//   - what could not be read (an unreachable cluster, an object that failed) is not kept: it is read again.
//
// Objects that are not watched (the Corefile backup, target namespaces of copies) are seen afresh at the
// next full pass, on the AWS interval, as before the cache.
//
// meshd observes AWS in the background (ObserveAWS, background.go), at the same time as its passes. Such an
// observation is staged and put in the cache only at its end, and only the parts that nothing dropped since
// it began: every drop above is counted (gen, dropped), so an observation that started before a change
// never replaces what was read after it.
type obsCache struct {
	mu    sync.Mutex
	epoch string
	awsAt time.Time                 // when the AWS part was observed; zero: it must be observed again
	seen  time.Time                 // when it was last observed, for the age of a fallback
	aws   map[string]any            // AWS parts by key
	kube  map[string]map[string]any // Kubernetes parts by cluster, then key
	// gen counts the drops; dropped is the gen of the last drop of "aws", "lb/CLUSTER", "kube/CLUSTER" and
	// "kube/*" (every cluster).
	gen     uint64
	dropped map[string]uint64
}

// drop records that what key names was dropped (c.mu held).
func (c *obsCache) drop(keys ...string) {
	if c.dropped == nil {
		c.dropped = map[string]uint64{}
	}
	c.gen++
	for _, k := range keys {
		c.dropped[k] = c.gen
	}
}

// droppedSince reports whether any of keys was dropped after gen (c.mu held).
func (c *obsCache) droppedSince(gen uint64, keys ...string) bool {
	for _, k := range keys {
		if c.dropped[k] > gen {
			return true
		}
	}
	return false
}

// passView is one plan's use of the cache: what it may reuse and what it must read again.
type passView struct {
	c     *obsCache
	scope model.ObserveScope
	now   time.Time

	mu       sync.Mutex
	awsFresh bool // AWS is observed by this plan
	awsAge   time.Duration
	awsErr   error
	kubeRead map[string]bool

	// staged: a background observation (ObserveAWS). It reads everything afresh and keeps what it read in
	// stage until commit, which puts in the cache what nothing dropped since gen0 under epoch.
	staged bool
	gen0   uint64
	epoch  string
	stage  obsStage
}

// begin starts a plan's view. Without a scope (meshctl, and meshd's full passes) it reuses nothing, and
// what it reads becomes the cache.
func (c *obsCache) begin(m *spec.Mesh, st *state.State, destroy bool, scope model.ObserveScope) *passView {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if epoch := epochOf(m, st, destroy); epoch != c.epoch {
		c.epoch, c.aws, c.kube, c.awsAt, c.seen = epoch, nil, nil, time.Time{}, time.Time{}
		c.drop("aws", "kube/*")
	}
	if c.aws == nil {
		c.aws = map[string]any{}
	}
	if c.kube == nil {
		c.kube = map[string]map[string]any{}
	}
	v := &passView{c: c, scope: scope, now: now, kubeRead: map[string]bool{}}
	// A plan that observes AWS replaces the AWS part key by key; until then the last one stays, as the
	// fallback for KeepLastKnown.
	v.awsFresh = !scope.Scoped || scope.AWSMaxAge <= 0 || c.awsAt.IsZero() || now.Sub(c.awsAt) >= scope.AWSMaxAge
	if !v.awsFresh {
		v.awsAge = now.Sub(c.awsAt)
	}
	for _, cl := range scope.Kube {
		delete(c.kube, cl)
		c.drop("kube/" + cl)
	}
	for _, cl := range scope.LoadBalancers {
		c.drop("lb/" + cl) // a background lookup that began before the Service changed is not kept
	}
	if !scope.Scoped {
		c.kube = map[string]map[string]any{}
		c.drop("kube/*")
	}
	return v
}

// uncached is a view that reuses nothing and keeps nothing the engine's plans would see (meshctl verify).
func uncached() *passView {
	c := &obsCache{aws: map[string]any{}, kube: map[string]map[string]any{}}
	return &passView{c: c, awsFresh: true, kubeRead: map[string]bool{}}
}

// epochOf names what a cached observation was made for: the spec and the former members it covered.
func epochOf(m *spec.Mesh, st *state.State, destroy bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%v", m.Hash(), destroy)
	for _, name := range slices.Sorted(maps.Keys(st.Members)) {
		if m.Cluster(name) == nil {
			fmt.Fprintf(&b, "|%+v", st.Members[name])
		}
	}
	return b.String()
}

// report is what the plan observed afresh and what it reused.
func (v *passView) report() model.ObserveReport {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := model.ObserveReport{AWSFresh: v.awsFresh && v.awsErr == nil, AWSAge: v.awsAge, AWSError: v.awsErr}
	r.Kube = slices.Sorted(maps.Keys(v.kubeRead))
	return r
}

// awsPart returns the AWS observation named key: the cached one while this plan may reuse AWS, else a new
// one, which is cached. When observing fails and the scope keeps the last known observation, that is
// returned instead and the failure is kept for the report (the plan then changes nothing in AWS).
func awsPart[T any](v *passView, key string, observe func() (T, error)) (T, error) {
	if !v.awsFresh {
		v.c.mu.Lock()
		got, ok := v.c.aws[key]
		v.c.mu.Unlock()
		if ok {
			return got.(T), nil
		}
	}
	val, err := observe()
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	if err != nil {
		if got, ok := v.c.aws[key]; ok && v.scope.KeepLastKnown {
			v.failedAWS(err, v.c.seen)
			return got.(T), nil
		}
		return val, err
	}
	if v.staged {
		v.stage.putAWS(key, val)
		return val, nil
	}
	v.c.aws[key] = val
	if v.awsFresh {
		v.c.awsAt, v.c.seen = v.now, v.now
	}
	return val, nil
}

// awsFailed reports whether this plan failed to observe AWS and went on with the last observation.
func (v *passView) awsFailed() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.awsErr != nil
}

func (v *passView) failedAWS(err error, at time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.awsErr == nil {
		v.awsErr = err
		v.awsAge = v.now.Sub(at)
	}
}

// kubeParts reads items (each in one cluster, named by id within key) through observe, except those of
// clusters this plan may reuse, which come from the cache. Results that keep says are good are cached by
// cluster; the others (an unreachable cluster, a failed read) are read again next time.
func kubeParts[Q, R any](v *passView, key string, items []Q, cluster, id func(Q) string, observe func([]Q) map[string]R, keep func(R) bool) map[string]R {
	out := map[string]R{}
	var todo []Q
	v.c.mu.Lock()
	for _, q := range items {
		cl := cluster(q)
		if byKey, ok := v.c.kube[cl]; ok && !v.kubeRead[cl] && !v.staged {
			if got, ok := byKey[key+"/"+id(q)]; ok {
				out[id(q)] = got.(R)
				continue
			}
		}
		todo = append(todo, q)
	}
	v.c.mu.Unlock()
	if len(todo) == 0 {
		return out
	}
	got := observe(todo)
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, q := range todo {
		cl := cluster(q)
		v.kubeRead[cl] = true
		r, ok := got[id(q)]
		if !ok {
			v.stage.failedKube(v.staged, cl)
			continue
		}
		out[id(q)] = r
		if keep != nil && !keep(r) {
			v.stage.failedKube(v.staged, cl)
			continue
		}
		if v.staged {
			v.stage.putKube(cl, key+"/"+id(q), r)
			continue
		}
		if v.c.kube[cl] == nil {
			v.c.kube[cl] = map[string]any{}
		}
		v.c.kube[cl][key+"/"+id(q)] = r
	}
	return out
}

// lbEntry is a cluster's NLB as last looked up for the hostname its DNS Service named then.
type lbEntry struct {
	hostname string
	lb       *model.LoadBalancer
	// stale: meshd wrote the Service since; looked up again, and kept only as the last known.
	stale bool
}

// loadBalancer returns the cached NLB lookup of cluster for hostname when this plan may reuse it: AWS is
// reused, no Service of the cluster changed (ObserveScope.LoadBalancers), and its Service names the same
// hostname as when the NLB was looked up.
func (v *passView) loadBalancer(cluster, hostname string) (lbEntry, bool) {
	if v.awsFresh || slices.Contains(v.scope.LoadBalancers, cluster) {
		return lbEntry{}, false
	}
	e, ok := v.lastLoadBalancer(cluster, hostname)
	return e, ok && !e.stale
}

// lastLoadBalancer is the last lookup of cluster's NLB for hostname, whatever its age.
func (v *passView) lastLoadBalancer(cluster, hostname string) (lbEntry, bool) {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	e, ok := v.c.aws["lb/"+cluster].(lbEntry)
	return e, ok && e.hostname == hostname
}

func (v *passView) storeLoadBalancer(cluster string, e lbEntry) {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	if v.staged {
		v.stage.putAWS("lb/"+cluster, e)
		return
	}
	v.c.aws["lb/"+cluster] = e
}

// invalidate drops what the plan's changes may have changed (see obsCache): it runs after every apply,
// whatever its outcome.
func (c *obsCache) invalidate(p *plan.Plan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range p.Changes {
		if !ch.Action.IsChange() {
			continue
		}
		if isAWSChange(ch) {
			// Observed again by the next plan; the last observation stays only as the fallback for
			// KeepLastKnown, which changes nothing in AWS from it.
			c.awsAt = time.Time{}
			c.drop("aws")
			continue
		}
		if ref, ok := plan.Touched(ch); ok && ref.Cluster != "" {
			delete(c.kube, ref.Cluster)
			c.drop("kube/" + ref.Cluster)
			if ref.Kind == "Service" && ref.APIVersion == "v1" {
				c.drop("lb/" + ref.Cluster)
			}
			if e, ok := c.aws["lb/"+ref.Cluster].(lbEntry); ok && ref.Kind == "Service" && ref.APIVersion == "v1" {
				// A Service's status names a load balancer in AWS: look it up again, and keep the last
				// lookup for a plan that cannot.
				e.stale = true
				c.aws["lb/"+ref.Cluster] = e
			}
			continue
		}
		c.kube = nil
		c.awsAt = time.Time{}
		c.drop("aws", "kube/*")
	}
}

// isAWSChange reports whether ch changes something in AWS.
func isAWSChange(ch plan.Change) bool {
	info, _ := plan.Lookup(ch.Kind)
	return ch.Action.IsChange() && info.Provider == plan.ProviderAWS
}

// hasAWSChanges reports whether applying p would change anything in AWS.
func hasAWSChanges(p *plan.Plan) bool { return slices.ContainsFunc(p.Changes, isAWSChange) }

// withoutAWSChanges takes the AWS changes out of a plan made from an AWS observation that could not be
// renewed (nothing is applied to AWS from it), and the changes that wait on them.
func withoutAWSChanges(p *plan.Plan) {
	dropped := map[string]bool{}
	for _, ch := range p.Changes {
		if isAWSChange(ch) {
			dropped[ch.Address] = true
		}
	}
	kept := p.Changes[:0]
	for _, ch := range p.Changes {
		if dropped[ch.Address] || slices.ContainsFunc(ch.DependsOn, func(d string) bool { return dropped[d] }) {
			continue
		}
		kept = append(kept, ch)
	}
	p.Changes = kept
}

// PlanScoped is Plan for meshd's passes: it observes afresh only what scope asks for and reuses the rest of
// the last observation under the rules of obsCache. A plan from a reused AWS observation that would change
// AWS is made again from a fresh one. The report says what was observed, reused, or could not be renewed.
func (e *Engine) PlanScoped(ctx context.Context, m *spec.Mesh, st *state.State, scope model.ObserveScope) (*plan.Plan, model.ObserveReport, hcl.Diagnostics, error) {
	p, v, diags, err := e.plan(ctx, m, st, false, scope)
	if err == nil && p != nil && !v.awsFresh && hasAWSChanges(p) {
		// AWS-kind drift seen in the cached observation: look at AWS itself before changing it. The
		// Kubernetes objects just read are reused.
		scope.AWSMaxAge, scope.Kube = 0, nil
		p, v, diags, err = e.plan(ctx, m, st, false, scope)
	}
	diags = collapseForbidden(diags, specPath(m))
	if v == nil {
		return p, model.ObserveReport{}, diags, err
	}
	rep := v.report()
	if err == nil && p != nil && rep.AWSError != nil {
		withoutAWSChanges(p)
	}
	return p, rep, diags, err
}

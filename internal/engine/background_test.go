package engine

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// gatedAWS is a stubAWS whose Observe, while gate is set, waits at it: a background observation is held
// there while a pass runs.
type gatedAWS struct {
	*stubAWS
	entered chan struct{}

	mu   sync.Mutex
	gate chan struct{} // the next Observe waits at it
}

func (g *gatedAWS) Observe(ctx context.Context, m *spec.Mesh, former awsprovider.Former) (*awsprovider.Observation, hcl.Diagnostics, error) {
	g.mu.Lock()
	gate := g.gate
	g.gate = nil
	g.mu.Unlock()
	if gate != nil {
		g.entered <- struct{}{}
		<-gate
	}
	return g.stubAWS.Observe(ctx, m, former)
}

// observedCorefile is the Corefile text a plan's change for cluster was planned from.
func observedCorefile(t *testing.T, p *plan.Plan, cluster string) string {
	t.Helper()
	ch := p.Find(plan.CorefileAddress(cluster))
	if ch == nil {
		t.Fatalf("no Corefile change for %s", cluster)
	}
	return ch.Before.(plan.Corefile).Text
}

func setCorefile(k *stubKube, kubeContext, text string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	o := k.clusters[kubeContext]
	o.CoreDNS = &model.ConfigMap{Data: map[string]string{plan.CorefileKey: text}}
	k.clusters[kubeContext] = o
}

// readCount is how many times the stub's Kubernetes side was asked for cluster.
func readCount(k *stubKube, cluster string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, c := range k.targets {
		if c == cluster {
			n++
		}
	}
	return n
}

// backgroundWhile runs ObserveAWS and holds it in its AWS observation, once it has read both clusters'
// Kubernetes objects, while during runs; then lets it finish and returns its error.
func backgroundWhile(t *testing.T, e *Engine, g *gatedAWS, k *stubKube, m *spec.Mesh, st *state.State, during func()) error {
	t.Helper()
	gate := make(chan struct{})
	g.mu.Lock()
	g.entered, g.gate = make(chan struct{}), gate
	g.mu.Unlock()
	r1, r2 := readCount(k, "c001"), readCount(k, "c002")
	done := make(chan error, 1)
	go func() {
		_, err := e.ObserveAWS(context.Background(), m, st)
		done <- err
	}()
	<-g.entered
	for deadline := time.Now().Add(30 * time.Second); readCount(k, "c001") == r1 || readCount(k, "c002") == r2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the background observation did not read the clusters within 30 s")
		}
	}
	during()
	close(gate)
	return <-done
}

// TestObserveAWSNeverReplacesWhatChangedSince: a background observation puts AWS in the cache, so that
// watch-triggered plans make no AWS call; but what changed while it ran (a watch event's cluster, a Service
// whose NLB was looked up again, an apply that changed AWS) is not replaced by what it read before: a
// Corefile repair is never planned from a Corefile older than the revert.
func TestObserveAWSNeverReplacesWhatChangedSince(t *testing.T) {
	stub, k := cachedStubs()
	g := &gatedAWS{stubAWS: stub}
	e, m, st := &Engine{AWS: g, Kube: k}, twoClusters(t, ""), state.New("m")
	// A converged AWS side, so that the scoped plans have no AWS change to observe AWS again for.
	p, _ := planScoped(t, e, m, st, model.ObserveScope{})
	e.Apply(context.Background(), p, st, 0)
	planScoped(t, e, m, st, model.ObserveScope{})
	const reverted = "# reverted\n" + defaultCorefile

	// Background observation, nothing happening meanwhile: AWS and both clusters go in the cache.
	if err := backgroundWhile(t, e, g, k, m, st, func() {}); err != nil {
		t.Fatal(err)
	}
	stub.observed, k.targets = 0, nil
	_, rep := planScoped(t, e, m, st, scoped("c001"))
	if stub.observed != 0 || rep.AWSFresh {
		t.Errorf("a watch-triggered plan after the background observation observed AWS %d times; want none", stub.observed)
	}

	// c001's Corefile is reverted while a background observation that read it before runs; the watch
	// event's plan reads it again. The background's older reading of c001 must not replace it.
	err := backgroundWhile(t, e, g, k, m, st, func() {
		setCorefile(k, "k1", reverted)
		p, _ := planScoped(t, e, m, st, scoped("c001"))
		if got := observedCorefile(t, p, "c001"); !strings.Contains(got, "# reverted") {
			t.Fatalf("the watch-triggered plan did not read c001's revert: %q", got)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	p, _ = planScoped(t, e, m, st, scoped("c002")) // c001 from the cache
	if got := observedCorefile(t, p, "c001"); got != reverted {
		t.Errorf("after the background observation, c001 is planned from %q, want the revert read after it began %q", got, reverted)
	}

	// An apply that changes AWS while a background observation runs: what it read of AWS is older than
	// the change, so it does not make AWS fresh; the next plan observes AWS itself.
	err = backgroundWhile(t, e, g, k, m, st, func() {
		e.cache.invalidate(&plan.Plan{Changes: []plan.Change{{Kind: plan.KindPeering, Action: plan.Create, Address: "peering[c001,c002]"}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	stub.observed = 0
	planScoped(t, e, m, st, scoped("c001"))
	if stub.observed == 0 {
		t.Error("after an AWS change made while the background observation ran, a plan reused its AWS observation")
	}
}

// TestObserveAWSDropsAClusterItCouldNotRead: a cluster the background observation cannot reach is not left
// in the cache as it was last read: the next pass reads it itself, and plans around it (PartialDNS).
func TestObserveAWSDropsAClusterItCouldNotRead(t *testing.T) {
	stub, k := cachedStubs()
	g := &gatedAWS{stubAWS: stub}
	e, m, st := &Engine{AWS: g, Kube: k, PartialDNS: true}, twoClusters(t, ""), state.New("m")
	p, _ := planScoped(t, e, m, st, model.ObserveScope{})
	e.Apply(context.Background(), p, st, 0)
	planScoped(t, e, m, st, model.ObserveScope{})
	k.mu.Lock()
	delete(k.clusters, "k2") // c002's API server stops answering
	k.mu.Unlock()
	if err := backgroundWhile(t, e, g, k, m, st, func() {}); err != nil {
		t.Fatal(err)
	}
	before := readCount(k, "c002")
	p, _ = planScoped(t, e, m, st, scoped())
	if readCount(k, "c002") == before {
		t.Error("the plan after the background observation reused c002's reading from before it became unreachable")
	}
	if !slices.Contains(p.Unobserved, "c002") {
		t.Errorf("unobserved clusters %v, want c002", p.Unobserved)
	}
}

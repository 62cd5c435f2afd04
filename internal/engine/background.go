package engine

import (
	"context"
	"time"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// obsStage is what a background observation read, kept apart from the cache until it ends.
type obsStage struct {
	aws  map[string]any
	kube map[string]map[string]any
	// failed are the clusters where something could not be read: their last reading goes (what could not be
	// read is not kept), so that the next pass reads them itself and reports them.
	failed map[string]bool
}

func (s *obsStage) failedKube(staged bool, cluster string) {
	if !staged {
		return
	}
	if s.failed == nil {
		s.failed = map[string]bool{}
	}
	s.failed[cluster] = true
}

func (s *obsStage) putAWS(key string, val any) {
	if s.aws == nil {
		s.aws = map[string]any{}
	}
	s.aws[key] = val
}

func (s *obsStage) putKube(cluster, key string, val any) {
	if s.kube == nil {
		s.kube = map[string]map[string]any{}
	}
	if s.kube[cluster] == nil {
		s.kube[cluster] = map[string]any{}
	}
	s.kube[cluster][key] = val
}

// ObserveAWS observes AWS, with every cluster's Kubernetes objects that the AWS side needs (the DNS
// Services' hostnames name the NLBs to look up), into the observation meshd's passes plan from
// (PlanScoped), without planning. meshd runs it in the background on its interval, so that no pass waits
// for AWS to be observed: the next pass plans from it, reading nothing afresh but the clusters watch events
// name.
//
// It runs at the same time as passes, so what it reads is put in the cache only once it has all been read,
// and only what nothing dropped meanwhile (obsCache): an apply, a watch event or another spec since it
// began keeps the part concerned out. Nothing goes in when AWS could not be observed (the error is
// returned; the cache keeps the last observation). A cluster where something could not be read is taken
// out of the cache: the next pass reads it itself, and plans around it and reports it if it still cannot.
// The report says what was observed.
func (e *Engine) ObserveAWS(ctx context.Context, m *spec.Mesh, st *state.State) (model.ObserveReport, error) {
	v := e.cache.beginStaged(m, st)
	o := &observation{e: e, v: v, m: m, st: st, dnsOn: e.Kube != nil && !m.DNSDisabled}
	if err := o.observe(ctx); err != nil {
		return v.report(), err
	}
	rep := v.report()
	if rep.AWSError != nil {
		return rep, rep.AWSError
	}
	e.cache.commit(v)
	return rep, nil
}

// beginStaged starts a background observation's view: it reads everything afresh and changes nothing in
// the cache until commit.
func (c *obsCache) beginStaged(m *spec.Mesh, st *state.State) *passView {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &passView{c: c, now: time.Now(), awsFresh: true, kubeRead: map[string]bool{},
		// KeepLastKnown bounds each AWS call by AWSObserveTimeout; a failure keeps the view out of the cache.
		scope:  model.ObserveScope{KeepLastKnown: true},
		staged: true, gen0: c.gen, epoch: epochOf(m, st, false)}
}

// commit puts what a background observation read in the cache: each part unless something dropped it since
// the observation began, nothing when the cache is now for another spec or state.
func (c *obsCache) commit(v *passView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v.epoch != c.epoch || c.aws == nil {
		return
	}
	if !c.droppedSince(v.gen0, "aws") {
		for key, val := range v.stage.aws {
			if len(key) > 3 && key[:3] == "lb/" && c.droppedSince(v.gen0, key) {
				continue
			}
			c.aws[key] = val
		}
		c.awsAt, c.seen = v.now, v.now
	}
	if c.kube == nil {
		c.kube = map[string]map[string]any{}
	}
	for cl, parts := range v.stage.kube {
		if c.droppedSince(v.gen0, "kube/"+cl, "kube/*") || v.stage.failed[cl] {
			continue
		}
		c.kube[cl] = parts
	}
	for cl := range v.stage.failed {
		if !c.droppedSince(v.gen0, "kube/"+cl, "kube/*") {
			delete(c.kube, cl)
		}
	}
}

// Package daemon runs meshd's reconcile loop: observe -> plan -> apply, again and again, so that the mesh
// stays as the spec says. A pass runs on a timer (with jitter), or, with Controller.Observe, after AWS was
// observed in the background on that timer; and when something asks for one (the spec changed on disk, a
// watched Kubernetes object changed, SIGHUP, POST /trigger). A pass that observes AWS starts no sooner than
// a minimum interval after the last AWS observation, which keeps a flapping trigger from exhausting the AWS
// API rate limits; a pass asked for by watch events alone makes no AWS call and only keeps a small floor
// (KubeMinInterval) after the previous pass.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// PassFunc runs one reconcile pass; the reason says what triggered it and how much must be observed.
type PassFunc func(ctx context.Context, r Reason) error

// Reason is why a pass runs. A pass asked for only by Kubernetes watch events may observe only the clusters
// whose objects changed (Kube) and reuse the rest of the last observation; anything else (the timer, the
// spec, SIGHUP, POST /trigger, a retry, the start) asks for a full pass.
type Reason struct {
	Why  string
	Full bool
	// Kube are the clusters with a watched object that changed since the last pass started; LoadBalancers
	// those among them where the object was a Service, whose status names a load balancer in AWS.
	Kube          []string
	LoadBalancers []string
}

// KubeEvent is a watched Kubernetes object that changed.
type KubeEvent struct {
	Cluster string
	// Service: the object is a Service, which stands for a load balancer in AWS.
	Service bool
	Why     string
}

// pending merges the triggers that arrive between two passes.
type pending struct {
	whys []string
	full bool
	kube map[string]bool // by cluster: true when a Service changed
}

func (p *pending) addWhy(why string) {
	if !slices.Contains(p.whys, why) {
		p.whys = append(p.whys, why)
	}
}

func (p *pending) add(ev KubeEvent) {
	p.addWhy(ev.Why)
	if ev.Cluster == "" {
		p.full = true
		return
	}
	if p.kube == nil {
		p.kube = map[string]bool{}
	}
	p.kube[ev.Cluster] = p.kube[ev.Cluster] || ev.Service
}

// reason is the merged reason, with r (the timer's, say) merged in; empty when nothing is pending.
func (p *pending) reason(r Reason) Reason {
	if r.Why != "" && r.Why != "trigger" && !slices.Contains(p.whys, r.Why) {
		p.whys = append([]string{r.Why}, p.whys...)
	}
	out := Reason{Why: strings.Join(p.whys, "; "), Full: r.Full || p.full}
	if out.Full {
		return out
	}
	for _, cl := range slices.Sorted(maps.Keys(p.kube)) {
		out.Kube = append(out.Kube, cl)
		if p.kube[cl] {
			out.LoadBalancers = append(out.LoadBalancers, cl)
		}
	}
	return out
}

// ErrTransient marks pass errors worth retrying soon (throttling, timeouts) rather than at the next interval.
var ErrTransient = errors.New("transient")

// Controller decides when passes run.
type Controller struct {
	Pass PassFunc
	// Interval is the period of the full pass (AWS is not watched, so this is how soon AWS drift is seen).
	Interval time.Duration
	// Jitter spreads the period by up to this fraction (0.1 = ±10%) so replicas and meshes do not align.
	Jitter float64
	// MinInterval is the least time between two AWS observations: the starts of two full passes, and of
	// the background observations (Observe).
	MinInterval time.Duration
	// KubeMinInterval is the least time between the start of a pass and the start of the next when that one
	// is asked for by watch events alone (it makes no AWS call): a floor against a storm of writes. Zero:
	// 50 ms.
	KubeMinInterval time.Duration
	// Observe, when set, observes AWS in the background (engine.ObserveAWS): on the interval, instead of a
	// full pass, and when ObserveSoon asks. When it succeeds a pass planned from it follows (Reason "interval",
	// not full, naming no cluster: it reads nothing afresh, since the observation read every cluster too);
	// when it fails a full pass, which observes AWS itself and reports why it cannot. Passes asked for by
	// watch events never wait for it.
	Observe func(ctx context.Context) error
	// MaxBackoff bounds the retry delay after transient errors (doubling from MinInterval).
	MaxBackoff time.Duration
	// MaxPass is how long a pass may run, or the loop may be late for the next one, before Running says the
	// loop is stuck (meshd: Reconciler.PassBound). Zero: 10 minutes.
	MaxPass time.Duration

	once    sync.Once
	trigger chan struct{}
	observe chan struct{} // ObserveSoon
	mu      sync.Mutex
	waiting pending
	// lastAWS is when the last AWS observation (a full pass or Observe) started.
	lastAWS time.Time
	// passStart is when the pass under way started (zero between passes); lastEnd when the last one ended,
	// whatever its result; due when the next one starts at the latest (the timer).
	passStart, lastEnd, due time.Time
}

// Running returns nil while the loop runs, or why it does not: the pass under way has run for longer than
// MaxPass, or the next pass has not started within MaxPass of when it was due. It is meshd's liveness:
// whether passes succeed does not matter (a member cluster that is down, an AccessDenied, fail every pass
// without anything a restart would fix), only that they keep being run. Before Run it returns nil.
func (c *Controller) Running(now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := c.MaxPass
	if limit <= 0 {
		limit = 10 * time.Minute
	}
	switch {
	case !c.passStart.IsZero():
		if d := now.Sub(c.passStart); d > limit {
			return fmt.Errorf("the pass started at %s has been running for %s (limit %s)",
				c.passStart.UTC().Format(time.RFC3339), d.Round(time.Second), limit)
		}
	case !c.due.IsZero():
		if d := now.Sub(c.due); d > limit {
			return fmt.Errorf("no pass has started since the last one ended at %s; the next was due %s ago (limit %s)",
				c.lastEnd.UTC().Format(time.RFC3339), d.Round(time.Second), limit)
		}
	}
	return nil
}

// started and ended mark the loop's progress for Running.
func (c *Controller) started(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.passStart, c.due = at, time.Time{}
}

func (c *Controller) ended(at time.Time, next time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.passStart, c.lastEnd, c.due = time.Time{}, at, at.Add(max(next, c.MinInterval))
}

func (c *Controller) init() {
	c.once.Do(func() { c.trigger, c.observe = make(chan struct{}, 1), make(chan struct{}, 1) })
}

// Trigger asks for a full pass soon. It never blocks: requests made while one is pending are merged into it.
func (c *Controller) Trigger(why string) { c.request(KubeEvent{Why: why}) }

// TriggerKube asks for a pass soon because a watched object changed: unless something else asks for a full
// pass meanwhile, the pass observes only the clusters named this way.
func (c *Controller) TriggerKube(ev KubeEvent) { c.request(ev) }

func (c *Controller) request(ev KubeEvent) {
	c.init()
	c.mu.Lock()
	c.waiting.add(ev)
	c.mu.Unlock()
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// pendingObservesAWS reports whether what is asked for so far, merged with r, makes a pass that observes
// AWS (a full one).
func (c *Controller) pendingObservesAWS(r Reason) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return r.Full || c.waiting.full
}

func (c *Controller) hasPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiting.whys) > 0
}

// take returns what was asked for since the last take, merged with r, and clears it.
func (c *Controller) take(r Reason) Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.waiting.reason(r)
	c.waiting = pending{}
	return out
}

// Run runs passes until ctx is done: one at once, then on every trigger and every interval (with Observe:
// after every background observation of AWS, which runs on the interval).
func (c *Controller) Run(ctx context.Context) {
	c.init()
	if c.MinInterval <= 0 {
		c.MinInterval = time.Second
	}
	if c.KubeMinInterval <= 0 {
		c.KubeMinInterval = 50 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.Observe != nil {
		go c.observeLoop(ctx)
	}
	why := Reason{Why: "start", Full: true}
	var last time.Time
	backoff := time.Duration(0)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		if !c.waitFloor(ctx, last, why) {
			return
		}
		// A trigger that arrived meanwhile is covered by the pass about to start.
		select {
		case <-c.trigger:
		default:
		}
		why = c.take(why)
		last = time.Now()
		if why.Full {
			c.markAWS(last)
		}
		c.started(last)
		err := c.Pass(ctx, why)
		if ctx.Err() != nil {
			c.ended(time.Now(), 0)
			return
		}
		next := c.nextInterval()
		switch {
		case err != nil && errors.Is(err, ErrTransient):
			backoff = min(max(2*backoff, c.MinInterval), c.MaxBackoff)
			next = min(next, backoff)
		default:
			backoff = 0
		}
		c.ended(time.Now(), next)
		// With Observe, the interval is the background observation's (observeLoop), which asks for a pass.
		timed := c.Observe == nil || backoff > 0
		if timed {
			timer.Reset(next)
		}
		why = Reason{}
		for why.Why == "" {
			select {
			case <-ctx.Done():
				return
			case <-c.trigger:
				// Empty when the pass that just ran took the request already.
				if c.hasPending() {
					why = Reason{Why: "trigger"}
					if timed && !timer.Stop() {
						<-timer.C
					}
				}
			case <-timer.C:
				why = Reason{Why: "interval", Full: true}
				if backoff > 0 {
					why.Why = "retry"
				}
			}
		}
	}
}

// waitFloor waits until the pass asked for may start: KubeMinInterval after the last pass started, and for
// a pass that observes AWS also MinInterval after the last AWS observation started. What is asked for is
// looked at again after each wait, since a full pass may be asked for meanwhile. False when ctx is done.
func (c *Controller) waitFloor(ctx context.Context, last time.Time, why Reason) bool {
	if last.IsZero() {
		return true
	}
	for {
		wait := c.KubeMinInterval - time.Since(last)
		if c.pendingObservesAWS(why) {
			wait = max(wait, c.MinInterval-time.Since(c.lastAWSObservation()))
		}
		if wait <= 0 {
			return true
		}
		if !sleep(ctx, wait) {
			return false
		}
	}
}

func (c *Controller) nextInterval() time.Duration {
	d := c.Interval
	if d <= 0 {
		d = 30 * time.Second
	}
	if c.Jitter > 0 {
		d += time.Duration((rand.Float64()*2 - 1) * c.Jitter * float64(d))
	}
	return d
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

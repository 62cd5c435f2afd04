// Package daemon runs meshd's reconcile loop: observe -> plan -> apply, again and again, so that the mesh
// stays as the spec says. A pass runs on a timer (with jitter), when something asks for one (the spec changed
// on disk, a watched Kubernetes object changed, SIGHUP, POST /trigger), but never sooner than a minimum
// interval after the previous one, which keeps a flapping trigger from exhausting the AWS API rate limits.
package daemon

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// PassFunc runs one reconcile pass; why says what triggered it.
type PassFunc func(ctx context.Context, why string) error

// ErrTransient marks pass errors worth retrying soon (throttling, timeouts) rather than at the next interval.
var ErrTransient = errors.New("transient")

// Controller decides when passes run.
type Controller struct {
	Pass PassFunc
	// Interval is the period of the full pass (AWS is not watched, so this is how soon AWS drift is seen).
	Interval time.Duration
	// Jitter spreads the period by up to this fraction (0.1 = ±10%) so replicas and meshes do not align.
	Jitter float64
	// MinInterval is the least time between the starts of two passes.
	MinInterval time.Duration
	// MaxBackoff bounds the retry delay after transient errors (doubling from MinInterval).
	MaxBackoff time.Duration

	once    sync.Once
	trigger chan string
}

func (c *Controller) init() {
	c.once.Do(func() { c.trigger = make(chan string, 1) })
}

// Trigger asks for a pass soon. It never blocks: requests made while one is pending are merged into it.
func (c *Controller) Trigger(why string) {
	c.init()
	select {
	case c.trigger <- why:
	default:
	}
}

// Run runs passes until ctx is done: one at once, then on every trigger and every interval.
func (c *Controller) Run(ctx context.Context) {
	c.init()
	if c.MinInterval <= 0 {
		c.MinInterval = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	why := "start"
	var last time.Time
	backoff := time.Duration(0)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		if wait := c.MinInterval - time.Since(last); !last.IsZero() && wait > 0 {
			if !sleep(ctx, wait) {
				return
			}
		}
		// A trigger that arrived meanwhile is covered by the pass about to start.
		select {
		case <-c.trigger:
		default:
		}
		last = time.Now()
		err := c.Pass(ctx, why)
		if ctx.Err() != nil {
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
		timer.Reset(next)
		select {
		case <-ctx.Done():
			return
		case why = <-c.trigger:
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
			why = "interval"
			if backoff > 0 {
				why = "retry"
			}
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

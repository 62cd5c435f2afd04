package daemon

import (
	"sync"
	"time"

	"github.com/meshd-io/meshd/internal/plan"
)

// RenewalTimer runs a pass when the earliest control-plane token a plan keeps is due for renewal
// (plan.Plan.NextRenewal), so that tokens are renewed on time whatever the interval is.
type RenewalTimer struct {
	// Trigger asks for a pass (Controller.Trigger).
	Trigger func(why string)

	mu    sync.Mutex
	timer *time.Timer
	at    time.Time
}

// Schedule sets the timer from a plan: to its NextRenewal (a little after, so that the pass finds the
// token due), or off when it has none.
func (t *RenewalTimer) Schedule(p *plan.Plan) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var at time.Time
	if p != nil && p.NextRenewal != nil {
		at = p.NextRenewal.Add(time.Second)
	}
	if at.Equal(t.at) {
		return
	}
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.at = at
	if at.IsZero() {
		return
	}
	t.timer = time.AfterFunc(max(time.Until(at), 0), func() { t.Trigger("token renewal") })
}

// Stop stops the timer.
func (t *RenewalTimer) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer != nil {
		t.timer.Stop()
	}
}

package daemon

import (
	"testing"
	"time"

	"github.com/meshd-io/meshd/internal/plan"
)

// TestRenewalTimer: a plan's NextRenewal triggers a pass once it has come (and not before: a plan that
// moves it later replaces the earlier time).
func TestRenewalTimer(t *testing.T) {
	fired := make(chan string, 4)
	r := &RenewalTimer{Trigger: func(why string) { fired <- why }}
	defer r.Stop()
	soon := time.Now().Add(-time.Second) // due already: fires at once
	later := time.Now().Add(time.Hour)
	r.Schedule(&plan.Plan{NextRenewal: &later})
	r.Schedule(&plan.Plan{NextRenewal: &soon})
	select {
	case why := <-fired:
		if why != "token renewal" {
			t.Errorf("trigger %q, want token renewal", why)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a due renewal did not trigger a pass")
	}
	r.Schedule(&plan.Plan{NextRenewal: &later})
	r.mu.Lock()
	at := r.at
	r.mu.Unlock()
	if !at.Equal(later.Add(time.Second)) {
		t.Errorf("the timer is set for %s, want a second after %s", at, later)
	}
	r.Schedule(&plan.Plan{})
	if r.timer != nil {
		t.Errorf("a plan without renewals left the timer running")
	}
}

package daemon

import (
	"sync"
	"time"
)

// Repeated drift: an object that meshd keeps correcting is usually being written back by someone else (a
// GitOps tool, an add-on manager, a teammate's script). meshd goes on correcting it: it is enforcing the
// spec, and backing off would slow down the repairs it exists for. It says so, though, once per window per
// object, so that the fight is seen and settled where it starts.
const (
	repeatWindow = 10 * time.Minute
	repeatLimit  = 3
)

// repeats counts corrections per address over the last repeatWindow.
type repeats struct {
	mu       sync.Mutex
	times    map[string][]time.Time
	reported map[string]time.Time
}

// corrected records a correction of address at now and reports how many corrections fall in the window,
// and whether this is the one to report (the repeatLimit-th, at most once per window).
func (r *repeats) corrected(address string, now time.Time) (n int, report bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.times == nil {
		r.times, r.reported = map[string][]time.Time{}, map[string]time.Time{}
	}
	recent := r.times[address][:0]
	for _, t := range r.times[address] {
		if now.Sub(t) < repeatWindow {
			recent = append(recent, t)
		}
	}
	recent = append(recent, now)
	r.times[address] = recent
	// Forget addresses that went quiet, so the map does not grow with every object ever corrected.
	for a, ts := range r.times {
		if now.Sub(ts[len(ts)-1]) >= repeatWindow {
			delete(r.times, a)
			delete(r.reported, a)
		}
	}
	if len(recent) >= repeatLimit {
		if last, ok := r.reported[address]; !ok || now.Sub(last) >= repeatWindow {
			r.reported[address] = now
			return len(recent), true
		}
	}
	return len(recent), false
}

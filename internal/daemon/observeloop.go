package daemon

import (
	"context"
	"time"
)

// ObserveSoon asks for a background observation of AWS (Controller.Observe) as soon as MinInterval allows:
// meshd changed AWS, and the observation its passes plan from no longer holds. It never blocks.
func (c *Controller) ObserveSoon() {
	c.init()
	select {
	case c.observe <- struct{}{}:
	default:
	}
}

func (c *Controller) markAWS(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastAWS = at
}

func (c *Controller) lastAWSObservation() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastAWS
}

// observeLoop observes AWS in the background on the interval (with jitter) and when ObserveSoon asks, at
// least MinInterval after the last AWS observation (a full pass's or its own), and asks for the pass that
// plans from it, or a full one when AWS could not be observed (it observes AWS itself, with the pass's
// handling of an AWS that does not answer).
func (c *Controller) observeLoop(ctx context.Context) {
	timer := time.NewTimer(c.nextInterval())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-c.observe:
			timer.Stop()
		}
		for {
			wait := c.MinInterval - time.Since(c.lastAWSObservation())
			if wait <= 0 {
				break
			}
			if !sleep(ctx, wait) {
				return
			}
		}
		c.markAWS(time.Now())
		err := c.Observe(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.request(KubeEvent{Why: "interval"}) // a full pass
		} else {
			c.requestPlan("interval")
		}
		timer.Reset(c.nextInterval())
	}
}

// requestPlan asks for a pass that plans from the observation just made in the background, reading nothing
// afresh but what watch events ask for meanwhile.
func (c *Controller) requestPlan(why string) {
	c.init()
	c.mu.Lock()
	c.waiting.addWhy(why)
	c.mu.Unlock()
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// Package poll waits for something outside meshd to happen (a peering to become active, a load balancer to
// come up, a Service to get its hostname or to go): it asks again at an interval, says every so often that
// it is still waiting, and gives up after a timeout.
package poll

import (
	"context"
	"fmt"
	"time"
)

// Options time one wait.
type Options struct {
	Interval      time.Duration // between checks
	Timeout       time.Duration // for the whole wait
	ProgressEvery time.Duration // between reports that the wait goes on
}

// Ended is the error of a wait that ended before check reported done: Timeout passed
// (context.DeadlineExceeded) or ctx was cancelled.
type Ended struct {
	Waited time.Duration // rounded to the second
	Err    error         // the context's error
}

func (e *Ended) Error() string { return fmt.Sprintf("gave up after %s: %v", e.Waited, e.Err) }

func (e *Ended) Unwrap() error { return e.Err }

// Until calls check, with a context bounded by Timeout, until it reports done or an error, which Until
// returns as it is. Between checks it waits Interval; at most every ProgressEvery it calls progress with the
// time waited so far, rounded to the second. A wait that ends first returns an *Ended.
func Until(ctx context.Context, o Options, check func(context.Context) (done bool, err error), progress func(waited time.Duration)) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()
	lastReport := start
	waited := func() time.Duration { return time.Since(start).Round(time.Second) }
	for {
		done, err := check(ctx)
		if err != nil || done {
			return err
		}
		if time.Since(lastReport) >= o.ProgressEvery {
			lastReport = time.Now()
			progress(waited())
		}
		select {
		case <-ctx.Done():
			return &Ended{Waited: waited(), Err: ctx.Err()}
		case <-time.After(o.Interval):
		}
	}
}

package daemon

import "github.com/meshd-io/meshd/internal/plan"

// UpsertOnly is the upsert-only policy, applied to the plan once, before anything reads it: it takes the
// deletions out, so that they are neither reported as drift nor applied, and returns how many it withheld
// (for apply.Options.Withheld: the former members they belong to stay in the state). A change that depends
// on a withheld deletion still runs: apply waits only for the dependencies that are in the plan.
func UpsertOnly(p *plan.Plan) (withheld int) {
	kept := p.Changes[:0]
	for _, ch := range p.Changes {
		if ch.Action == plan.Delete {
			withheld++
			continue
		}
		kept = append(kept, ch)
	}
	p.Changes = kept
	return withheld
}

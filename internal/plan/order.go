package plan

import (
	"slices"
	"sort"
	"strings"

	"github.com/meshd-io/meshd/internal/state"
)

// phase orders changes: the kinds others wait on (KindInfo.First: peerings, DNS Services) are created and
// updated first, then the rest; deletes run in reverse dependency order (routes and rules before the
// peerings they use, Corefile blocks before the Services they forward to), the DeletedLast kinds last.
func phase(ch Change) int {
	info := registry[ch.Kind]
	switch {
	case ch.Action != Delete && info.First:
		return 0
	case ch.Action != Delete:
		return 1
	case !info.DeletedLast:
		return 2
	default:
		return 3
	}
}

func (c *computer) finish() *Plan {
	p := c.plan
	sortChanges(p.Changes)
	sortRecords(p.Record)
	sortRecords(p.Forget)
	p.Forget = uniqueRecords(p.Forget)
	sort.Slice(p.Conflicts, func(i, j int) bool { return p.Conflicts[i].Address < p.Conflicts[j].Address })
	return p
}

// sortChanges orders changes by phase, then kind rank, then address. The keys are computed once per change
// rather than in every comparison: a plan for 100 clusters has tens of thousands of changes.
func sortChanges(changes []Change) {
	type key struct {
		phase, rank int
		address     string
	}
	keys := make([]key, len(changes))
	order := make([]int, len(changes))
	for i, ch := range changes {
		keys[i] = key{phase(ch), kindOrder(ch.Kind), ch.Address}
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		a, b := keys[i], keys[j]
		if a.phase != b.phase {
			return a.phase - b.phase
		}
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return strings.Compare(a.address, b.address)
	})
	// changes[i] becomes changes[order[i]]: follow each cycle of the permutation once, holding one change
	// aside, rather than allocating a second slice of changes. A placed position points at itself.
	for i := range order {
		if order[i] == i {
			continue
		}
		held, j := changes[i], i
		for {
			k := order[j]
			order[j] = j
			if k == i {
				changes[j] = held
				break
			}
			changes[j] = changes[k]
			j = k
		}
	}
}

// kindOrder orders the kinds within a phase. A change's kind is always registered: Compute makes only
// registered kinds, and a saved plan with another kind fails to decode.
func kindOrder(k Kind) int { return registry[k].Rank }

func sortRecords(rs []state.RouteRecord) {
	sort.Slice(rs, func(i, j int) bool {
		return strings.Compare(rs[i].RouteTableID+"|"+rs[i].DestinationCIDR, rs[j].RouteTableID+"|"+rs[j].DestinationCIDR) < 0
	})
}

func uniqueRecords(rs []state.RouteRecord) []state.RouteRecord {
	out := rs[:0]
	for i, r := range rs {
		if i > 0 && r.Key() == rs[i-1].Key() {
			continue
		}
		out = append(out, r)
	}
	return out
}

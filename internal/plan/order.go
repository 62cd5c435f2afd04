package plan

import (
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
	sort.SliceStable(p.Changes, func(i, j int) bool {
		a, b := p.Changes[i], p.Changes[j]
		if pa, pb := phase(a), phase(b); pa != pb {
			return pa < pb
		}
		if a.Kind != b.Kind {
			return kindOrder(a.Kind) < kindOrder(b.Kind)
		}
		return a.Address < b.Address
	})
	sortRecords(p.Record)
	sortRecords(p.Forget)
	p.Forget = uniqueRecords(p.Forget)
	sort.Slice(p.Conflicts, func(i, j int) bool { return p.Conflicts[i].Address < p.Conflicts[j].Address })
	return p
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

package daemon

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// ErrMassRemoval is the error of a pass that has no spec it may enforce: the spec on disk would remove all
// or more than half of the members the state records, and no earlier spec was accepted (meshd started with
// it). The pass changes nothing.
var ErrMassRemoval = errors.New("refusing the spec")

// removedMembers lists, sorted, the members the state records that m has no cluster for.
func removedMembers(m *spec.Mesh, st *state.State) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(st.Members)) {
		if m.Cluster(name) == nil {
			out = append(out, name)
		}
	}
	return out
}

// massRemoval reports whether removing removed of the recorded members is too many for a spec change: all of
// them, or more than half. A spec replaced by mistake (a placeholder, another mesh's file, an empty
// ConfigMap) looks like that; a mesh that shrinks on purpose loses one member at a time, or goes through
// meshctl destroy or apply.
func massRemoval(removed, recorded int) bool {
	return recorded > 0 && (removed == recorded || 2*removed > recorded)
}

// admit decides which spec the pass enforces, given the one on disk (m) and the state's members: m, unless it
// would remove too many of them (massRemoval) and AllowMassRemoval is off; then the last spec a pass
// accepted, as long as it would not itself; else none, and the pass fails with ErrMassRemoval. A refused spec
// is checked again at every pass, so it is accepted once the state no longer records the members it
// removes (meshctl apply of it, or meshctl destroy). It is counted (meshd_spec_reloads_total{result=
// "refused"}) and logged once, not at every pass.
func (r *Reconciler) admit(log *zap.Logger, m *spec.Mesh, st *state.State) (*spec.Mesh, error) {
	removed := removedMembers(m, st)
	recorded := len(st.Members)
	if !massRemoval(len(removed), recorded) {
		r.refused = ""
		r.accept(m)
		return m, nil
	}
	hash := m.Hash()
	first := r.refused != hash
	r.refused = hash
	if r.AllowMassRemoval {
		if first {
			log.Warn("the spec removes most members of the mesh; allowed by --allow-mass-removal",
				zap.Strings("members", removed), zap.Int("recorded", recorded))
		}
		r.accept(m)
		return m, nil
	}
	what := fmt.Sprintf("it would remove %s of the %d members the state records (%s)",
		strings.Join(removed, ", "), recorded, removalShare(len(removed), recorded))
	if first {
		r.Metrics.Add(MetricSpecReloads, Labels{"result": "refused"}, 1)
	}
	if prev := r.enforced.Load(); prev != nil && !massRemoval(len(removedMembers(prev, st)), recorded) {
		if first {
			log.Warn("refusing the spec on disk: "+what+"; enforcing the last good spec. To remove a mesh use meshctl destroy; "+
				"to remove these members, remove them a few at a time, apply the spec with meshctl, or run meshd with --allow-mass-removal",
				zap.Strings("members", removed), zap.Int("recorded", recorded))
		}
		return prev, nil
	}
	r.Metrics.Add(MetricErrors, Labels{"kind": "spec"}, 1)
	return nil, fmt.Errorf("%w: %s, and there is no earlier spec to enforce: nothing is changed. Fix the spec, "+
		"or remove the mesh with meshctl destroy, apply the spec with meshctl, or run meshd with --allow-mass-removal", ErrMassRemoval, what)
}

func removalShare(removed, recorded int) string {
	if removed == recorded {
		return "all of them"
	}
	return "more than half"
}

// accept makes m the spec passes enforce, telling Enforcing when it is another one.
func (r *Reconciler) accept(m *spec.Mesh) {
	prev := r.enforced.Swap(m)
	if r.Enforcing != nil && (prev == nil || prev.Hash() != m.Hash()) {
		r.Enforcing(m)
	}
}

// Enforced is the spec the last pass enforced: the one on disk, or the last good one while the one on disk
// is refused; nil before a pass has accepted one.
func (r *Reconciler) Enforced() *spec.Mesh { return r.enforced.Load() }

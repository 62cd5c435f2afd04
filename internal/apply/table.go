package apply

import (
	"fmt"
	"maps"
	"slices"

	"github.com/meshd-io/meshd/internal/plan"
)

// Table holds a provider's executors of the built-in kinds, by kind. The provider file that implements an
// executor registers it from its init, next to its code, so that a provider's Executors() is a loop over
// the table (and the kinds registered in kindio) rather than a list that a new kind must remember. P is
// the provider the executors are made for.
type Table[P any] struct {
	byKind map[plan.Kind]func(P) Executor
}

// Register makes kinds carried out by the executor newExecutor returns. It panics on a kind registered
// twice, a programming error found by any test that loads the package.
func (t *Table[P]) Register(newExecutor func(P) Executor, kinds ...plan.Kind) {
	if t.byKind == nil {
		t.byKind = map[plan.Kind]func(P) Executor{}
	}
	for _, k := range kinds {
		if _, dup := t.byKind[k]; dup {
			panic(fmt.Sprintf("apply: executor of kind %q registered twice", k))
		}
		t.byKind[k] = newExecutor
	}
}

// Kinds lists the kinds registered, sorted.
func (t *Table[P]) Kinds() []plan.Kind {
	return slices.Sorted(maps.Keys(t.byKind))
}

// Make returns every registered kind's executor for p.
func (t *Table[P]) Make(p P) map[plan.Kind]Executor {
	out := make(map[plan.Kind]Executor, len(t.byKind))
	for k, newExecutor := range t.byKind {
		out[k] = newExecutor(p)
	}
	return out
}

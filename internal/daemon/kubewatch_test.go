package daemon

import (
	"testing"

	"github.com/meshd-io/meshd/internal/plan"
)

// TestEveryWatchHasAnInformerType: a kind that asks to be watched gets an informer, or meshd would fail at
// start-up.
func TestEveryWatchHasAnInformerType(t *testing.T) {
	for _, k := range plan.Kinds() {
		if w := k.Watch; w != nil {
			if _, ok := watchedTypes[w.APIVersion+"/"+w.Resource]; !ok {
				t.Errorf("%s watches %s %s, which has no informer type in watchedTypes", k.Kind, w.APIVersion, w.Resource)
			}
		}
	}
}

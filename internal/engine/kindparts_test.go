package engine

import (
	"testing"

	"github.com/meshd-io/meshd/internal/kindio"
	"github.com/meshd-io/meshd/internal/plan"
)

// TestEveryKindIsObserved: each registered kind is read by exactly one observer of the plan, a built-in
// one or the one its kindio registration makes; a kind nobody observes would plan against nothing.
func TestEveryKindIsObserved(t *testing.T) {
	by := map[plan.Kind][]string{}
	for _, ob := range observers() {
		for _, k := range ob.kinds {
			by[k] = append(by[k], ob.name)
		}
	}
	for _, k := range plan.Kinds() {
		_, kubeIO := kindio.KubeOf(k.Kind)
		_, awsIO := kindio.AWSOf(k.Kind)
		switch n := len(by[k.Kind]); {
		case n == 0 && !kubeIO && !awsIO:
			t.Errorf("kind %s: no observer reads it (add it to an observer's kinds, or register its I/O in kindio)", k.Kind)
		case n > 1:
			t.Errorf("kind %s: read by several observers: %v", k.Kind, by[k.Kind])
		}
		delete(by, k.Kind)
	}
	for k, obs := range by {
		t.Errorf("observers %v read kind %s, which is not registered", obs, k)
	}
}

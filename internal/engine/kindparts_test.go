package engine

import (
	"testing"

	"github.com/google/go-cmp/cmp"

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

// TestBuiltinObserverOrder: the built-in observers run their resolves and report their diagnostics in this
// order, whatever order their files register them in. Users see it (the plan goldens); a change to it is
// deliberate.
func TestBuiltinObserverOrder(t *testing.T) {
	var got []string
	for _, ob := range builtinObservers {
		got = append(got, ob.name)
	}
	want := []string{"aws", "dns", "replicas", "addons", "control planes", "load balancers", "dns load balancers"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("observer order (-want, +got):\n%s", diff)
	}
}

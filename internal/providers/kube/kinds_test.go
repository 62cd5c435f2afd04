package kube

import (
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/plan"
)

// TestExecutorsCoverRegisteredKinds: every kind registered for the Kubernetes provider has an executor here, and
// nothing else does.
func TestExecutorsCoverRegisteredKinds(t *testing.T) {
	got := slices.Sorted(maps.Keys((&Provider{}).Executors()))
	want := slices.Sorted(slices.Values(plan.KindsOf(plan.ProviderKube)))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("executor kinds (-registered, +executors):\n%s", diff)
	}
}

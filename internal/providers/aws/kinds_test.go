package aws

import (
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/kindio"
	"github.com/meshd-io/meshd/internal/plan"
)

// TestExecutorsCoverRegisteredKinds: every kind registered for the AWS provider has exactly one executor
// here, from the provider's table (registered by the file that implements it) or from kindio, and nothing
// else does. A kind in both would lose one of them silently: Executors() keeps the kindio one.
func TestExecutorsCoverRegisteredKinds(t *testing.T) {
	for _, k := range executors.Kinds() {
		_, inKube := kindio.KubeOf(k)
		_, inAWS := kindio.AWSOf(k)
		if inKube || inAWS {
			t.Errorf("kind %s: an executor in the table and its I/O registered in kindio", k)
		}
	}
	got := slices.Sorted(maps.Keys((&Provider{}).Executors()))
	want := slices.Sorted(slices.Values(plan.KindsOf(plan.ProviderAWS)))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("executor kinds (-registered, +executors):\n%s", diff)
	}
}

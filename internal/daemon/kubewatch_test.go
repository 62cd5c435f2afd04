package daemon

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
)

// TestEveryWatchCanBeStarted: what the kinds ask to watch, for a spec using every kind, names an API
// version and resource the dynamic informer can list, in the right clusters.
func TestEveryWatchCanBeStarted(t *testing.T) {
	m := &spec.Mesh{Name: "m", Clusters: []*spec.Cluster{{Name: "a"}, {Name: "b"}}}
	for kind, namespaced := range spec.ReplicableKinds {
		r := &spec.Replicate{Name: "r-" + kind, FromCluster: "a", FromKind: kind, FromName: "x"}
		if namespaced {
			r.FromNamespace = "ns"
		}
		m.Replicates = append(m.Replicates, r)
	}
	m.ControlPlanes = []*spec.ControlPlane{{Name: "kb", Cluster: "a", SecretNamespace: "kb-system", SecretName: "data-planes"}}
	counts := map[string]int{}
	for _, cluster := range []string{"a", "b"} {
		for _, w := range plan.WatchesOf(m, cluster) {
			counts[cluster]++
			if w.Cluster != cluster {
				t.Errorf("WatchesOf(%q) gave a watch in %q", cluster, w.Cluster)
			}
			if _, err := schema.ParseGroupVersion(w.APIVersion); err != nil || w.Resource == "" {
				t.Errorf("watch %+v: apiVersion %v, resource %q", w, err, w.Resource)
			}
		}
	}
	// Each cluster: its DNS Service and Corefile, and one watch per replicated object (source in a, copy in
	// b); the control plane's Secret in a, its ServiceAccount in the data plane b.
	want := 2 + len(spec.ReplicableKinds) + 1
	if counts["a"] != want || counts["b"] != want {
		t.Errorf("watches per cluster %v, want %d each", counts, want)
	}
	m.DNSDisabled = true
	if got := len(plan.WatchesOf(m, "b")); got != len(spec.ReplicableKinds)+1 {
		t.Errorf("with DNS off, %d watches in b, want only the %d copies and the ServiceAccount", got, len(spec.ReplicableKinds))
	}
}

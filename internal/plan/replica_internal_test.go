package plan

import (
	"testing"

	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/state"
)

func TestObservedReplicaDropsLastApplied(t *testing.T) {
	obs := kubeobj.Object{APIVersion: "v1", Kind: "Secret", Namespace: "pingcap", Name: "cluster1-ca-secret", UID: "u1",
		Annotations: map[string]string{
			"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"tls.key":"c2VjcmV0"}}`,
			"team.example.com/owner":                           "dba",
		},
		Content: map[string]any{"type": "kubernetes.io/tls", "data": map[string]any{"tls.key": "c2VjcmV0"}}}
	r := observedReplica(ReplicaAddress("tidb-ca", "tidb-2"), state.ReplicaRecord{Cluster: "tidb-2"}, obs)
	if _, ok := r.Annotations["kubectl.kubernetes.io/last-applied-configuration"]; ok {
		t.Errorf("the plan's copy carries kubectl's last-applied configuration (a Secret's data): %v", r.Annotations)
	}
	if r.Annotations["team.example.com/owner"] != "dba" {
		t.Errorf("annotations %v: other annotations must stay", r.Annotations)
	}
	if _, ok := obs.Annotations["kubectl.kubernetes.io/last-applied-configuration"]; !ok {
		t.Error("the observed object was modified")
	}
}

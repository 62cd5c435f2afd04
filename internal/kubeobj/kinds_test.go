package kubeobj

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestLookup(t *testing.T) {
	cases := map[string]struct {
		reason     string
		kind       string
		gvr        schema.GroupVersionResource
		namespaced bool
		content    []string
		err        error
	}{
		"Secret": {reason: "core/v1, content type, data, immutable", kind: "Secret",
			gvr: schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, namespaced: true,
			content: []string{"type", "data", "immutable"}},
		"ClusterRole": {reason: "rbac, cluster-scoped", kind: "ClusterRole",
			gvr:     schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
			content: []string{"rules", "aggregationRule"}},
		"ServiceAccount": {reason: "nothing beyond metadata", kind: "ServiceAccount",
			gvr: schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, namespaced: true},
		"TargetGroupBinding": {reason: "the load balancer controller's custom resource", kind: "TargetGroupBinding",
			gvr:        schema.GroupVersionResource{Group: "elbv2.k8s.aws", Version: "v1beta1", Resource: "targetgroupbindings"},
			namespaced: true, content: []string{"spec"}},
		"Deployment": {reason: "not a kind meshd manages", kind: "Deployment", err: ErrUnsupportedKind},
		"lowercase":  {reason: "kind names are exact", kind: "secret", err: ErrUnsupportedKind},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			k, err := Lookup(tc.kind)
			if !errors.Is(err, tc.err) {
				t.Fatalf("%s: Lookup(%q): err %v, want %v", tc.reason, tc.kind, err, tc.err)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "TargetGroupBinding") {
					t.Errorf("%s: the error %q does not list the supported kinds", tc.reason, err)
				}
				return
			}
			if diff := cmp.Diff(tc.gvr, k.GVR); diff != "" {
				t.Errorf("%s: GVR -want, +got:\n%s", tc.reason, diff)
			}
			if k.Namespaced != tc.namespaced {
				t.Errorf("%s: namespaced %v, want %v", tc.reason, k.Namespaced, tc.namespaced)
			}
			if diff := cmp.Diff(tc.content, k.Content); diff != "" {
				t.Errorf("%s: content fields -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

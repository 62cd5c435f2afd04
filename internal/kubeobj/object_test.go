package kubeobj

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestUnstructuredRoundTrip(t *testing.T) {
	cases := map[string]struct {
		reason string
		in     Object
		want   Object // after ToUnstructured and FromUnstructured: content normalised, empties dropped
	}{
		"ConfigMap": {
			reason: "map[string]string content becomes JSON values; labels and annotations kept",
			in: Object{APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "cm",
				Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"c": "d"},
				Content: map[string]any{"data": map[string]string{"k": "v"}, "binaryData": map[string]any{}}},
			want: Object{APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "cm",
				Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"c": "d"},
				Content: map[string]any{"data": map[string]any{"k": "v"}}},
		},
		"ClusterRole": {
			reason: "cluster-scoped, nested lists",
			in: Object{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: "r",
				Content: map[string]any{"rules": []map[string]any{{"verbs": []string{"get"}, "resources": []string{"pods"}}}}},
			want: Object{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: "r",
				Content: map[string]any{"rules": []any{map[string]any{"verbs": []any{"get"}, "resources": []any{"pods"}}}}},
		},
		"TargetGroupBinding": {
			reason: "integers stay int64 as the unstructured decoder has them",
			in: Object{APIVersion: "elbv2.k8s.aws/v1beta1", Kind: "TargetGroupBinding", Namespace: "ns", Name: "tgb",
				Content: map[string]any{"spec": map[string]any{"serviceRef": map[string]any{"name": "s", "port": 53}}}},
			want: Object{APIVersion: "elbv2.k8s.aws/v1beta1", Kind: "TargetGroupBinding", Namespace: "ns", Name: "tgb",
				Content: map[string]any{"spec": map[string]any{"serviceRef": map[string]any{"name": "s", "port": int64(53)}}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			u, err := tc.in.ToUnstructured()
			if err != nil {
				t.Fatal(err)
			}
			got, err := FromUnstructured(u)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestFromUnstructuredObservedFields(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"namespace": "ns", "name": "s", "uid": "u-1", "resourceVersion": "7"},
		"type":     "Opaque",
		"data":     map[string]any{"k": "dg=="},
	}}
	now := metav1.Now()
	u.SetDeletionTimestamp(&now)
	u.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "meshd"}, {Manager: "kubectl"}, {Manager: "meshd"}})
	got, err := FromUnstructured(u)
	if err != nil {
		t.Fatal(err)
	}
	want := Object{APIVersion: "v1", Kind: "Secret", Namespace: "ns", Name: "s",
		Content: map[string]any{"type": "Opaque", "data": map[string]any{"k": "dg=="}},
		UID:     "u-1", ResourceVersion: "7", Managers: []string{"kubectl", "meshd"}, Deleting: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("-want, +got:\n%s", diff)
	}
}

func TestToUnstructuredRefuses(t *testing.T) {
	cases := map[string]struct {
		reason string
		in     Object
	}{
		"unknown kind":       {reason: "not in the table", in: Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "ns", Name: "d"}},
		"wrong version":      {reason: "meshd manages v1beta1 only", in: Object{APIVersion: "elbv2.k8s.aws/v1alpha1", Kind: "TargetGroupBinding", Namespace: "ns", Name: "t"}},
		"missing namespace":  {reason: "a Secret is namespaced", in: Object{APIVersion: "v1", Kind: "Secret", Name: "s"}},
		"cluster namespaced": {reason: "a ClusterRole is not", in: Object{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Namespace: "ns", Name: "r"}},
		"not content":        {reason: "status is the server's", in: Object{APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "c", Content: map[string]any{"status": map[string]any{}}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := tc.in.ToUnstructured(); err == nil {
				t.Errorf("%s: ToUnstructured accepted %+v", tc.reason, tc.in)
			}
		})
	}
}

package testenv

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRD creates the CustomResourceDefinition in manifest (YAML, apiextensions.k8s.io/v1) unless it is
// there already, and waits (bounded by ctx) until it is Established and its resources answer a list: the
// API server serves a new resource a moment after it reports the CRD Established.
func InstallCRD(ctx context.Context, cfg *rest.Config, manifest []byte) error {
	var obj map[string]any
	if err := yaml.Unmarshal(manifest, &obj); err != nil {
		return fmt.Errorf("testenv: CRD manifest: %w", err)
	}
	crd := &unstructured.Unstructured{Object: obj}
	group, _, _ := unstructured.NestedString(obj, "spec", "group")
	plural, _, _ := unstructured.NestedString(obj, "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(obj, "spec", "versions")
	if crd.GetKind() != "CustomResourceDefinition" || group == "" || plural == "" || len(versions) == 0 {
		return fmt.Errorf("testenv: %s is not a CustomResourceDefinition with a group, a plural and versions", crd.GetName())
	}
	version, _, _ := unstructured.NestedString(versions[0].(map[string]any), "name")
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	crds := dyn.Resource(crdResource)
	if _, err := crds.Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("testenv: creating CRD %s: %w", crd.GetName(), err)
	}
	served := dyn.Resource(schema.GroupVersionResource{Group: group, Version: version, Resource: plural})
	for {
		got, err := crds.Get(ctx, crd.GetName(), metav1.GetOptions{})
		if err == nil && established(got) {
			if _, err = served.List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: CRD %s not established and served: %w (last: %v)", crd.GetName(), ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func established(crd *unstructured.Unstructured) bool {
	conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conditions {
		c, _ := c.(map[string]any)
		if c["type"] == "Established" && c["status"] == "True" {
			return true
		}
	}
	return false
}

package main

import (
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// TestDeployShipsNoSpec: deploy/meshd.yaml carries no ConfigMap, so applying it again (a new image) cannot
// replace the user's spec, and its Pods wait for the user's ConfigMap rather than start without it.
func TestDeployShipsNoSpec(t *testing.T) {
	data, err := os.ReadFile("../../deploy/meshd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var dep appsv1.Deployment
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("deploy/meshd.yaml: %v", err)
		}
		switch head.Kind {
		case "ConfigMap":
			t.Errorf("deploy/meshd.yaml carries a ConfigMap: applying it again would replace the user's")
		case "Deployment":
			if err := yaml.UnmarshalStrict([]byte(doc), &dep); err != nil {
				t.Fatal(err)
			}
		}
	}
	found := false
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if cm := v.ConfigMap; cm != nil && cm.Name == "meshd-spec" {
			found = true
			if cm.Optional != nil && *cm.Optional {
				t.Errorf("the spec volume is optional: meshd would start with no spec and exit")
			}
		}
	}
	if !found {
		t.Errorf("no volume of the ConfigMap meshd-spec in the Deployment")
	}
}

package main

import (
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestDeployShipsNoSpec: deploy/meshd.yaml carries no spec ConfigMap (its only ConfigMap is the Grafana
// dashboard, which is neither the ConfigMap the Deployment mounts as its spec nor holds any *.hcl key), so
// applying it again (a new image) cannot replace the user's spec, and its Pods wait for the user's ConfigMap
// rather than start without it.
func TestDeployShipsNoSpec(t *testing.T) {
	data, err := os.ReadFile("../../deploy/meshd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var dep appsv1.Deployment
	var configMaps []corev1.ConfigMap
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("deploy/meshd.yaml: %v", err)
		}
		switch head.Kind {
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := yaml.UnmarshalStrict([]byte(doc), &cm); err != nil {
				t.Fatal(err)
			}
			configMaps = append(configMaps, cm)
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
	for _, cm := range configMaps {
		if cm.Name == "meshd-spec" {
			t.Errorf("deploy/meshd.yaml carries the ConfigMap meshd-spec: applying it again would replace the user's")
		}
		for key := range cm.Data {
			if strings.HasSuffix(key, ".hcl") {
				t.Errorf("deploy/meshd.yaml's ConfigMap %s carries a spec file, %s", cm.Name, key)
			}
		}
		if cm.Labels["grafana_dashboard"] != "1" {
			t.Errorf("deploy/meshd.yaml carries the ConfigMap %s, which is not the Grafana dashboard", cm.Name)
		}
	}
}

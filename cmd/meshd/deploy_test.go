package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// TestDeployManifestArgs keeps deploy/meshd.yaml true: its Deployment runs two replicas with leader election,
// and every argument it passes is a flag meshd has.
func TestDeployManifestArgs(t *testing.T) {
	data, err := os.ReadFile("../../deploy/meshd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var dep *appsv1.Deployment
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("deploy/meshd.yaml: %v", err)
		}
		if head.Kind == "Deployment" {
			dep = &appsv1.Deployment{}
			if err := yaml.UnmarshalStrict([]byte(doc), dep); err != nil {
				t.Fatalf("Deployment: %v", err)
			}
		}
	}
	if dep == nil {
		t.Fatal("no Deployment in deploy/meshd.yaml")
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
		t.Errorf("replicas: want 2 or more")
	}
	args := dep.Spec.Template.Spec.Containers[0].Args
	var o options
	fs := flag.NewFlagSet("meshd", flag.ContinueOnError)
	var errs bytes.Buffer
	fs.SetOutput(io.MultiWriter(&errs))
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("meshd rejects the Deployment's args %q: %v", args, err)
	}
	if !o.leaderElect || o.stateSecret == "" || o.spec == "" {
		t.Errorf("the Deployment should run with --leader-elect, --state-secret and --spec: %q", args)
	}
	// POST /trigger is unauthenticated: never on a pod address.
	if host, _, err := net.SplitHostPort(o.triggerAddr); o.triggerAddr != "" && (err != nil || !net.ParseIP(host).IsLoopback()) {
		t.Errorf("--trigger-addr %q: want a loopback address or empty", o.triggerAddr)
	}
	// The probes and the scrape annotation go to the metrics listener, which must listen beyond loopback.
	c := dep.Spec.Template.Spec.Containers[0]
	if host, port, err := net.SplitHostPort(o.metricsAddr); err != nil || (host != "" && net.ParseIP(host).IsLoopback()) ||
		len(c.Ports) == 0 || fmt.Sprint(c.Ports[0].ContainerPort) != port {
		t.Errorf("--metrics-addr %q: want all interfaces on the container port %v", o.metricsAddr, c.Ports)
	}
	for name, probe := range map[string]string{"liveness": c.LivenessProbe.HTTPGet.Path, "readiness": c.ReadinessProbe.HTTPGet.Path} {
		if probe != "/healthz" && probe != "/readyz" {
			t.Errorf("%s probe %q: the metrics listener serves /healthz and /readyz", name, probe)
		}
	}
}

package sandbox_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/cli"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
)

// TestMeshctlOnSandbox: meshctl apply on the sandbox makes every cluster's real CoreDNS resolve every other
// cluster's headless-service Pod name (all ordered pairs), and destroy takes it back, leaving
// each Corefile byte-identical to EKS's default.
func TestMeshctlOnSandbox(t *testing.T) {
	s := startSandbox(t)
	s.SetEnv(t)
	dir := t.TempDir()
	spec := filepath.Join(dir, "mesh.hcl")
	var b strings.Builder
	b.WriteString("mesh \"tidb\" {\n  dns {\n    forward_by = \"namespace\"\n  }\n}\n")
	for _, c := range s.Clusters {
		fmt.Fprintf(&b, "cluster %q {\n  region = %q\n  kube_context = %q\n  eks_cluster = %q\n  namespace = %q\n}\n",
			c.Name, c.Region, c.Context, c.Name, c.Namespace)
	}
	if err := os.WriteFile(spec, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run := meshctl(t, s, dir, spec)

	run(0, "apply", "--auto-approve")
	ctx := context.Background()
	resolvesEveryPair(t, s)
	run(0, "plan", "--detailed-exitcode")

	run(0, "destroy", "--auto-approve")
	for _, a := range s.Clusters {
		cm, err := s.Clients[a.Name].CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["Corefile"] != sandbox.DefaultEKSCorefile {
			t.Errorf("%s's Corefile after destroy differs from the original:\n%s", a.Name, cm.Data["Corefile"])
		}
	}
	// Once CoreDNS reloads, another cluster's name no longer resolves.
	stopsResolving(t, s.Clusters[0], s.Clusters[1].SampleName())
}

// meshctl returns a runner of meshctl commands against the sandbox, with spec and a state file in dir; it
// fails the test on another exit code than want and returns stdout and stderr.
func meshctl(t *testing.T, s *sandbox.Sandbox, dir, spec string) func(want int, args ...string) string {
	return func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
		full := append(args, "--spec", spec, "--state", filepath.Join(dir, "state.json"), "--kubeconfig", s.Kubeconfig)
		if code := app.Main(context.Background(), full); code != want {
			t.Fatalf("meshctl %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
}

// resolvesEveryPair checks that every cluster's CoreDNS resolves every cluster's verification Pod by its
// FQDN (its own and, through meshd's blocks, the others').
func resolvesEveryPair(t *testing.T, s *sandbox.Sandbox) {
	t.Helper()
	for _, a := range s.Clusters {
		for _, other := range s.Clusters {
			addrs, err := s.WaitResolve(context.Background(), a.Name, other.SampleName(), 30*time.Second)
			if err != nil || len(addrs) != 1 || addrs[0].String() != other.SampleIP {
				t.Errorf("%s's CoreDNS: %s -> %v, %v; want %s", a.Name, other.SampleName(), addrs, err, other.SampleIP)
			}
		}
	}
}

// stopsResolving waits until cluster c's CoreDNS no longer resolves name (it reloads its Corefile every 2 s).
func stopsResolving(t *testing.T, c sandbox.Cluster, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := testenv.LookupA(c.DNSAddr()+":53", name, true); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still resolves %s after destroy", c.Name, name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// corefilesOf reads every cluster's Corefile from its kube-system/coredns ConfigMap, by cluster name.
func corefilesOf(t *testing.T, s *sandbox.Sandbox) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, c := range s.Clusters {
		cm, err := s.Clients[c.Name].CoreV1().ConfigMaps("kube-system").Get(context.Background(), "coredns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out[c.Name] = cm.Data["Corefile"]
	}
	return out
}

package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/cli"
	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/sandbox"
)

// secretToken stands for a credential in a user's Corefile: it must never appear in a plan.
const secretToken = "AKIAIOSFODNN7SECRETTOKEN"

// TestEKSAddonOnSandbox: the CoreDNS add-on of each cluster is an EKS managed add-on (the stand-in).
//   - With corefile_via = "configmap" (the default) the plan says what an add-on update would do; such an
//     update (OVERWRITE) reverts the ConfigMap and meshctl apply repairs it.
//   - corefile_via = "eks_addon" with an add-on version whose schema has no corefile is a diagnostic at the
//     spec line, and nothing is changed.
//   - With a version that takes a corefile, apply writes meshd's blocks into each add-on's configuration
//     (the user's other keys and Corefile kept); an add-on update then keeps the blocks in the ConfigMap,
//     and a plan has nothing to repair.
//   - Destroy gives each add-on its configuration back byte for byte.
//   - No plan (text, JSON, saved) holds the text of a configured Corefile.
func TestEKSAddonOnSandbox(t *testing.T) {
	s := startSandbox(t)
	s.SetEnv(t)
	ctx := context.Background()
	c1, c2, c3 := s.Clusters[0], s.Clusters[1], s.Clusters[2]
	userCorefile := sandbox.DefaultEKSCorefile + "# route53 credentials: " + secretToken + "\n"
	enc, _ := json.Marshal(userCorefile)
	original2 := `{"replicaCount": 2, "corefile": ` + string(enc) + `}`
	s.Addons.SetAddon(c2.Name, sandbox.AddonVersion, original2)
	s.Addons.SetAddon(c3.Name, sandbox.AddonVersionNoCorefile, "")

	dir := t.TempDir()
	specPath := filepath.Join(dir, "mesh.hcl")
	writeSpec := func(via string) {
		var b strings.Builder
		fmt.Fprintf(&b, "mesh \"tidb\" {\n  dns {\n    corefile_via = %q\n  }\n}\n", via)
		for _, c := range s.Clusters {
			fmt.Fprintf(&b, "cluster %q {\n  region = %q\n  kube_context = %q\n  eks_cluster = %q\n  namespace = %q\n}\n",
				c.Name, c.Region, c.Context, c.Name, c.Namespace)
		}
		if err := os.WriteFile(specPath, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(want int, args ...string) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
		full := append(args, "--spec", specPath, "--state", filepath.Join(dir, "state.json"), "--kubeconfig", s.Kubeconfig)
		if code := app.Main(ctx, full); code != want {
			t.Fatalf("meshctl %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		if strings.Contains(out.String()+errb.String(), secretToken) {
			t.Fatalf("meshctl %s printed the configured Corefile's secret:\n%s\n%s", strings.Join(args, " "), out.String(), errb.String())
		}
		return out.String(), errb.String()
	}
	corefileOf := func(c sandbox.Cluster) string {
		t.Helper()
		cm, err := s.Clients[c.Name].CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm.Data["Corefile"]
	}
	zone := func(c sandbox.Cluster) string { return c.Namespace + ".svc.cluster.local:53" }
	eksc := eks.NewFromConfig(s.EKSConfig(c1.Region))
	addonUpdate := func(c sandbox.Cluster) {
		t.Helper()
		out, err := eksc.UpdateAddon(ctx, &eks.UpdateAddonInput{ClusterName: aws.String(c.Name), AddonName: aws.String("coredns"),
			ResolveConflicts: ekstypes.ResolveConflictsOverwrite})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the add-on update of "+c.Name, func() bool {
			u, err := eksc.DescribeUpdate(ctx, &eks.DescribeUpdateInput{Name: aws.String(c.Name), UpdateId: out.Update.Id, AddonName: aws.String("coredns")})
			return err == nil && u.Update.Status == ekstypes.UpdateStatusSuccessful
		})
	}

	// 1. corefile_via = "configmap": the plan tells what an add-on update would do; the update reverts the
	// ConfigMap and apply repairs it.
	writeSpec("configmap")
	run(0, "apply", "--auto-approve")
	plan, _ := run(0, "plan")
	for _, want := range []string{
		"EKS CoreDNS add-ons:",
		c1.Name + ": coredns " + sandbox.AddonVersion + " (EKS cluster " + c1.Name + ", ACTIVE), configurationValues without a corefile",
		"puts back the add-on's default Corefile, removing meshd's blocks for " + c2.Namespace + ".svc.cluster.local, " + c3.Namespace + ".svc.cluster.local",
		c2.Name + ": coredns " + sandbox.AddonVersion + " (EKS cluster " + c2.Name + ", ACTIVE), configurationValues with a corefile",
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if !strings.Contains(corefileOf(c1), zone(c2)) {
		t.Fatalf("apply wrote no block for %s into %s's ConfigMap", c2.Name, c1.Name)
	}
	addonUpdate(c1)
	if got := corefileOf(c1); got != sandbox.DefaultEKSCorefile {
		t.Fatalf("the add-on update did not put back the default Corefile:\n%s", got)
	}
	plan, _ = run(2, "plan", "--detailed-exitcode")
	if !strings.Contains(plan, "restore blocks removed outside meshd") {
		t.Errorf("the plan after the add-on update does not restore the blocks:\n%s", plan)
	}
	run(0, "apply", "--auto-approve")
	if got := corefileOf(c1); !strings.Contains(got, zone(c2)) || !strings.Contains(got, zone(c3)) {
		t.Fatalf("apply did not repair %s's ConfigMap:\n%s", c1.Name, got)
	}

	// 2. corefile_via = "eks_addon" with an add-on version that takes no corefile: a diagnostic at the
	// spec line, nothing changed.
	writeSpec("eks_addon")
	_, stderr := run(1, "plan")
	if !strings.Contains(stderr, "EKS add-on version takes no corefile") || !strings.Contains(stderr, "mesh.hcl:3,") {
		t.Errorf("plan with %s's old add-on: want a diagnostic at mesh.hcl:3, got\n%s", c3.Name, stderr)
	}
	run(1, "apply", "--auto-approve")
	for _, c := range s.Clusters {
		if _, v := s.Addons.Addon(c.Name); (c.Name == c2.Name && v != original2) || (c.Name != c2.Name && v != "") {
			t.Fatalf("a refused plan changed the add-on configuration of %s", c.Name)
		}
	}

	// 3. With a version that takes a corefile, meshd's blocks go into every add-on configuration.
	s.Addons.SetAddon(c3.Name, sandbox.AddonVersion, "")
	saved := filepath.Join(dir, "addon.plan")
	plan, _ = run(2, "plan", "--detailed-exitcode", "--out", saved)
	if n := strings.Count(plan, "addon_corefile["); n < 3 {
		t.Errorf("plan has %d add-on changes, want 3:\n%s", n, plan)
	}
	jsonPlan, _ := run(2, "plan", "--json", "--detailed-exitcode")
	if !strings.Contains(jsonPlan, `"config_hash"`) {
		t.Errorf("the JSON plan has no add-on configuration hash:\n%s", jsonPlan)
	}
	if b, err := os.ReadFile(saved); err != nil || bytes.Contains(b, []byte(secretToken)) || bytes.Contains(b, []byte("lameduck")) {
		t.Fatalf("the saved plan holds Corefile text (or cannot be read: %v)", err)
	}
	run(0, "apply", "--auto-approve")
	for _, c := range s.Clusters {
		_, values := s.Addons.Addon(c.Name)
		cfg, err := corefile.ParseAddonConfig(values)
		if err != nil {
			t.Fatalf("%s's add-on configuration: %v", c.Name, err)
		}
		text, ok, _ := cfg.Corefile()
		if !ok || !corefile.HasPlugin(text, "ready") {
			t.Errorf("%s's add-on configuration has no corefile with the ready plugin", c.Name)
		}
		for _, other := range s.Clusters {
			if other.Name != c.Name && !strings.Contains(text, zone(other)) {
				t.Errorf("%s's add-on corefile has no block for %s", c.Name, other.Name)
			}
		}
		if c.Name == c2.Name && (!strings.Contains(text, secretToken) || !strings.Contains(values, `"replicaCount": 2`)) {
			t.Errorf("%s's own Corefile or replicaCount did not survive: keys %v", c.Name, cfg.Keys())
		}
	}
	run(0, "plan", "--detailed-exitcode")

	// An add-on update now keeps meshd's blocks in the ConfigMap: nothing to repair.
	for _, c := range []sandbox.Cluster{c1, c2} {
		addonUpdate(c)
		if got := corefileOf(c); !strings.Contains(got, zone(c3)) {
			t.Errorf("the add-on update of %s removed meshd's blocks:\n%s", c.Name, got)
		}
	}
	if !strings.Contains(corefileOf(c2), secretToken) {
		t.Errorf("the add-on update of %s did not write its configured Corefile", c2.Name)
	}
	plan, _ = run(0, "plan", "--detailed-exitcode")
	if !strings.Contains(plan, "keeps meshd's blocks: they are in its configurationValues.corefile") {
		t.Errorf("the plan does not say that add-on updates keep meshd's blocks:\n%s", plan)
	}
	for _, a := range s.Clusters {
		for _, other := range s.Clusters {
			if _, err := s.WaitResolve(ctx, a.Name, other.SampleName(), 30*time.Second); err != nil {
				t.Errorf("%s: %v", a.Name, err)
			}
		}
	}

	// 4. Destroy gives every add-on its configuration back exactly.
	run(0, "destroy", "--auto-approve")
	for _, c := range s.Clusters {
		want := ""
		if c.Name == c2.Name {
			want = original2
		}
		if _, got := s.Addons.Addon(c.Name); got != want {
			t.Errorf("%s's add-on configuration after destroy:\n%q\nwant\n%q", c.Name, got, want)
		}
		if got := corefileOf(c); strings.Contains(got, "meshd.io") {
			t.Errorf("%s's ConfigMap keeps meshd's blocks after destroy:\n%s", c.Name, got)
		}
	}
}

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/planfile"
	"github.com/meshd-io/meshd/internal/planview"
	"github.com/meshd-io/meshd/internal/state"
)

// run runs meshctl with args and returns its exit code, stdout and stderr.
func runMeshctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}
	code := app.Main(context.Background(), args)
	return code, out.String(), errOut.String()
}

const planSecretHash = "sha256:c0ca79aaf283231795f778fd6b42909db94e6bdeb8651a67592c3445fcb6edc1"

// testStateJSON is a state with a member, a route, Corefile zones and a copy of a Secret. The copy's record
// has a "data" field planted, as an edited or corrupted file could: it must never be printed.
const testStateJSON = `{
  "version": 1, "lineage": "3f2a", "serial": 7, "mesh": "tidb",
  "members": {
    "tidb-1": {"name": "tidb-1", "region": "us-west-1", "vpc_id": "vpc-1", "cidrs": ["10.1.0.0/16"],
               "route_table_ids": ["rtb-1a"], "security_group_id": "sg-1", "kube_context": "ctx-1", "namespace": "pingcap-1"},
    "tidb-2": {"name": "tidb-2", "region": "us-west-2", "vpc_id": "vpc-2", "cidrs": ["10.2.0.0/16", "10.20.0.0/16"],
               "route_table_ids": ["rtb-2a", "rtb-2b"], "security_group_id": "sg-2", "kube_context": "ctx-2", "namespace": "pingcap-2"}
  },
  "routes": [
    {"region": "us-west-2", "vpc_id": "vpc-2", "route_table_id": "rtb-2a", "destination_cidr": "10.1.0.0/16", "peering_id": "pcx-12"},
    {"region": "us-west-1", "vpc_id": "vpc-1", "route_table_id": "rtb-1a", "destination_cidr": "10.2.0.0/16", "peering_id": "pcx-12"},
    {"region": "us-east-1", "vpc_id": "vpc-gone", "route_table_id": "rtb-9", "destination_cidr": "10.9.0.0/16", "peering_id": "pcx-19"}
  ],
  "corefiles": {"tidb-1": ["pingcap-2.svc.cluster.local"], "tidb-2": ["pingcap-1.svc.cluster.local"], "tidb-3": []},
  "replicas": {
    "replica[tidb-ca:tidb-2]": {"cluster": "tidb-2", "kube_context": "ctx-2", "kind": "Secret", "namespace": "pingcap",
                                "name": "cluster1-ca-secret", "data": {"tls.key": "LS0tLS1TVVBFUlNFQ1JFVA=="}}
  }
}`

func writeTestState(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meshd.state.json")
	if err := os.WriteFile(path, []byte(testStateJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStateList(t *testing.T) {
	path := writeTestState(t)
	code, out, errOut := runMeshctl(t, "state", "list", "--state", path)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := strings.Join([]string{
		"member[tidb-1]",
		"member[tidb-2]",
		"route[tidb-1:rtb-1a:10.2.0.0/16]",
		"route[tidb-2:rtb-2a:10.1.0.0/16]",
		"route[vpc-gone:rtb-9:10.9.0.0/16]", // no member has the VPC: named by it, as the planner does
		"corefile[tidb-1]",
		"corefile[tidb-2]",
		"replica[tidb-ca:tidb-2]",
	}, "\n") + "\n"
	if out != want {
		t.Errorf("state list:\n%s\nwant:\n%s", out, want)
	}
	// The addresses are the planner's.
	if a := plan.RouteAddress("tidb-1", "rtb-1a", "10.2.0.0/16"); !strings.Contains(out, a+"\n") {
		t.Errorf("state list lacks the planner's address %s", a)
	}
	if strings.Contains(out, "LS0tLS1TVVBFUlNFQ1JFVA") {
		t.Error("state list printed a secret value")
	}
}

func TestStateShow(t *testing.T) {
	path := writeTestState(t)
	for addr, wants := range map[string][]string{
		"route[tidb-2:rtb-2a:10.1.0.0/16]": {`route_table_id   = "rtb-2a"`, `destination_cidr = "10.1.0.0/16"`, `peering_id       = "pcx-12"`, `vpc_id           = "vpc-2"`},
		"corefile[tidb-1]":                 {`zones = ["pingcap-2.svc.cluster.local"]`},
		"member[tidb-2]":                   {`cidrs             = ["10.2.0.0/16", "10.20.0.0/16"]`, `kube_context      = "ctx-2"`},
		"replica[tidb-ca:tidb-2]":          {`kind         = "Secret"`, `namespace    = "pingcap"`, `name         = "cluster1-ca-secret"`},
	} {
		code, out, errOut := runMeshctl(t, "state", "show", "--state", path, addr)
		if code != ExitOK {
			t.Errorf("state show %s: exit %d: %s", addr, code, errOut)
			continue
		}
		if !strings.HasPrefix(out, "# "+addr+":\n") {
			t.Errorf("state show %s: does not open with the address:\n%s", addr, out)
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("state show %s lacks %q:\n%s", addr, w, out)
			}
		}
		for _, secret := range []string{"LS0tLS1TVVBFUlNFQ1JFVA", "tls.key", "data"} {
			if strings.Contains(out, secret) {
				t.Errorf("state show %s printed %q:\n%s", addr, secret, out)
			}
		}
	}
}

func TestStateShowUnknownAddress(t *testing.T) {
	path := writeTestState(t)
	code, out, errOut := runMeshctl(t, "state", "show", "--state", path, "route[tidb-1:rtb-1a:10.99.0.0/16]")
	if code != ExitError || out != "" {
		t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
	}
	if !strings.Contains(errOut, "no address route[tidb-1:rtb-1a:10.99.0.0/16] in the state") || !strings.Contains(errOut, "meshctl state list") {
		t.Errorf("stderr: %q", errOut)
	}
	// A missing state file, a missing address, an unknown subcommand: exit 1 with a message.
	for _, args := range [][]string{
		{"state", "list", "--state", filepath.Join(t.TempDir(), "none.json")},
		{"state", "show", "--state", path},
		{"state", "rm", "--state", path, "member[tidb-1]"},
		{"state"},
	} {
		if code, _, errOut := runMeshctl(t, args...); code != ExitError || errOut == "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// TestStateDefaultPath: without --state, the state commands read meshd.state.json in the working directory.
func TestStateDefaultPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DefaultStatePath), []byte(testStateJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if code, out, errOut := runMeshctl(t, "state", "list"); code != ExitOK || !strings.Contains(out, "corefile[tidb-2]\n") {
		t.Errorf("exit %d, out %q, err %q", code, out, errOut)
	}
}

func testPlan() *plan.Plan {
	return &plan.Plan{FormatVersion: plan.FormatVersion, Mesh: "tidb", SpecHash: "h", Serial: 7, Lineage: "3f2a",
		Changes: []plan.Change{{
			Action: plan.Create, Address: plan.RouteAddress("tidb-2", "rtb-2a", "10.3.0.0/16"), Kind: plan.KindRoute,
			Reason: "route was deleted outside meshd",
			After: plan.Route{Cluster: "tidb-2", Region: "us-west-2", VPCID: "vpc-2", RouteTableID: "rtb-2a",
				DestinationCIDR: "10.3.0.0/16", PeeringID: "pcx-23"},
		}}}
}

func TestShow(t *testing.T) {
	p := testPlan()
	var human, doc bytes.Buffer
	if err := planview.RenderHuman(&human, p); err != nil {
		t.Fatal(err)
	}
	if err := planview.RenderJSON(&doc, p); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "mesh.plan")
	if err := os.WriteFile(file, doc.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runMeshctl(t, "show", file)
	if code != ExitOK || out != human.String() {
		t.Errorf("show: exit %d (%s), output:\n%s\nwant what plan printed:\n%s", code, errOut, out, human.String())
	}
	for _, w := range []string{"+ route[tidb-2:rtb-2a:10.3.0.0/16]", `target      = "pcx-23"`, "Plan: 1 to add, 0 to change, 0 to destroy."} {
		if !strings.Contains(out, w) {
			t.Errorf("show lacks %q", w)
		}
	}

	code, out, errOut = runMeshctl(t, "show", "--json", file)
	if code != ExitOK {
		t.Fatalf("show --json: exit %d: %s", code, errOut)
	}
	if _, err := planfile.Decode(strings.NewReader(out)); err != nil || out != doc.String() {
		t.Errorf("show --json: %v; output:\n%s\nwant the saved document:\n%s", err, out, doc.String())
	}

	// No file, a missing file, a file that is not a plan: exit 1.
	notPlan := filepath.Join(t.TempDir(), "state.json")
	_ = os.WriteFile(notPlan, []byte(`{"version": 1}`), 0o600)
	for _, args := range [][]string{{"show"}, {"show", filepath.Join(t.TempDir(), "none.plan")}, {"show", notPlan}} {
		if code, out, errOut := runMeshctl(t, args...); code != ExitError || out != "" || errOut == "" {
			t.Errorf("%q: exit %d, out %q, err %q", args, code, out, errOut)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, errOut := runMeshctl(t, "version")
	want := "meshctl dev\nplan format version 1\nstate format version 1\n"
	if plan.FormatVersion != 1 || state.FormatVersion != 1 {
		t.Fatalf("format versions changed: update this test")
	}
	if code != ExitOK || out != want {
		t.Errorf("version: exit %d (%s), %q, want %q", code, errOut, out, want)
	}
	old := Version
	Version = "v1.2.3"
	defer func() { Version = old }()
	if _, out, _ := runMeshctl(t, "--version"); !strings.HasPrefix(out, "meshctl v1.2.3\n") {
		t.Errorf("--version with Version set: %q", out)
	}
	if code, out, _ := runMeshctl(t, "help"); code != ExitOK || !strings.Contains(out, "version") || !strings.Contains(out, "state") || !strings.Contains(out, "show") {
		t.Errorf("usage does not list the new commands:\n%s", out)
	}
}

package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshd-io/meshd/internal/cli"
	"github.com/meshd-io/meshd/internal/state/secretstate"
)

// TestStatePush: a mesh applied with a local state file is handed to meshd's state Secret by meshctl state
// push, after which a plan with --state-secret has nothing to do; a second push of the now older file, and
// one of another lineage, are refused and change nothing; --force replaces.
func TestStatePush(t *testing.T) {
	h, mgmt := newManagedHarness(t)
	h.mustRun(0, "apply", "--auto-approve")

	const ns, name = "kube-system", "meshd-state"
	push := func(want int, file string, extra ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
		args := append([]string{"state", "push", "--state", file, "--state-secret", ns + "/" + name, "--kubeconfig", h.kubeconfig}, extra...)
		if code := app.Main(context.Background(), args); code != want {
			t.Fatalf("meshctl %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	remote := func() (string, uint64) {
		st, err := secretstate.NewSecret(mgmt, ns, name, "test").Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return st.Lineage, st.Serial
	}

	push(0, h.state)
	lineage, serial := remote()
	h.stateArgs = []string{"--state-secret", ns + "/" + name}
	h.mustRun(0, "plan", "--detailed-exitcode") // the Secret's state knows everything the file did

	if out := push(1, h.state); !strings.Contains(out, "newer state") {
		t.Errorf("pushing an older state: %s", out)
	}
	data, err := os.ReadFile(h.state)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(h.dir, "other.json")
	if err := os.WriteFile(other, bytes.Replace(data, []byte(lineage), []byte("another-lineage"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := push(1, other); !strings.Contains(out, "another lineage") {
		t.Errorf("pushing another lineage: %s", out)
	}
	if l, s := remote(); l != lineage || s != serial {
		t.Errorf("a refused push changed the Secret: lineage %s serial %d, was %s %d", l, s, lineage, serial)
	}
	push(0, other, "--force")
	if l, _ := remote(); l != "another-lineage" {
		t.Errorf("--force did not replace the state: lineage %s", l)
	}
	if out := push(1, filepath.Join(h.dir, "missing.json")); !strings.Contains(out, "no state file") {
		t.Errorf("pushing a missing file: %s", out)
	}
}

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyCannotVerify: a spec that does not load is exit 1 ("could not verify"), with the diagnostic's
// position, not exit 2 (a pair fails), and nothing is contacted.
func TestVerifyCannotVerify(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "mesh.hcl")
	if err := os.WriteFile(spec, []byte("mesh \"m\" {\n  bogus = 1\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	app := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
	code := app.Main(context.Background(), []string{"verify", "--spec", spec, "--state", filepath.Join(dir, "state.json")})
	if code != ExitError {
		t.Fatalf("verify of a bad spec: exit %d, want %d\n%s%s", code, ExitError, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "mesh.hcl:2,") {
		t.Errorf("no diagnostic at mesh.hcl:2:\n%s", errb.String())
	}
}

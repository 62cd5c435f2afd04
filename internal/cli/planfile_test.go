package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/meshd-io/meshd/internal/plan"
)

// TestSavedPlanReplacesWiderFile: plan --out over an existing 0644 file leaves a 0600 file holding the new
// plan (os.OpenFile's mode applies only to a file it creates, so the plan stayed world-readable), written
// by a rename: no temporary file is left beside it. A failed write leaving the old file whole is
// state.TestWriteFileAtomicOverWiderFile.
func TestSavedPlanReplacesWiderFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mesh.plan")
	if err := writePlan(path, &plan.Plan{FormatVersion: plan.FormatVersion, Mesh: "old", Serial: 1}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writePlan(path, &plan.Plan{FormatVersion: plan.FormatVersion, Mesh: "tidb", Serial: 7}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("saved plan has mode %v, want 0600", fi.Mode().Perm())
	}
	p, err := readPlan(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mesh != "tidb" || p.Serial != 7 {
		t.Errorf("saved plan: mesh %q serial %d, want the new plan (tidb, 7)", p.Mesh, p.Serial)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files in the directory: %v, want the plan alone", entries)
	}
}

package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

func TestPrintDiagnostics(t *testing.T) {
	// Relative names, as a user passes them, keep the expected output free of temporary paths.
	t.Chdir(t.TempDir())
	src := `mesh "tidb" {}

cluster "tidb-1" {
  region       = "us-west"
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}
`
	if err := os.WriteFile("mesh.hcl", []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	m, diags := Load("mesh.hcl")
	// A diagnostic about the path itself, and one pointing into a file the caller did not pass: both are
	// printed without source.
	diags = append(diags,
		&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Spec not found", Detail: "There is no file."},
		&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Elsewhere", Detail: "Somewhere else.",
			Subject: &hcl.Range{Filename: "other.hcl", Start: hcl.Pos{Line: 3, Column: 5, Byte: 20}, End: hcl.Pos{Line: 3, Column: 9, Byte: 24}}},
	)

	var out bytes.Buffer
	if err := PrintDiagnostics(&out, m.Files, diags, false); err != nil {
		t.Fatal(err)
	}
	want := `Warning: mesh.hcl:1,1-12: Too few clusters

  on mesh.hcl line 1, in mesh "tidb":
   1: mesh "tidb" {}

The mesh "tidb" has 1 cluster block(s), so there is nothing to connect. Add a
cluster block for each member cluster; a mesh needs two or more.

Error: mesh.hcl:4,18-27: Invalid region

  on mesh.hcl line 4, in cluster "tidb-1":
   4:   region       = "us-west"

"us-west" is not an AWS region code. Use the code of the region the cluster
runs in, like us-west-1, eu-central-1 or us-gov-west-1.

Error: Spec not found

There is no file.

Error: other.hcl:3,5-9: Elsewhere

  on other.hcl line 3:
  (source code not available)

Somewhere else.

`
	if diff := gocmp.Diff(want, out.String()); diff != "" {
		t.Errorf("PrintDiagnostics (-want +got):\n%s", diff)
	}

	out.Reset()
	if err := PrintDiagnostics(&out, m.Files, diags[:1], true); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "\x1b[33mWarning\x1b[0m: mesh.hcl:1,1-12: Too few clusters") {
		t.Errorf("PrintDiagnostics with color: want a yellow Warning, got:\n%q", got)
	}
}

func TestHash(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) string {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mesh := "mesh \"tidb\" {}\n"
	clusters := "cluster \"a\" {}\n"
	write("spec/a.hcl", mesh)
	write("spec/b.hcl", clusters)
	write("changed/a.hcl", mesh)
	write("changed/b.hcl", clusters+"\n")
	write("renamed/a.hcl", mesh)
	write("renamed/c.hcl", clusters)
	write("moved/a.hcl", mesh)
	write("moved/b.hcl", clusters)
	write("swapped/a.hcl", clusters)
	write("swapped/b.hcl", mesh)

	hash := func(path string) string {
		t.Helper()
		m, _ := Load(path) // the spec is invalid on purpose: the hash covers the files whatever their content
		return m.Hash()
	}
	base := hash(filepath.Join(dir, "spec"))
	if len(base) != 64 {
		t.Fatalf("Hash() = %q, want 64 hex digits", base)
	}
	cases := map[string]struct {
		reason string
		path   string
		same   bool
	}{
		"trailing slash": {"The same spec read through another spelling of its path.", filepath.Join(dir, "spec") + "/", true},
		"other dir":      {"The same files in another directory are the same spec.", filepath.Join(dir, "moved"), true},
		"changed":        {"One byte more in a file is another spec.", filepath.Join(dir, "changed"), false},
		"renamed":        {"A renamed file is another spec (names order the clusters).", filepath.Join(dir, "renamed"), false},
		"swapped":        {"The same contents under swapped names are another spec.", filepath.Join(dir, "swapped"), false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := hash(tc.path) == base; got != tc.same {
				t.Errorf("%s\nHash equal to the original: %v, want %v", tc.reason, got, tc.same)
			}
		})
	}
}

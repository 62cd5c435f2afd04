package architecture

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const module = "github.com/meshd-io/meshd/"

// TestImportTableMatchesGoList: the "package | imports (meshd packages)" table of docs/architecture.md names
// every package of internal/ and cmd/ once, and for each exactly the meshd packages it imports (tests left
// out), as go list reports them.
func TestImportTableMatchesGoList(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"internal/...", module+"cmd/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	want := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		var imports []string
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, module) {
				imports = append(imports, short(imp))
			}
		}
		slices.Sort(imports)
		want[short(fields[0])] = imports
	}
	got := documented(t)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("docs/architecture.md's import table differs from go list (-go list, +docs):\n%s", diff)
	}
}

// short is a package's name in the table: its path under internal/ (or from the module root for cmd/).
func short(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, module), "internal/")
}

var parenthesised = regexp.MustCompile(`\([^)]*\)`)

// documented reads the table: each row names one or more packages (comma-separated) and their imports
// ("none", or comma-separated names; text in parentheses is commentary).
func documented(t *testing.T) map[string][]string {
	f, err := os.Open("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table := map[string][]string{}
	in := false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "| package ") && strings.Contains(line, "imports (meshd packages)") {
			in = true
			continue
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 2 {
			t.Fatalf("import table row %q: want 2 cells", line)
		}
		var imports []string
		if cell := strings.TrimSpace(parenthesised.ReplaceAllString(cells[1], "")); cell != "none" {
			imports = list(cell)
			slices.Sort(imports)
		}
		for _, pkg := range list(cells[0]) {
			if _, dup := table[pkg]; dup {
				t.Errorf("import table: %s has two rows", pkg)
			}
			table[pkg] = imports
		}
	}
	if len(table) == 0 {
		t.Fatal("no import table in docs/architecture.md")
	}
	return table
}

func list(cell string) []string {
	var out []string
	for _, s := range strings.Split(cell, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseInterspersed: meshctl's commands take flags before, between and after positionals, with "=" and
// separate values, booleans that take no value, the single dash of Go's flag package, and "--" ending the
// flags. Parsed as Main parses them, up to the command's flags.
func TestParseInterspersed(t *testing.T) {
	for name, tc := range map[string]struct {
		args       []string
		state      string
		force      bool
		positional []string
	}{
		"flags first":              {[]string{"state", "push", "--state", "s.json", "--force", "ADDR"}, "s.json", true, []string{"ADDR"}},
		"flags after":              {[]string{"state", "push", "ADDR", "--state", "s.json", "-force"}, "s.json", true, []string{"ADDR"}},
		"between, with =":          {[]string{"state", "push", "A", "--state=s.json", "B"}, "s.json", false, []string{"A", "B"}},
		"one dash, with =":         {[]string{"state", "push", "-state=s.json", "A"}, "s.json", false, []string{"A"}},
		"a bool then a positional": {[]string{"state", "push", "--force", "A"}, DefaultStatePath, true, []string{"A"}},
		"after --":                 {[]string{"state", "push", "A", "--", "--state", "x"}, DefaultStatePath, false, []string{"A", "--state", "x"}},
		"a value like a flag":      {[]string{"state", "push", "--state", "-force", "A"}, "-force", false, []string{"A"}},
		"apply PLANFILE --state":   {[]string{"apply", "mesh.plan", "--state", "s.json"}, "s.json", false, []string{"mesh.plan"}},
		"state show ADDR -state":   {[]string{"state", "show", "member[tidb-1]", "-state", "s.json"}, "s.json", false, []string{"member[tidb-1]"}},
	} {
		t.Run(name, func(t *testing.T) {
			root := (&App{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}).newRoot()
			cmd, rest, err := root.Find(oneDashLongFlags(root, tc.args))
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Fatal(err)
			}
			state, _ := cmd.Flags().GetString("state")
			force, _ := cmd.Flags().GetBool("force")
			if state != tc.state || force != tc.force {
				t.Errorf("state %q force %v, want %q %v", state, force, tc.state, tc.force)
			}
			if diff := cmp.Diff(tc.positional, cmd.Flags().Args()); diff != "" {
				t.Errorf("positional (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStateShowFlagAfterAddress: meshctl state show ADDRESS --state FILE works, as kubectl users type it.
func TestStateShowFlagAfterAddress(t *testing.T) {
	const file = "../state/testdata/v1-release-state.json"
	var out, errb bytes.Buffer
	app := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
	if code := app.Main(context.Background(), []string{"state", "show", "member[tidb-1]", "--state", file}); code != ExitOK {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "# member[tidb-1]:") {
		t.Errorf("state show printed:\n%s", out.String())
	}
}

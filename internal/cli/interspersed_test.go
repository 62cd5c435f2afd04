package cli

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseInterspersed: flags before, between and after positionals, with "=" and separate values,
// booleans that take no value, and "--" ending the flags.
func TestParseInterspersed(t *testing.T) {
	for name, tc := range map[string]struct {
		args       []string
		state      string
		force      bool
		positional []string
	}{
		"flags first":              {[]string{"--state", "s.json", "--force", "ADDR"}, "s.json", true, []string{"ADDR"}},
		"flags after":              {[]string{"ADDR", "--state", "s.json", "-force"}, "s.json", true, []string{"ADDR"}},
		"between, with =":          {[]string{"A", "--state=s.json", "B"}, "s.json", false, []string{"A", "B"}},
		"a bool then a positional": {[]string{"--force", "A"}, "", true, []string{"A"}},
		"after --":                 {[]string{"A", "--", "--state", "x"}, "", false, []string{"A", "--state", "x"}},
	} {
		t.Run(name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			state := fs.String("state", "", "")
			force := fs.Bool("force", false, "")
			if err := parseInterspersed(fs, tc.args); err != nil {
				t.Fatal(err)
			}
			if *state != tc.state || *force != tc.force {
				t.Errorf("state %q force %v, want %q %v", *state, *force, tc.state, tc.force)
			}
			if diff := cmp.Diff(tc.positional, fs.Args()); diff != "" {
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

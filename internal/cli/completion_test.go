package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCompletionScripts: meshctl completion SHELL prints a script for each shell that completes meshctl;
// bash parses the bash script and, sourced, registers it for meshctl.
func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		t.Run(shell, func(t *testing.T) {
			code, out, errOut := runMeshctl(t, "completion", shell)
			if code != ExitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			// Each script asks meshctl itself for the candidates: "meshctl __complete ARGS...".
			if !strings.Contains(out, "meshctl") || !strings.Contains(out, "__complete") {
				t.Fatalf("the %s script does not complete meshctl:\n%.500s", shell, out)
			}
			if shell != "bash" {
				return
			}
			bash, err := exec.LookPath("bash")
			if err != nil {
				t.Skip("no bash to parse the script with")
			}
			script := filepath.Join(t.TempDir(), "meshctl.bash")
			if err := os.WriteFile(script, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
				t.Fatalf("bash -n: %v\n%s", err, b)
			}
			b, err := exec.Command(bash, "-c", `source "$1" && complete -p meshctl`, "bash", script).CombinedOutput()
			if err != nil || !strings.Contains(string(b), "meshctl") {
				t.Fatalf("sourcing the script: %v\n%s", err, b)
			}
		})
	}
}

// complete runs what a shell's script runs on TAB, meshctl __complete ARGS, and returns the candidates
// and cobra's directive line (":4" is "no file completion").
func complete(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	code, out, errOut := runMeshctl(t, append([]string{"__complete"}, args...)...)
	if code != ExitOK {
		t.Fatalf("meshctl __complete %q: exit %d\n%s", args, code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

// TestDynamicCompletion: --cluster completes the clusters of the spec --spec names (wherever --spec is),
// and state show completes the addresses the state file records.
func TestDynamicCompletion(t *testing.T) {
	const sandbox = "../../specs/sandbox"
	state := writeTestState(t)
	for name, tc := range map[string]struct {
		args []string
		want []string
	}{
		"rbac --cluster":             {[]string{"rbac", "--spec", sandbox, "--cluster", ""}, []string{"tidb-1", "tidb-2", "tidb-3"}},
		"rbac, other flags between":  {[]string{"rbac", "--spec", sandbox, "--all", "--cluster", "tidb-"}, []string{"tidb-1", "tidb-2", "tidb-3"}},
		"rbac --cluster=prefix":      {[]string{"rbac", "--spec=" + sandbox, "--cluster", "tidb-2"}, []string{"tidb-2"}},
		"iam-policy --cluster":       {[]string{"iam-policy", "--spec", sandbox, "--cluster", ""}, []string{"tidb-1", "tidb-2", "tidb-3"}},
		"no --spec: nothing":         {[]string{"rbac", "--cluster", ""}, []string{}},
		"a spec that is not there":   {[]string{"rbac", "--spec", "nowhere.hcl", "--cluster", ""}, []string{}},
		"state show ADDRESS":         {[]string{"state", "show", "--state", state, "route["}, []string{"route[tidb-1:rtb-1a:10.2.0.0/16]", "route[tidb-2:rtb-2a:10.1.0.0/16]", "route[vpc-gone:rtb-9:10.9.0.0/16]"}},
		"state show, one address":    {[]string{"state", "show", "--state", state, "member[tidb-1]", ""}, []string{}},
		"state show, no state file":  {[]string{"state", "show", "--state", filepath.Join(t.TempDir(), "none.json"), ""}, []string{}},
		"commands":                   {[]string{"st"}, []string{"state\tPrint what the state records, or hand it to meshd's state Secret"}},
		"flags named with one dash":  {[]string{"rbac", "-spec", sandbox, "-cluster", "tidb-3"}, []string{"tidb-3"}},
		"validate takes no argument": {[]string{"validate", ""}, []string{}},
	} {
		t.Run(name, func(t *testing.T) {
			got, directive := complete(t, tc.args...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("candidates (-want +got):\n%s", diff)
			}
			if directive != ":4" {
				t.Errorf("directive %q, want :4 (no file completion)", directive)
			}
		})
	}
}

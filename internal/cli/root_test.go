package cli

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// visible are meshctl's commands as --help lists them, each with its words after "meshctl".
func visible(t *testing.T) map[string]*cobra.Command {
	t.Helper()
	out := map[string]*cobra.Command{}
	var walk func(*cobra.Command, []string)
	walk = func(c *cobra.Command, words []string) {
		for _, sub := range c.Commands() {
			if sub.Hidden {
				continue
			}
			w := append(append([]string{}, words...), sub.Name())
			out[strings.Join(w, " ")] = sub
			walk(sub, w)
		}
	}
	walk((&App{}).newRoot(), nil)
	if len(out) < 15 {
		t.Fatalf("only %d commands: %v", len(out), out)
	}
	return out
}

// TestEveryCommandHasExampleAndHelp: `meshctl CMD --help` (and -h) exits 0 and prints the command's
// example and every one of its flags, for every command, the generated ones (help, completion) too.
func TestEveryCommandHasExampleAndHelp(t *testing.T) {
	for path, cmd := range visible(t) {
		t.Run(path, func(t *testing.T) {
			if strings.TrimSpace(cmd.Example) == "" {
				t.Fatalf("meshctl %s has no Example", path)
			}
			if !strings.Contains(cmd.Example, "meshctl ") {
				t.Errorf("meshctl %s's example does not run meshctl:\n%s", path, cmd.Example)
			}
			for _, help := range []string{"--help", "-h"} {
				code, out, errOut := runMeshctl(t, append(strings.Fields(path), help)...)
				if code != ExitOK || errOut != "" {
					t.Fatalf("meshctl %s %s: exit %d, stderr %q", path, help, code, errOut)
				}
				if !strings.Contains(out, "Examples:\n"+cmd.Example) {
					t.Errorf("meshctl %s %s does not show the example:\n%s", path, help, out)
				}
				cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
					if !strings.Contains(out, "--"+f.Name+" ") {
						t.Errorf("meshctl %s %s does not show --%s:\n%s", path, help, f.Name, out)
					}
				})
			}
		})
	}
}

// TestUsageErrors: a usage error exits 1 with one line saying what is wrong and where help is, as before
// cobra (exit 1); no command prints the usage on stderr.
func TestUsageErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want []string
	}{
		"no command":          {nil, []string{"Usage:", "Available Commands:", "validate"}},
		"unknown command":     {[]string{"aply"}, []string{`unknown command "aply" for "meshctl"`, "apply", "Run 'meshctl --help' for usage."}},
		"unknown flag":        {[]string{"plan", "--sepc", "x"}, []string{"unknown flag: --sepc", "Run 'meshctl plan --help' for usage."}},
		"flag without value":  {[]string{"validate", "--spec"}, []string{"flag needs an argument: --spec"}},
		"bad value":           {[]string{"verify", "--probe-port", "eighty"}, []string{`invalid argument "eighty" for "--probe-port"`}},
		"extra argument":      {[]string{"plan", "--spec", "x", "extra"}, []string{`unknown command "extra" for "meshctl plan"`}},
		"state, no command":   {[]string{"state"}, []string{"Usage:", "meshctl state [command]", "list", "push"}},
		"state, unknown":      {[]string{"state", "lst"}, []string{`unknown command "lst" for "meshctl state"`, "list"}},
		"state and -secret":   {[]string{"validate", "--state", "s.json", "--state-secret", "ns/name"}, []string{"mutually exclusive"}},
		"a shorthand unknown": {[]string{"plan", "-x"}, []string{"unknown shorthand flag: 'x' in -x"}},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runMeshctl(t, tc.args...)
			if code != ExitError || out != "" {
				t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestVersionFlag: meshctl --version and -version print what meshctl version does.
func TestVersionFlag(t *testing.T) {
	_, want, _ := runMeshctl(t, "version")
	if !strings.HasPrefix(want, "meshctl "+Version+"\n") {
		t.Fatalf("meshctl version printed %q", want)
	}
	for _, flag := range []string{"--version", "-version"} {
		if code, out, errOut := runMeshctl(t, flag); code != ExitOK || out != want {
			t.Errorf("meshctl %s: exit %d, %q%s; want %q", flag, code, out, errOut, want)
		}
	}
}

// TestOneDashLongFlags: the flags scripts wrote for meshctl before cobra, with Go's single dash, still work.
func TestOneDashLongFlags(t *testing.T) {
	code, out, errOut := runMeshctl(t, "validate", "-spec", "../../specs/sandbox")
	if code != ExitOK || !strings.Contains(out, "The spec is valid") {
		t.Errorf("validate -spec: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runMeshctl(t, "rbac", "-spec=../../specs/sandbox", "-cluster", "tidb-2")
	if code != ExitOK || !strings.Contains(out, `member cluster "tidb-2"`) {
		t.Errorf("rbac -spec= -cluster: exit %d\n%s%s", code, out, errOut)
	}
}

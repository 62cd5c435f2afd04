package cli

import (
	"flag"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/plan"
)

// iamPolicy prints the IAM policy document the identity applying the spec needs: meshd's own credentials,
// or with --cluster the identity that cluster's AWS calls are made with (its assume_role, if it has one).
// It reads the spec only: no AWS or Kubernetes call.
func (a *App) iamPolicy(args []string) int {
	var specPath, cluster string
	fs := flag.NewFlagSet("meshctl iam-policy", flag.ContinueOnError)
	fs.SetOutput(a.Stderr)
	fs.StringVar(&specPath, "spec", "", "spec file or directory of *.hcl files")
	fs.StringVar(&cluster, "cluster", "", "print the policy of the role this cluster's assume_role names (default: meshd's own credentials)")
	if err := parseInterspersed(fs, args); err != nil {
		return ExitError
	}
	if fs.NArg() > 0 {
		return a.errorf("unexpected arguments %q", fs.Args())
	}
	m, ok := a.loadSpec(specPath)
	if !ok {
		return ExitError
	}
	stmts, err := plan.IAMOf(m, cluster)
	if err != nil {
		return a.errorf("%v", err)
	}
	if err := access.RenderIAM(a.Stdout, stmts); err != nil {
		return a.errorf("%v", err)
	}
	return ExitOK
}

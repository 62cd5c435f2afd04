package cli

import (
	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/plan"
)

// iamPolicy prints the IAM policy document the identity applying the spec needs: meshd's own credentials,
// or with --cluster the identity that cluster's AWS calls are made with (its assume_role, if it has one).
// It reads the spec only: no AWS or Kubernetes call.
func (a *App) iamPolicy(specPath, cluster string) int {
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

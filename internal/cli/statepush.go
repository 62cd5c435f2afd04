package cli

import (
	"context"
	"fmt"

	"github.com/meshd-io/meshd/internal/engine"
)

// statePush copies a local state file into the state Secret meshd keeps (--state-secret), under its lock:
// the way from a mesh applied from a laptop to the daemon that keeps it. Like terraform state push, it
// refuses to replace a Secret that holds another mesh's state, another lineage, or a newer serial (someone
// applied with the Secret since), unless --force.
func (a *App) statePush(ctx context.Context, c common, force bool, args []string) int {
	if len(args) > 0 {
		return a.errorf("meshctl state push takes no arguments (the file is --state)")
	}
	if c.stateSecret == "" {
		return a.errorf("meshctl state push needs --state-secret NAMESPACE/NAME: where meshd keeps the state")
	}
	local, err := readStateFile(ctx, c.state)
	if err != nil {
		return a.errorf("%v", err)
	}
	eng, err := engine.New(ctx, engine.Options{Mesh: local.Mesh, Kubeconfig: c.kubeconfig})
	if err != nil {
		return a.errorf("%v", err)
	}
	b, remote, unlock, err := lockedState(ctx, &c, eng)
	if err != nil {
		return a.errorf("%v", err)
	}
	defer func() { _ = unlock() }()
	if remote.Serial > 0 && !force {
		switch {
		case remote.Mesh != "" && remote.Mesh != local.Mesh:
			return a.errorf("the Secret %s holds the state of mesh %q, %s that of mesh %q: nothing pushed (--force replaces it)",
				c.stateSecret, remote.Mesh, c.state, local.Mesh)
		case remote.Lineage != local.Lineage:
			return a.errorf("the Secret %s holds another lineage of state (%s) than %s (%s): nothing pushed (--force replaces it)",
				c.stateSecret, remote.Lineage, c.state, local.Lineage)
		case remote.Serial > local.Serial:
			return a.errorf("the Secret %s holds a newer state (serial %d) than %s (serial %d): someone applied with it since; nothing pushed (--force replaces it)",
				c.stateSecret, remote.Serial, c.state, local.Serial)
		}
	}
	if err := b.Write(ctx, local); err != nil {
		return a.errorf("writing the state into the Secret %s: %v", c.stateSecret, err)
	}
	fmt.Fprintf(a.Stdout, "Pushed %s (mesh %q, lineage %s) into the Secret %s as serial %d.\n", c.state, local.Mesh, local.Lineage, c.stateSecret, local.Serial)
	return ExitOK
}

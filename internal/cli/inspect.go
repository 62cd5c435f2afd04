package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/planview"
	"github.com/meshd-io/meshd/internal/state"
)

// Version is meshctl's version, set at build time:
//
//	go build -ldflags "-X github.com/meshd-io/meshd/internal/cli.Version=v1.2.3" ./cmd/meshctl
var Version = "dev"

// version prints meshctl's version and the plan and state format versions it reads and writes.
func (a *App) version() int {
	fmt.Fprintf(a.Stdout, "meshctl %s\nplan format version %d\nstate format version %d\n", Version, plan.FormatVersion, state.FormatVersion)
	return ExitOK
}

// show prints a saved plan, as plan printed it (or --json: the document itself).
func (a *App) show(asJSON bool, args []string) int {
	if len(args) != 1 {
		return a.errorf("usage: meshctl show [--json] FILE (a plan saved with meshctl plan --out FILE)")
	}
	p, err := readPlan(args[0])
	if err != nil {
		return a.errorf("%v", err)
	}
	if asJSON {
		err = planview.RenderJSON(a.Stdout, p)
	} else {
		err = planview.RenderHuman(a.Stdout, p)
	}
	if err != nil {
		return a.errorf("%v", err)
	}
	return ExitOK
}

// stateCmd runs meshctl state list (sub "list") and meshctl state show ADDRESS ("show") on the state file at path.
func (a *App) stateCmd(ctx context.Context, sub, path string, args []string) int {
	st, err := readStateFile(ctx, path)
	if err != nil {
		return a.errorf("%v", err)
	}
	entries := plan.StateEntries(st)
	if sub == "list" {
		if len(args) > 0 {
			return a.errorf("meshctl state list takes no arguments")
		}
		for _, e := range entries {
			fmt.Fprintln(a.Stdout, e.Address)
		}
		return ExitOK
	}
	if len(args) != 1 {
		return a.errorf("usage: meshctl state show [--state PATH] ADDRESS (meshctl state list prints the addresses)")
	}
	addr := args[0]
	for _, e := range entries {
		if e.Address == addr {
			printEntry(a.Stdout, e)
			return ExitOK
		}
	}
	return a.errorf("no address %s in the state %s: meshctl state list prints the addresses it records", addr, path)
}

// readStateFile reads the state without taking its lock (writes are atomic renames); a missing file is an
// error, not an empty state, so that a wrong --state is noticed.
func readStateFile(ctx context.Context, path string) (*state.State, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no state file at %s (meshctl apply writes it; pass --state PATH)", path)
	}
	return state.NewLocal(path).Read(ctx)
}

// printEntry prints one address the state records, as meshctl state show does.
func printEntry(w io.Writer, e state.Entry) {
	width := 0
	for _, a := range e.Attrs {
		width = max(width, len(a.Name))
	}
	fmt.Fprintf(w, "# %s:\n", e.Address)
	for _, a := range e.Attrs {
		var v string
		switch x := a.Value.(type) {
		case string:
			if x == "" {
				continue
			}
			v = strconv.Quote(x)
		case []string:
			q := make([]string, len(x))
			for i, s := range x {
				q[i] = strconv.Quote(s)
			}
			v = "[" + strings.Join(q, ", ") + "]"
		}
		fmt.Fprintf(w, "  %-*s = %s\n", width, a.Name, v)
	}
}

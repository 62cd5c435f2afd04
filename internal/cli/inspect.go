package cli

import (
	"context"
	"errors"
	"flag"
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
func (a *App) version(args []string) int {
	fs := flagSet(a, "version")
	if err := parseInterspersed(fs, args); err != nil {
		return ExitError
	}
	if fs.NArg() > 0 {
		return a.errorf("meshctl version takes no arguments")
	}
	fmt.Fprintf(a.Stdout, "meshctl %s\nplan format version %d\nstate format version %d\n", Version, plan.FormatVersion, state.FormatVersion)
	return ExitOK
}

func flagSet(a *App, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("meshctl "+name, flag.ContinueOnError)
	fs.SetOutput(a.Stderr)
	return fs
}

// show prints a saved plan, as plan printed it (or --json: the document itself).
func (a *App) show(args []string) int {
	fs := flagSet(a, "show")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	if err := parseInterspersed(fs, args); err != nil {
		return ExitError
	}
	if fs.NArg() != 1 {
		return a.errorf("usage: meshctl show [--json] FILE (a plan saved with meshctl plan --out FILE)")
	}
	p, err := readPlan(fs.Arg(0))
	if err != nil {
		return a.errorf("%v", err)
	}
	if *asJSON {
		err = planview.RenderJSON(a.Stdout, p)
	} else {
		err = planview.RenderHuman(a.Stdout, p)
	}
	if err != nil {
		return a.errorf("%v", err)
	}
	return ExitOK
}

const stateUsage = `Usage: meshctl state <subcommand> [--state PATH]

Subcommands:
  list           print every address the state records
  show ADDRESS   print what the state records for one address
  push           copy the local state file into meshd's state Secret:
                 meshctl state push --state FILE --state-secret NAMESPACE/NAME
`

// stateCmd runs meshctl state list and meshctl state show ADDRESS.
func (a *App) stateCmd(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.Stderr, stateUsage)
		return ExitError
	}
	sub := args[0]
	if sub == "-h" || sub == "-help" || sub == "--help" || sub == "help" {
		fmt.Fprint(a.Stdout, stateUsage)
		return ExitOK
	}
	if sub == "push" {
		return a.statePush(ctx, args[1:])
	}
	if sub != "list" && sub != "show" {
		fmt.Fprintf(a.Stderr, "meshctl state: unknown subcommand %q\n\n%s", sub, stateUsage)
		return ExitError
	}
	fs := flagSet(a, "state "+sub)
	path := fs.String("state", DefaultStatePath, "state file")
	if err := parseInterspersed(fs, args[1:]); err != nil {
		return ExitError
	}
	st, err := readStateFile(ctx, *path)
	if err != nil {
		return a.errorf("%v", err)
	}
	entries := plan.StateEntries(st)
	if sub == "list" {
		if fs.NArg() > 0 {
			return a.errorf("meshctl state list takes no arguments")
		}
		for _, e := range entries {
			fmt.Fprintln(a.Stdout, e.Address)
		}
		return ExitOK
	}
	if fs.NArg() != 1 {
		return a.errorf("usage: meshctl state show [--state PATH] ADDRESS (meshctl state list prints the addresses)")
	}
	addr := fs.Arg(0)
	for _, e := range entries {
		if e.Address == addr {
			printEntry(a.Stdout, e)
			return ExitOK
		}
	}
	return a.errorf("no address %s in the state %s: meshctl state list prints the addresses it records", addr, *path)
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

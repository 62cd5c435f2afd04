package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
)

// Version is meshctl's version, set at build time:
//
//	go build -ldflags "-X github.com/meshd-io/meshd/internal/cli.Version=v1.2.3" ./cmd/meshctl
var Version = "dev"

// version prints meshctl's version and the plan and state format versions it reads and writes.
func (a *App) version(args []string) int {
	fs := flagSet(a, "version")
	if err := fs.Parse(args); err != nil {
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
	if err := fs.Parse(args); err != nil {
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
		err = plan.RenderJSON(a.Stdout, p)
	} else {
		err = plan.RenderHuman(a.Stdout, p)
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
	if sub != "list" && sub != "show" {
		fmt.Fprintf(a.Stderr, "meshctl state: unknown subcommand %q\n\n%s", sub, stateUsage)
		return ExitError
	}
	fs := flagSet(a, "state "+sub)
	path := fs.String("state", DefaultStatePath, "state file")
	if err := fs.Parse(args[1:]); err != nil {
		return ExitError
	}
	st, err := readStateFile(ctx, *path)
	if err != nil {
		return a.errorf("%v", err)
	}
	entries := stateEntries(st)
	if sub == "list" {
		if fs.NArg() > 0 {
			return a.errorf("meshctl state list takes no arguments")
		}
		for _, e := range entries {
			fmt.Fprintln(a.Stdout, e.address)
		}
		return ExitOK
	}
	if fs.NArg() != 1 {
		return a.errorf("usage: meshctl state show [--state PATH] ADDRESS (meshctl state list prints the addresses)")
	}
	addr := fs.Arg(0)
	for _, e := range entries {
		if e.address == addr {
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

// entry is one address the state records and its attributes, in print order.
type entry struct {
	address string
	attrs   []attr
}

type attr struct {
	name  string
	value any // string or []string
}

// stateEntries lists what the state records, by address: members, routes, Corefile zones, then copies,
// each sorted by address. The state holds no secret (a copy's record is where it is, not its content), and
// only these fields are printed.
func stateEntries(st *state.State) []entry {
	var members, routes, corefiles, replicas []entry
	for name, m := range st.Members {
		kube := []attr{{"kube_context", m.KubeContext}, {"namespace", m.Namespace}, {"cluster_domain", m.ClusterDomain}}
		if m.External { // no AWS side to show
			members = append(members, entry{address: "member[" + name + "]",
				attrs: append([]attr{{"name", m.Name}, {"network", "external"}}, kube...)})
			continue
		}
		members = append(members, entry{address: "member[" + name + "]", attrs: append([]attr{
			{"name", m.Name}, {"region", m.Region}, {"vpc_id", m.VPCID}, {"cidrs", m.CIDRs},
			{"route_table_ids", m.RouteTableIDs}, {"security_group_id", m.SecurityGroupID}, {"owner_id", m.OwnerID},
		}, kube...)})
	}
	for _, r := range st.Routes {
		routes = append(routes, entry{address: plan.RouteAddress(clusterOfVPC(st, r.VPCID), r.RouteTableID, r.DestinationCIDR),
			attrs: []attr{{"region", r.Region}, {"vpc_id", r.VPCID}, {"route_table_id", r.RouteTableID},
				{"destination_cidr", r.DestinationCIDR}, {"peering_id", r.PeeringID}}})
	}
	for cluster, zones := range st.Corefiles {
		if len(zones) == 0 {
			continue
		}
		corefiles = append(corefiles, entry{address: plan.CorefileAddress(cluster), attrs: []attr{{"zones", zones}}})
	}
	for addr, r := range st.ControlPlanes {
		replicas = append(replicas, entry{address: addr, attrs: []attr{{"cluster", r.Cluster},
			{"kube_context", r.KubeContext}, {"kind", r.Kind}, {"namespace", r.Namespace}, {"name", r.Name}}})
	}
	for addr, r := range st.Replicas {
		replicas = append(replicas, entry{address: addr, attrs: []attr{{"cluster", r.Cluster},
			{"kube_context", r.KubeContext}, {"kind", r.Kind}, {"namespace", r.Namespace}, {"name", r.Name}}})
	}
	var all []entry
	for _, group := range [][]entry{members, routes, corefiles, replicas} {
		sort.Slice(group, func(i, j int) bool { return group[i].address < group[j].address })
		all = append(all, group...)
	}
	return all
}

// clusterOfVPC names the member whose VPC this is, as the planner does for a route's address (the VPC ID
// when no member of the state has it).
func clusterOfVPC(st *state.State, vpc string) string {
	names := make([]string, 0, len(st.Members))
	for name := range st.Members {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if st.Members[name].VPCID == vpc {
			return name
		}
	}
	return vpc
}

func printEntry(w io.Writer, e entry) {
	width := 0
	for _, a := range e.attrs {
		width = max(width, len(a.name))
	}
	fmt.Fprintf(w, "# %s:\n", e.address)
	for _, a := range e.attrs {
		var v string
		switch x := a.value.(type) {
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
		fmt.Fprintf(w, "  %-*s = %s\n", width, a.name, v)
	}
}

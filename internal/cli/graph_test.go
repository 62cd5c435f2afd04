package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshd-io/meshd/internal/cli"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/planfile"
	"github.com/meshd-io/meshd/internal/testenv"
)

// dotGraph is what Graphviz's dot makes of meshctl graph's output (dot -Tjson0): its nodes and edges.
type dotGraph struct {
	nodes map[string]string // node name -> label
	edges [][2]string       // tail (the dependent) -> head (what it waits for)
}

// parseDOT runs the real DOT parser over text.
func parseDOT(t *testing.T, dot, text string) dotGraph {
	t.Helper()
	cmd := exec.Command(dot, "-Tjson0")
	cmd.Stdin = strings.NewReader(text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("dot -Tjson0: %v %s\ninput:\n%s", err, stderr.String(), text)
	}
	var raw struct {
		Objects []struct {
			ID    int    `json:"_gvid"`
			Name  string `json:"name"`
			Label string `json:"label"`
		} `json:"objects"`
		Edges []struct {
			Tail int `json:"tail"`
			Head int `json:"head"`
		} `json:"edges"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("dot -Tjson0 output: %v", err)
	}
	g := dotGraph{nodes: map[string]string{}}
	names := map[int]string{}
	for _, o := range raw.Objects {
		names[o.ID] = o.Name
		g.nodes[o.Name] = o.Label
	}
	for _, e := range raw.Edges {
		g.edges = append(g.edges, [2]string{names[e.Tail], names[e.Head]})
	}
	return g
}

// checkGraph: every change of p is a node labelled with its action and address, nothing else is a node, and
// every edge is a DependsOn of p whose dependency comes before its dependent in the plan's order (the order
// apply runs it in); every DependsOn is an edge.
func checkGraph(t *testing.T, what string, g dotGraph, p *plan.Plan) {
	t.Helper()
	at := map[string]int{}
	for i, ch := range p.Changes {
		at[ch.Address] = i
		label, ok := g.nodes[ch.Address]
		if !ok {
			t.Errorf("%s: change %s %s is not a node", what, ch.Action, ch.Address)
			continue
		}
		if !strings.HasPrefix(label, string(ch.Action)+" "+ch.Address) || !strings.Contains(label, ch.Action.Verb()) {
			t.Errorf("%s: node %s is labelled %q, want its action %q and address", what, ch.Address, label, ch.Action)
		}
	}
	if len(g.nodes) != len(p.Changes) {
		t.Errorf("%s: %d nodes for %d changes", what, len(g.nodes), len(p.Changes))
	}
	want := map[[2]string]bool{}
	for _, ch := range p.Changes {
		for _, d := range ch.DependsOn {
			want[[2]string{ch.Address, d}] = true
		}
	}
	for _, e := range g.edges {
		dependent, dependency := e[0], e[1]
		if !want[e] {
			t.Errorf("%s: edge %s -> %s is no DependsOn of the plan", what, dependent, dependency)
		}
		delete(want, e)
		i, ok1 := at[dependent]
		j, ok2 := at[dependency]
		if !ok1 || !ok2 || j >= i {
			t.Errorf("%s: edge %s -> %s: the plan runs the dependency at %d, the dependent at %d", what, dependent, dependency, j, i)
		}
	}
	for e := range want {
		t.Errorf("%s: DependsOn %s -> %s is not an edge", what, e[0], e[1])
	}
}

func readSavedPlan(t *testing.T, path string) *plan.Plan {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := planfile.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGraphIsTheSavedPlansOrder: meshctl graph, from --spec and from a saved plan, prints DOT that Graphviz
// parses, with every change a node and every edge an ordering the plan keeps: the mesh from empty (peerings
// before their routes and rules, DNS Services before the Corefiles that forward to them) and its destroy.
func TestGraphIsTheSavedPlansOrder(t *testing.T) {
	dot := testenv.Require(t, testenv.BinDot)
	h, _, _ := newDNSHarness(t, nil)

	for _, destroy := range []bool{false, true} {
		what, planArgs, graphArgs := "create", []string{"plan"}, []string{"graph"}
		if destroy {
			what = "destroy"
			planArgs, graphArgs = append(planArgs, "--destroy"), append(graphArgs, "--destroy")
		}
		saved := filepath.Join(h.dir, what+".plan")
		h.mustRun(0, append(planArgs, "--out", saved)...)
		p := readSavedPlan(t, saved)
		edges := 0
		for _, ch := range p.Changes {
			edges += len(ch.DependsOn)
		}
		if len(p.Changes) == 0 || edges == 0 {
			t.Fatalf("%s: the plan has %d changes and %d dependencies; the test needs both", what, len(p.Changes), edges)
		}

		// From a saved plan: exactly that plan.
		var out, errb bytes.Buffer
		app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
		if code := app.Main(context.Background(), []string{"graph", saved}); code != 0 {
			t.Fatalf("meshctl graph %s: exit %d\n%s", saved, code, errb.String())
		}
		checkGraph(t, what+" (saved plan)", parseDOT(t, dot, out.String()), p)

		// From --spec: the plan made again, which is the same plan (the world has not changed).
		r := h.mustRun(0, graphArgs...)
		g := parseDOT(t, dot, r.stdout)
		checkGraph(t, what+" (--spec)", g, p)
		t.Logf("%s: %d nodes, %d edges", what, len(g.nodes), len(g.edges))

		if !destroy {
			h.mustRun(0, "apply", "--auto-approve")
		}
	}

	// A saved plan with --spec, or two plans, is refused.
	r := h.run("graph", filepath.Join(h.dir, "create.plan"))
	if r.code != 1 || !strings.Contains(r.stderr, "--spec") {
		t.Errorf("graph PLANFILE --spec: exit %d, %s", r.code, r.stderr)
	}
	var errb bytes.Buffer
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &errb}
	if code := app.Main(context.Background(), []string{"graph", "a.plan", "b.plan"}); code != 1 || !slices.ContainsFunc(strings.Split(errb.String(), "\n"), func(l string) bool {
		return strings.Contains(l, "unexpected arguments")
	}) {
		t.Errorf("graph with two plans: exit %d, %s", code, errb.String())
	}
}

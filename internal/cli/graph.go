package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/meshd-io/meshd/internal/plan"
)

// graph prints a plan's dependency graph in DOT, as terraform graph does: the plan made from --spec (against
// the state, like meshctl plan) or a plan saved with meshctl plan --out. Pipe it to `dot -Tsvg` for a picture.
func (a *App) graph(ctx context.Context, c common, destroy bool, args []string) int {
	var p *plan.Plan
	switch {
	case len(args) > 1:
		return a.errorf("unexpected arguments %q: meshctl graph [--spec PATH | PLANFILE]", args)
	case len(args) == 1:
		if c.spec != "" || destroy {
			return a.errorf("a saved plan is graphed as it was made: --spec and --destroy do not apply to %s", args[0])
		}
		var err error
		if p, err = readPlan(args[0]); err != nil {
			return a.errorf("%v", err)
		}
	default:
		s, code := a.open(ctx, &c)
		if code != ExitOK {
			return code
		}
		defer a.release(s.unlock)
		if p, code = a.makePlan(ctx, s, destroy); code != ExitOK {
			return code
		}
	}
	if err := writeDOT(a.Stdout, p); err != nil {
		return a.errorf("%v", err)
	}
	return ExitOK
}

// dotColors colour the nodes as terraform plan colours its symbols.
var dotColors = map[plan.Action]string{
	plan.Create:  "darkgreen",
	plan.Update:  "darkgoldenrod",
	plan.Delete:  "red3",
	plan.Replace: "red3",
	plan.Adopt:   "blue3",
	plan.Keep:    "gray50",
}

// writeDOT writes one node per change, in plan order, labelled with its action and address, and one edge per
// DependsOn entry from the dependent to the change it waits for (terraform graph's direction).
func writeDOT(w io.Writer, p *plan.Plan) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "digraph %s {\n", dotID("meshd "+p.Mesh))
	fmt.Fprintf(bw, "\tcompound = \"true\"\n\tnewrank = \"true\"\n")
	fmt.Fprintf(bw, "\tnode [shape = \"box\", fontname = \"monospace\"]\n")
	for _, ch := range p.Changes {
		label := fmt.Sprintf("%s %s\n%s", ch.Action, ch.Address, ch.Action.Verb())
		fmt.Fprintf(bw, "\t%s [label = %s, color = %s]\n", dotID(ch.Address), dotID(label), dotID(dotColors[ch.Action]))
	}
	for _, ch := range p.Changes {
		for _, dep := range ch.DependsOn {
			fmt.Fprintf(bw, "\t%s -> %s\n", dotID(ch.Address), dotID(dep))
		}
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

// dotID quotes s as a DOT string: quotes and backslashes escaped, a newline as DOT's centred line break.
func dotID(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

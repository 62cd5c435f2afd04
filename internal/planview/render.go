// Package planview renders plans: for people (RenderHuman) and machines (RenderJSON). Plans are data
// (package plan); how they look is decided here.
package planview

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/meshd-io/meshd/internal/plan"
)

// legendLines explain the symbols, in this order; a plan's legend lists the ones it uses (as terraform
// plan does), and always the first four, which every reader of a meshd plan learns together.
var legendLines = []struct {
	action plan.Action
	always bool
	text   string
}{
	{plan.Create, true, "  + create"},
	{plan.Update, true, "  ~ update in place"},
	{plan.Delete, true, "  - destroy"},
	{plan.Adopt, true, "  > adopt (tag and record an existing object as meshd's)"},
	{plan.Replace, false, "-/+ destroy and then create replacement"},
}

func legend(changes []plan.Change) string {
	used := map[plan.Action]bool{}
	for _, c := range changes {
		used[c.Action] = true
	}
	var b strings.Builder
	b.WriteString("meshd uses these symbols:\n")
	for _, l := range legendLines {
		if l.always || used[l.action] {
			b.WriteString(l.text + "\n")
		}
	}
	return b.String()
}

// RenderHuman writes the plan as a person reads it: the legend, every change with its reason and
// attributes, what is left alone and why, conflicts, and a summary line.
func RenderHuman(w io.Writer, p *plan.Plan) error {
	bw := bufio.NewWriter(w)
	var changes, kept []plan.Change
	for _, c := range p.Changes {
		if c.Action == plan.Keep {
			kept = append(kept, c)
		} else {
			changes = append(changes, c)
		}
	}
	if len(changes) > 0 {
		fmt.Fprintf(bw, "%s\nmeshd will perform the following actions:\n\n", legend(changes))
		for _, c := range changes {
			renderChange(bw, c)
		}
	}
	if len(kept) > 0 {
		fmt.Fprintf(bw, "Objects that are not meshd's and are left alone:\n\n")
		for _, c := range kept {
			fmt.Fprintf(bw, "  = %s: %s\n", c.Address, c.Reason)
		}
		fmt.Fprintln(bw)
	}
	renderTargetGroups(bw, p.TargetGroups)
	if len(p.CoreDNS) > 0 {
		fmt.Fprintf(bw, "CoreDNS configuration:\n\n")
		for _, f := range p.CoreDNS {
			fmt.Fprintf(bw, "  %s\n", f)
		}
		fmt.Fprintln(bw)
	}
	if len(p.Addons) > 0 {
		fmt.Fprintf(bw, "EKS CoreDNS add-ons:\n\n")
		for _, n := range p.Addons {
			fmt.Fprintf(bw, "  %s\n", n)
		}
		fmt.Fprintln(bw)
	}
	if n := p.UnmanagedNetworks; len(n) > 0 {
		fmt.Fprintf(bw, "Note: the network of %s is external (network = \"external\"): meshd plans no peering, route or security-group rule for %s; DNS, replicas and control planes are planned as for any member.\n\n",
			strings.Join(n, ", "), map[bool]string{true: "it", false: "them"}[len(n) == 1])
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(bw, "Warning: %s\n\n", w)
	}
	for _, c := range p.Conflicts {
		fmt.Fprintf(bw, "Conflict: %s\n\n  on %s: %s\n\n", c.Summary, c.Address, c.Detail)
	}
	if p.NextRenewal != nil {
		// Also when nothing changes: a person checking a control plane wants to know when its tokens turn over.
		fmt.Fprintf(bw, "The next control-plane token is due for renewal at %s.\n\n", p.NextRenewal.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(bw, SummaryLine(p))
	return bw.Flush()
}

// SummaryLine is the last line of a human plan.
func SummaryLine(p *plan.Plan) string {
	if !p.HasChanges() {
		if len(p.Conflicts) > 0 {
			return fmt.Sprintf("No changes, but %d conflict(s) keep the mesh from matching the spec.", len(p.Conflicts))
		}
		return "No changes. The mesh matches the spec."
	}
	s := p.Summary()
	line := fmt.Sprintf("Plan: %d to add, %d to change, %d to destroy", s.Add, s.Change, s.Destroy)
	if s.Adopt > 0 {
		line += fmt.Sprintf(", %d to adopt", s.Adopt)
	}
	return line + "."
}

func renderChange(w *bufio.Writer, c plan.Change) {
	fmt.Fprintf(w, "  # %s will be %s: %s\n", c.Address, c.Action.Past(), c.Reason)
	fmt.Fprintf(w, "  %s %s {\n", c.Action, c.Address)
	var before, after []plan.Attr
	if c.Before != nil {
		before = c.Before.Attrs()
	}
	if c.After != nil {
		after = c.After.Attrs()
	}
	width := 0
	for _, a := range append(append([]plan.Attr(nil), before...), after...) {
		width = max(width, len(a.Name))
	}
	switch c.Action {
	case plan.Create:
		for _, a := range after {
			fmt.Fprintf(w, "      + %-*s = %s\n", width, a.Name, value(a))
		}
	case plan.Delete:
		for _, a := range before {
			if !a.Unknown {
				fmt.Fprintf(w, "      - %-*s = %s\n", width, a.Name, value(a))
			}
		}
	default:
		old := map[string]plan.Attr{}
		for _, a := range before {
			old[a.Name] = a
		}
		for _, a := range after {
			b, ok := old[a.Name]
			switch {
			case ok && b.Value == a.Value && b.Unknown == a.Unknown:
				if !a.Unknown {
					fmt.Fprintf(w, "        %-*s = %s\n", width, a.Name, value(a))
				}
			case ok && !b.Unknown:
				fmt.Fprintf(w, "      ~ %-*s = %s -> %s\n", width, a.Name, value(b), value(a))
			default:
				fmt.Fprintf(w, "      + %-*s = %s\n", width, a.Name, value(a))
			}
		}
	}
	fmt.Fprintf(w, "    }\n\n")
}

func value(a plan.Attr) string {
	switch {
	case a.Sensitive:
		return fmt.Sprintf("(sensitive: %s)", a.Value)
	case a.Unknown && a.Value != "":
		return fmt.Sprintf("%s.id (known after apply)", a.Value)
	case a.Unknown:
		return "(known after apply)"
	case strings.Contains(a.Value, "\n"):
		return "<<EOT\n" + a.Value + "\nEOT"
	}
	return fmt.Sprintf("%q", a.Value)
}

// RenderJSON writes the plan for machines: the same document a saved plan holds.
func RenderJSON(w io.Writer, p *plan.Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// renderTargetGroups shows each load_balancer block's target group and the targets each cluster has
// registered in it: information, not changes.
func renderTargetGroups(w io.Writer, groups []plan.TargetGroupStatus) {
	for _, g := range groups {
		arn := g.ARN
		if arn == "" {
			arn = "(known after apply: LBC makes it multi-cluster once the Service is annotated)"
		}
		fmt.Fprintf(w, "Target group of load_balancer %q: %s\n", g.LoadBalancer, arn)
		if g.ARN != "" && len(g.Clusters) == 0 {
			fmt.Fprintf(w, "  no targets registered\n")
		}
		for _, ct := range g.Clusters {
			name := ct.Cluster
			if name == "" {
				name = "(no member's VPC)"
			}
			fmt.Fprintf(w, "  %s: %d target(s): %s\n", name, len(ct.Targets), strings.Join(ct.Targets, ", "))
		}
		fmt.Fprintln(w)
	}
}

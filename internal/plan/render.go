package plan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// legendLines explain the symbols, in this order; a plan's legend lists the ones it uses (as terraform
// plan does), and always the first four, which every reader of a meshd plan learns together.
var legendLines = []struct {
	action Action
	always bool
	text   string
}{
	{Create, true, "  + create"},
	{Update, true, "  ~ update in place"},
	{Delete, true, "  - destroy"},
	{Adopt, true, "  > adopt (tag and record an existing object as meshd's)"},
	{Replace, false, "-/+ destroy and then create replacement"},
}

func legend(changes []Change) string {
	used := map[Action]bool{}
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
func RenderHuman(w io.Writer, p *Plan) error {
	bw := bufio.NewWriter(w)
	var changes, kept []Change
	for _, c := range p.Changes {
		if c.Action == Keep {
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
func SummaryLine(p *Plan) string {
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

func renderChange(w *bufio.Writer, c Change) {
	fmt.Fprintf(w, "  # %s will be %s: %s\n", c.Address, c.Action.Past(), c.Reason)
	fmt.Fprintf(w, "  %s %s {\n", c.Action, c.Address)
	var before, after []Attr
	if c.Before != nil {
		before = c.Before.Attrs()
	}
	if c.After != nil {
		after = c.After.Attrs()
	}
	width := 0
	for _, a := range append(append([]Attr(nil), before...), after...) {
		width = max(width, len(a.Name))
	}
	switch c.Action {
	case Create:
		for _, a := range after {
			fmt.Fprintf(w, "      + %-*s = %s\n", width, a.Name, value(a))
		}
	case Delete:
		for _, a := range before {
			if !a.Unknown {
				fmt.Fprintf(w, "      - %-*s = %s\n", width, a.Name, value(a))
			}
		}
	default:
		old := map[string]Attr{}
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

func value(a Attr) string {
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
func RenderJSON(w io.Writer, p *Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// Decode reads a plan written by RenderJSON (a saved plan file).
func Decode(r io.Reader) (*Plan, error) {
	var p Plan
	if err := json.NewDecoder(r).Decode(&p); err != nil {
		return nil, fmt.Errorf("not a meshd plan: %w", err)
	}
	if p.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("plan format version %d is not supported by this meshd (it reads version %d)", p.FormatVersion, FormatVersion)
	}
	if err := p.checkGraph(); err != nil {
		return nil, fmt.Errorf("not a valid meshd plan: %w", err)
	}
	return &p, nil
}

// checkGraph refuses what Compute never makes but an edited plan file could hold, and apply could not run:
// two changes at one address, and dependencies that wait for each other.
func (p *Plan) checkGraph() error {
	deps := map[string][]string{}
	for _, c := range p.Changes {
		if _, dup := deps[c.Address]; dup {
			return fmt.Errorf("two changes at %s", c.Address)
		}
		deps[c.Address] = c.DependsOn
	}
	const (
		visiting = 1
		done     = 2
	)
	mark := map[string]int{}
	var visit func(addr string) error
	visit = func(addr string) error {
		switch mark[addr] {
		case visiting:
			return fmt.Errorf("%s depends on itself through its dependencies", addr)
		case done:
			return nil
		}
		mark[addr] = visiting
		for _, d := range deps[addr] {
			if err := visit(d); err != nil {
				return err
			}
		}
		mark[addr] = done
		return nil
	}
	for _, c := range p.Changes {
		if err := visit(c.Address); err != nil {
			return err
		}
	}
	return nil
}

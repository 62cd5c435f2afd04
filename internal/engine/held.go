package engine

import (
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// heldDetail ends the diagnostic of a cluster meshd holds.
const heldDetail = " meshd leaves this cluster's objects, and the other clusters' objects toward it, as they are, and corrects the rest of the mesh; this is reported every pass until it is fixed."

// holdUnresolved is what PartialDNS (meshd) does with a cluster that AWS cannot resolve (its VPC deleted,
// its EKS cluster unknown): one cluster's AWS problem must not stop the corrections of the others. Its
// error diagnostics become warnings at the same spec position, and the cluster is held: it stays a member
// as the state last recorded it (so that nothing of it, or toward it, is deleted as if it had left the
// mesh), and every change that names it is taken out of the plan afterwards (dropHeld). A cluster the
// state has no record of has nothing meshd made: it is simply left out.
func holdUnresolved(m *spec.Mesh, st *state.State, resolved []model.Member, diags hcl.Diagnostics) ([]model.Member, map[string]model.Member) {
	have := map[string]bool{}
	for _, mem := range resolved {
		have[mem.Name] = true
	}
	held := map[string]model.Member{}
	for _, d := range diags {
		if d.Severity != hcl.DiagError || d.Subject == nil {
			continue
		}
		c := clusterAt(m, *d.Subject)
		if c == nil || have[c.Name] {
			continue
		}
		d.Severity = hcl.DiagWarning
		if !strings.HasSuffix(d.Detail, heldDetail) {
			d.Detail += heldDetail
		}
		held[c.Name] = st.Members[c.Name]
	}
	if len(held) == 0 {
		return resolved, nil
	}
	var out []model.Member
	byName := map[string]model.Member{}
	for _, mem := range resolved {
		byName[mem.Name] = mem
	}
	for _, c := range m.Clusters {
		if mem, ok := byName[c.Name]; ok {
			out = append(out, mem)
		} else if rec, ok := held[c.Name]; ok && rec.Name != "" {
			out = append(out, rec)
		}
	}
	return out, held
}

// clusterAt is the cluster whose block holds the range r (its header or one of its attributes).
func clusterAt(m *spec.Mesh, r hcl.Range) *spec.Cluster {
	same := func(a hcl.Range) bool { return a.Filename == r.Filename && a.Start.Byte == r.Start.Byte }
	for _, c := range m.Clusters {
		if same(c.DeclRange) {
			return c
		}
		for _, a := range c.Attrs {
			if same(a) {
				return c
			}
		}
	}
	return nil
}

// dropHeld takes out of p every change whose address names a held cluster or one of its CIDR blocks
// (addresses start with the cluster, or the pair, they are about: see each kind's Address), and the
// changes that wait on one; diagnostics of plan.Check at a held cluster become warnings.
func dropHeld(m *spec.Mesh, p *plan.Plan, held map[string]model.Member, diags hcl.Diagnostics) {
	if len(held) == 0 {
		return
	}
	names := func(address string) bool {
		_, inner, ok := strings.Cut(strings.TrimSuffix(address, "]"), "[")
		if !ok {
			return false
		}
		parts := strings.Split(inner, ":")
		for name, mem := range held {
			if slices.Contains(parts, name) {
				return true
			}
			for _, cidr := range mem.CIDRs {
				if slices.Contains(parts, cidr) {
					return true
				}
			}
		}
		return false
	}
	dropped := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for _, ch := range p.Changes {
			if dropped[ch.Address] {
				continue
			}
			if names(ch.Address) || slices.ContainsFunc(ch.DependsOn, func(d string) bool { return dropped[d] }) {
				dropped[ch.Address], changed = true, true
			}
		}
	}
	kept := p.Changes[:0]
	for _, ch := range p.Changes {
		if !dropped[ch.Address] {
			kept = append(kept, ch)
		}
	}
	p.Changes = kept
	for _, d := range diags {
		if c := subjectCluster(m, d); c != nil && d.Severity == hcl.DiagError {
			if _, ok := held[c.Name]; ok {
				d.Severity = hcl.DiagWarning
			}
		}
	}
}

// cloneDiags copies diagnostics that are changed afterwards (severity, detail), so that the cached
// observation's stay as they were observed.
func cloneDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	out := make(hcl.Diagnostics, len(diags))
	for i, d := range diags {
		c := *d
		out[i] = &c
	}
	return out
}

func subjectCluster(m *spec.Mesh, d *hcl.Diagnostic) *spec.Cluster {
	if d.Subject == nil {
		return nil
	}
	return clusterAt(m, *d.Subject)
}

package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/spec"
)

// Privilege checks on what only the clusters know. The spec check (spec/privilege.go) refuses kube-*
// namespaces and built-in admin-like role names; what a role of any other name grants is in its rules,
// which the planner sees: the source of a replicate block of kind ClusterRole or Role (and the role a
// replicated binding refers to, by name), and each control plane's cluster_role as observed in each data
// plane. Without allow_privileged = true such a role is not copied and not bound: Compute withholds it
// from the plan (the copies, or the control plane's objects, are left as they are) and Check reports it at
// the block's position, so that editing the spec, or a role in one member, cannot mint an admin anywhere.
//
//	the role grants                                   | why it is an escalation
//	--------------------------------------------------+----------------------------------------------------
//	verbs "*" or resources "*"                        | everything of a group, including what appears later
//	apiGroups "*" with "*/x", RBAC or credential      | that resource in every group, CRDs included
//	resources                                         |
//	verbs escalate, bind                              | writing roles and bindings beyond one's own rights
//	verb impersonate                                  | acting as any user, group or ServiceAccount
//	create on serviceaccounts/token                   | a token of a ServiceAccount, and so its rights
//	(a binding) roleRef to cluster-admin, admin, edit | the built-in admin-like roles (spec.AdminRole)
//	or system:*                                       |

// Privileged is a role meshd would copy, or bind a control plane's account to, that grants what a spec may
// hand out only with allow_privileged = true. Compute finds them; Check reports them against the spec.
type Privileged struct {
	Replicate    string // the replicate block whose source it is, or ""
	ControlPlane string // the control_plane block whose cluster_role it is, or ""
	Cluster      string // where the object was observed
	Object       string // e.g. "ClusterRole kubeblocks-manager"
	Grants       []string
	// Withheld: not allowed, so left out of the plan.
	Withheld bool
}

// Summaries of the privilege diagnostics of Check.
const (
	SummaryPrivilegedReplica = "Privileged object replicated"
	SummaryPrivilegedRole    = "Privileged cluster_role"
)

// resources that "*" apiGroups make broad: RBAC and credentials, which a same-named resource of another
// group would then also reach.
var sensitiveResources = []string{"secrets", "serviceaccounts", "serviceaccounts/token", "roles", "clusterroles",
	"rolebindings", "clusterrolebindings"}

// EscalatingGrants lists what a role's rules (a ClusterRole or Role), or a binding's roleRef (a
// ClusterRoleBinding or RoleBinding), grant that a spec may hand out only with allow_privileged = true; nil
// for anything else.
func EscalatingGrants(o kubeobj.Object) []string {
	switch o.Kind {
	case "ClusterRoleBinding", "RoleBinding":
		ref, _ := o.Content["roleRef"].(map[string]any)
		kind, _ := ref["kind"].(string)
		name, _ := ref["name"].(string)
		if kind == "ClusterRole" && spec.AdminRole(name) {
			return []string{fmt.Sprintf("binds its subjects to the built-in ClusterRole %s", name)}
		}
		return nil
	case "ClusterRole", "Role":
	default:
		return nil
	}
	rules, _ := o.Content["rules"].([]any)
	var out []string
	for i, r := range rules {
		rule, _ := r.(map[string]any)
		groups, resources, verbs := strs(rule["apiGroups"]), strs(rule["resources"]), strs(rule["verbs"])
		var why []string
		if slices.Contains(verbs, "*") {
			why = append(why, `every verb ("*")`)
		}
		if slices.Contains(resources, "*") {
			why = append(why, `every resource ("*")`)
		} else if slices.Contains(groups, "*") && slices.ContainsFunc(resources, func(res string) bool {
			return strings.Contains(res, "*") || slices.Contains(sensitiveResources, res)
		}) {
			why = append(why, `"*" apiGroups with RBAC, credential or wildcard resources`)
		}
		for _, v := range []string{"escalate", "bind", "impersonate"} {
			if slices.Contains(verbs, v) {
				why = append(why, v)
			}
		}
		core := slices.Contains(groups, "") || slices.Contains(groups, "*")
		token := slices.Contains(resources, "serviceaccounts/token") || slices.Contains(resources, "*/token")
		if core && token && slices.Contains(verbs, "create") {
			why = append(why, "create on serviceaccounts/token")
		}
		if len(why) > 0 {
			out = append(out, fmt.Sprintf("rule %d (%s): %s", i+1, ruleText(rule), strings.Join(why, ", ")))
		}
	}
	return out
}

// ruleText is a rule as a reader recognises it: verbs, resources (or URLs) and groups.
func ruleText(rule map[string]any) string {
	s := "verbs " + strings.Join(strs(rule["verbs"]), ",")
	if res := strs(rule["resources"]); len(res) > 0 {
		s += " on " + strings.Join(res, ",")
		groups := strs(rule["apiGroups"])
		for i, g := range groups {
			if g == "" {
				groups[i] = `""`
			}
		}
		s += " in apiGroups " + strings.Join(groups, ",")
	}
	if urls := strs(rule["nonResourceURLs"]); len(urls) > 0 {
		s += " on URLs " + strings.Join(urls, ",")
	}
	return s
}

// strs reads a JSON list of strings ([]any from the API server, []string from Go).
func strs(v any) []string {
	switch l := v.(type) {
	case []string:
		return slices.Clone(l)
	case []any:
		var out []string
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// privileges finds the replicated objects and control-plane roles that grant too much and, unless the mesh
// allows it, withholds them: such a source is planned as one that could not be read (its copies stay as
// they are), such a control plane as one left alone this time (its objects stay as they are). It runs
// before the replica and control-plane parts of Compute, on its own copies of their inputs.
func (c *computer) privileges() {
	if c.in.Destroy {
		return
	}
	allow := c.in.AllowPrivileged
	if in := c.in.Replicas; in != nil {
		sources := slices.Clone(in.Sources)
		withheld := false
		for i, src := range sources {
			if src.Object == nil {
				continue
			}
			grants := EscalatingGrants(*src.Object)
			if len(grants) == 0 {
				continue
			}
			c.plan.Privileged = append(c.plan.Privileged, Privileged{Replicate: src.Replicate, Cluster: src.Cluster,
				Object: src.Kind + " " + objectPath(src.Namespace, src.Name), Grants: grants, Withheld: !allow})
			if !allow {
				sources[i].Object, sources[i].Missing = nil, false
				withheld = true
			}
		}
		if withheld {
			in := *in
			in.Sources = sources
			c.in.Replicas = &in
		}
	}
	if in := c.in.ControlPlanes; in != nil {
		var kept []ControlPlaneObserved
		leftAlone := map[string]bool{}
		for _, p := range in.Planes {
			bad := false
			for _, dp := range p.DataPlanes {
				if dp.Role == nil {
					continue
				}
				if grants := EscalatingGrants(*dp.Role); len(grants) > 0 {
					bad = true
					c.plan.Privileged = append(c.plan.Privileged, Privileged{ControlPlane: p.Name, Cluster: dp.Cluster,
						Object: "ClusterRole " + dp.Role.Name, Grants: grants, Withheld: !allow})
				}
			}
			if !bad || allow {
				kept = append(kept, p)
				continue
			}
			leftAlone[KubeconfigAddress(p.Name)] = true
			for _, dp := range p.DataPlanes {
				leftAlone[CPAccountAddress(p.Name, dp.Cluster)] = true
			}
		}
		if len(leftAlone) > 0 {
			in := *in
			in.Planes = kept
			in.LeftAlone = map[string]bool{}
			for _, m := range []map[string]bool{c.in.ControlPlanes.LeftAlone, leftAlone} {
				for addr := range m {
					in.LeftAlone[addr] = true
				}
			}
			c.in.ControlPlanes = &in
		}
	}
}

// checkPrivileges reports what privileges found and the mesh does not allow, at the replicate block's
// from.name or the control plane's cluster_role.
func checkPrivileges(m *spec.Mesh, p *Plan) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, pr := range p.Privileged {
		if !pr.Withheld {
			continue
		}
		subject := m.DeclRange
		var summary, detail string
		grants := strings.Join(pr.Grants, "; ")
		switch {
		case pr.Replicate != "":
			if r := m.Replicate(pr.Replicate); r != nil {
				subject = r.AttrRange("from.name")
			}
			summary = SummaryPrivilegedReplica
			detail = fmt.Sprintf("Replicate %q copies %s of cluster %q, which grants what lets its holders reach beyond it: %s. "+
				"A copy would hand that to whoever is bound to it in the targets; meshd leaves the copies as they are. Narrow the rules in the source. %s",
				pr.Replicate, pr.Object, pr.Cluster, grants, m.AllowPrivilegedHint())
		default:
			if cp := m.ControlPlane(pr.ControlPlane); cp != nil {
				subject = cp.AttrRange("cluster_role")
			}
			summary = SummaryPrivilegedRole
			detail = fmt.Sprintf("Control plane %q binds its ServiceAccount in data plane %q to %s, which grants what lets its holders reach beyond it: %s. "+
				"Its token would be written into the control plane's Secret; meshd leaves the control plane's objects as they are. Bind a narrower ClusterRole. %s",
				pr.ControlPlane, pr.Cluster, pr.Object, grants, m.AllowPrivilegedHint())
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: subject.Ptr()})
	}
	return diags
}

// PrivilegesAsWarnings turns Check's privilege errors into warnings, for meshd: the objects concerned are
// withheld from the plan already, and the rest of the mesh goes on being kept.
func PrivilegesAsWarnings(diags hcl.Diagnostics) {
	for _, d := range diags {
		if d.Summary == SummaryPrivilegedReplica || d.Summary == SummaryPrivilegedRole {
			d.Severity = hcl.DiagWarning
		}
	}
}

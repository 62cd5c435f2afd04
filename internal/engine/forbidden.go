package engine

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/spec"
)

// A member whose identity lacks meshd's RBAC refuses every read, and each refusal used to be its own
// diagnostic ("Cannot reach cluster ... check that the cluster is up"), which sent users to the wrong
// place. collapseForbidden replaces the diagnostics that quote a Kubernetes authorization refusal with one
// per cluster that names each refused verb, resource and object and the command that prints the RBAC.

// forbiddenRe matches the API server's refusal as it reaches a diagnostic: `<resource> "<name>" is
// forbidden: User "<user>" cannot <verb> resource "<resource>" in API group "<group>" in the namespace
// "<ns>"` (or `at the cluster scope`), the text of k8s.io/apiserver's forbidden response.
var forbiddenRe = regexp.MustCompile(`(?:\S+ "([^"]*)" )?is forbidden: User "([^"]*)" cannot (\S+) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]+)"| at the cluster scope)`)

// clusterRe finds the member a diagnostic is about, as the engine's and providers' diagnostics name it.
var clusterRe = regexp.MustCompile(`[Cc]luster "([^"]+)"`)

// refusal is one request the API server refused.
type refusal struct{ user, verb, resource, group, namespace, name string }

func (r refusal) String() string {
	res := r.resource
	if r.group != "" {
		res += "." + r.group
	}
	s := r.verb + " " + res
	if r.name != "" {
		s += fmt.Sprintf(" %q", r.name)
	}
	// A Namespace's own requests carry its name as their namespace: it is still cluster-scoped.
	if r.namespace != "" && r.resource != "namespaces" {
		return s + " in namespace " + r.namespace
	}
	return s + " (cluster-scoped)"
}

// collapseForbidden returns diags with every diagnostic quoting an authorization refusal replaced by one
// diagnostic per cluster (at the first such diagnostic's position, with its severity or the worst of
// them). specPath is what the hint's meshctl rbac command names.
func collapseForbidden(diags hcl.Diagnostics, specPath string) hcl.Diagnostics {
	type group struct {
		first    *hcl.Diagnostic
		severity hcl.DiagnosticSeverity
		refused  []string
		users    []string
	}
	byCluster := map[string]*group{}
	var order []string
	var out hcl.Diagnostics
	for _, d := range diags {
		m := forbiddenRe.FindStringSubmatch(d.Detail)
		if m == nil {
			out = append(out, d)
			continue
		}
		cluster := ""
		if c := clusterRe.FindStringSubmatch(d.Detail); c != nil {
			cluster = c[1]
		}
		g := byCluster[cluster]
		if g == nil {
			g = &group{first: d, severity: d.Severity}
			byCluster[cluster] = g
			order = append(order, cluster)
		}
		if d.Severity == hcl.DiagError {
			g.severity = hcl.DiagError
		}
		r := refusal{name: m[1], user: m[2], verb: m[3], resource: m[4], group: m[5], namespace: m[6]}
		if s := r.String(); !slices.Contains(g.refused, s) {
			g.refused = append(g.refused, s)
		}
		if !slices.Contains(g.users, r.user) {
			g.users = append(g.users, r.user)
		}
		out = append(out, nil) // a placeholder keeps the cluster's diagnostic where its first one was
		if g.first == d {
			out[len(out)-1] = d
		}
	}
	for _, cluster := range order {
		g := byCluster[cluster]
		where, cmd := "a member cluster", "meshctl rbac --spec "+specPath+" --all"
		if cluster != "" {
			where, cmd = fmt.Sprintf("cluster %q", cluster), fmt.Sprintf("meshctl rbac --spec %s --cluster %s", specPath, cluster)
		}
		replacement := &hcl.Diagnostic{Severity: g.severity, Summary: "Permission missing in " + where,
			Subject: g.first.Subject, Context: g.first.Context,
			Detail: fmt.Sprintf("meshd's identity in %s (user %s) was refused by the API server's authorization: %s. "+
				"Nothing there was read or changed. Give the identity the RBAC this spec needs, with the cluster's admin credentials: "+
				"`%s | kubectl apply -f -` (docs/cli.md, \"meshctl rbac\").",
				where, strings.Join(quoteAll(g.users), ", "), strings.Join(g.refused, "; "), cmd)}
		for i, d := range out {
			if d == g.first {
				out[i] = replacement
			}
		}
	}
	return slices.DeleteFunc(out, func(d *hcl.Diagnostic) bool { return d == nil })
}

func quoteAll(ss []string) []string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return q
}

// specPath is what to pass meshctl's --spec for m: its file, or the directory of its files.
func specPath(m *spec.Mesh) string {
	if m == nil || len(m.Files) == 0 {
		return "SPEC"
	}
	var first string
	for name := range m.Files {
		if first == "" || name < first {
			first = name
		}
	}
	if len(m.Files) == 1 {
		return first
	}
	return filepath.Dir(first)
}

// applyClusterRe finds the member in an executor's error ("cluster tidb-2: ...").
var applyClusterRe = regexp.MustCompile(`cluster ([A-Za-z0-9][A-Za-z0-9._-]*): `)

// PermissionHint says what to do when an apply failed because a member's API server refused meshd's
// identity (its RBAC is missing or narrower than the spec needs): the meshctl rbac command for each
// cluster named in a refused change. It is "" when err holds no refusal.
func PermissionHint(err error, m *spec.Mesh) string {
	if err == nil {
		return ""
	}
	var clusters []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.Contains(line, " is forbidden: ") {
			continue
		}
		if c := applyClusterRe.FindStringSubmatch(line); c != nil && !slices.Contains(clusters, c[1]) {
			clusters = append(clusters, c[1])
		}
	}
	if len(clusters) == 0 {
		return ""
	}
	var cmds []string
	for _, c := range clusters {
		cmds = append(cmds, fmt.Sprintf("meshctl rbac --spec %s --cluster %s | kubectl apply -f -", specPath(m), c))
	}
	return fmt.Sprintf("The API server of %s refused meshd's identity. Give it the RBAC this spec needs, with each "+
		"cluster's admin credentials:\n  %s\n(docs/cli.md, \"meshctl rbac\"; a copied role is written with escalate on it by name, "+
		"which that output grants.)", strings.Join(quoteAll(clusters), ", "), strings.Join(cmds, "\n  "))
}

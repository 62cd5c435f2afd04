package access

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Subject is who the generated roles are bound to: the identity meshd uses in a cluster.
type Subject struct {
	Kind      string // User, Group or ServiceAccount
	Name      string
	Namespace string // ServiceAccount only
}

// ParseSubject reads "User:NAME", "Group:NAME" or "ServiceAccount:NAMESPACE/NAME".
func ParseSubject(s string) (Subject, error) {
	kind, name, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return Subject{}, fmt.Errorf("subject %q: want User:NAME, Group:NAME or ServiceAccount:NAMESPACE/NAME", s)
	}
	switch kind {
	case "User", "Group":
		return Subject{Kind: kind, Name: name}, nil
	case "ServiceAccount":
		ns, n, ok := strings.Cut(name, "/")
		if !ok || ns == "" || n == "" {
			return Subject{}, fmt.Errorf("subject %q: a ServiceAccount is ServiceAccount:NAMESPACE/NAME", s)
		}
		return Subject{Kind: kind, Namespace: ns, Name: n}, nil
	}
	return Subject{}, fmt.Errorf("subject %q: the kind is User, Group or ServiceAccount, not %q", s, kind)
}

func (s Subject) String() string {
	if s.Kind == "ServiceAccount" {
		return s.Kind + ":" + s.Namespace + "/" + s.Name
	}
	return s.Kind + ":" + s.Name
}

// RBACDocument says what the rendered roles are for: the cluster (for the header comment), the name of
// every Role, ClusterRole and binding, and the subject they are bound to.
type RBACDocument struct {
	Cluster string // "" for the management cluster
	For     string // the header's description, e.g. `member cluster "tidb-1" of mesh "tidb"`
	Name    string // of every Role, ClusterRole and binding, e.g. "meshd-tidb"
	Subject Subject
}

// Merge folds rules into the fewest that grant exactly the same: the verbs of each (scope, group,
// resource, name) are united, and then names with the same verbs share a rule. A rule without names
// stays apart from the named ones (it grants the verbs on every object of the scope). The result is
// sorted by namespace, group, resource, unnamed first, then verbs.
func Merge(rules []Rule) []Rule {
	type objKey struct{ ns, group, resource, name string }
	verbs := map[objKey]map[string]bool{}
	whys := map[objKey][]string{}
	cluster := map[objKey]string{}
	for _, r := range rules {
		names := r.Names
		if len(names) == 0 {
			names = []string{""}
		}
		for _, n := range names {
			k := objKey{r.Namespace, r.APIGroup, r.Resource, n}
			if verbs[k] == nil {
				verbs[k] = map[string]bool{}
			}
			for _, v := range r.Verbs {
				verbs[k][v] = true
			}
			if r.Why != "" && !slices.Contains(whys[k], r.Why) {
				whys[k] = append(whys[k], r.Why)
			}
			cluster[k] = r.Cluster
		}
	}
	// A name whose verbs an unnamed rule of its resource already grants needs no rule of its own.
	for k, vs := range verbs {
		if k.name == "" {
			continue
		}
		all := verbs[objKey{k.ns, k.group, k.resource, ""}]
		for v := range vs {
			if all[v] {
				delete(vs, v)
			}
		}
		if len(vs) == 0 {
			delete(verbs, k)
		}
	}
	type ruleKey struct{ ns, group, resource, verbs string }
	byRule := map[ruleKey]*Rule{}
	var order []ruleKey
	keys := make([]objKey, 0, len(verbs))
	for k := range verbs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { // the comments are joined in this order: make it one
		a, b := keys[i], keys[j]
		return a.ns+"\x00"+a.group+"\x00"+a.resource+"\x00"+a.name < b.ns+"\x00"+b.group+"\x00"+b.resource+"\x00"+b.name
	})
	for _, k := range keys {
		vs := verbs[k]
		list := sortedKeys(vs)
		rk := ruleKey{k.ns, k.group, k.resource, strings.Join(list, ",")}
		if k.name == "" {
			rk.verbs = "*unnamed*" + rk.verbs // unnamed rules never share with named ones
		}
		r := byRule[rk]
		if r == nil {
			r = &Rule{Cluster: cluster[k], Namespace: k.ns, APIGroup: k.group, Resource: k.resource, Verbs: list}
			byRule[rk] = r
			order = append(order, rk)
		}
		if k.name != "" {
			r.Names = append(r.Names, k.name)
		}
		for _, w := range whys[k] {
			if !strings.Contains(r.Why, w) {
				r.Why = joinSentences(r.Why, w)
			}
		}
	}
	out := make([]Rule, 0, len(order))
	for _, rk := range order {
		r := *byRule[rk]
		sort.Strings(r.Names)
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case a.Namespace != b.Namespace:
			return a.Namespace < b.Namespace
		case a.APIGroup != b.APIGroup:
			return a.APIGroup < b.APIGroup
		case a.Resource != b.Resource:
			return a.Resource < b.Resource
		case (len(a.Names) == 0) != (len(b.Names) == 0):
			return len(a.Names) == 0
		}
		return strings.Join(a.Verbs, ",") < strings.Join(b.Verbs, ",")
	})
	return out
}

func joinSentences(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// RenderRBAC writes rules (merged first) as multi-document YAML that `kubectl apply -f -` accepts: a Role
// and RoleBinding per namespace, and a ClusterRole and ClusterRoleBinding for the cluster-scoped rules,
// each rule preceded by a comment saying why meshd needs it.
func RenderRBAC(b *strings.Builder, doc RBACDocument, rules []Rule) {
	rules = Merge(rules)
	byNS := map[string][]Rule{}
	var namespaces []string
	for _, r := range rules {
		if _, ok := byNS[r.Namespace]; !ok {
			namespaces = append(namespaces, r.Namespace)
		}
		byNS[r.Namespace] = append(byNS[r.Namespace], r)
	}
	sort.Strings(namespaces) // "" (cluster scope) first
	fmt.Fprintf(b, "# What meshd needs in %s, generated by meshctl rbac from the spec; bound to %s.\n", doc.For, doc.Subject)
	if len(rules) == 0 {
		b.WriteString("# Nothing: the spec gives meshd no work in this cluster.\n")
		return
	}
	for _, ns := range namespaces {
		roleKind, bindingKind := "Role", "RoleBinding"
		if ns == "" {
			roleKind, bindingKind = "ClusterRole", "ClusterRoleBinding"
		}
		writeHead(b, doc, roleKind, ns)
		b.WriteString("rules:\n")
		for _, r := range byNS[ns] {
			for _, line := range wrap(r.Why, 110) {
				fmt.Fprintf(b, "  # %s\n", line)
			}
			fmt.Fprintf(b, "  - apiGroups: [%s]\n    resources: [%s]\n", quote(r.APIGroup), quote(r.Resource))
			if len(r.Names) > 0 {
				fmt.Fprintf(b, "    resourceNames: [%s]\n", quote(r.Names...))
			}
			fmt.Fprintf(b, "    verbs: [%s]\n", quote(r.Verbs...))
		}
		writeHead(b, doc, bindingKind, ns)
		fmt.Fprintf(b, "roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: %s\n  name: %s\nsubjects:\n", roleKind, doc.Name)
		s := doc.Subject
		if s.Kind == "ServiceAccount" {
			fmt.Fprintf(b, "  - kind: ServiceAccount\n    name: %s\n    namespace: %s\n", quote(s.Name), quote(s.Namespace))
		} else {
			fmt.Fprintf(b, "  - apiGroup: rbac.authorization.k8s.io\n    kind: %s\n    name: %s\n", s.Kind, quote(s.Name))
		}
	}
}

// writeHead starts a document: the separator, the cluster it is for, and the object's header.
func writeHead(b *strings.Builder, doc RBACDocument, kind, namespace string) {
	b.WriteString("---\n")
	if doc.Cluster != "" {
		fmt.Fprintf(b, "# cluster: %s\n", doc.Cluster)
	}
	fmt.Fprintf(b, "apiVersion: rbac.authorization.k8s.io/v1\nkind: %s\nmetadata:\n  name: %s\n", kind, doc.Name)
	if namespace != "" {
		fmt.Fprintf(b, "  namespace: %s\n", namespace)
	}
}

// quote renders YAML double-quoted strings (names may hold ':' as in system:..., which plain YAML would
// misread).
func quote(ss ...string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(out, ", ")
}

// wrap cuts a comment into lines of at most width characters, at spaces.
func wrap(s string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, w := range strings.Fields(s) {
		if cur.Len() > 0 && cur.Len()+1+len(w) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(w)
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

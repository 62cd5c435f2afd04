// Package access describes the permissions meshd needs, as data: Kubernetes RBAC rules per member cluster
// and IAM policy statements per AWS identity. The kinds declare them (plan.KindInfo's RBAC and IAM), the
// plan package collects them for a spec, and this package renders them (YAML a `kubectl apply -f -`
// accepts, an IAM policy document). It imports no meshd package.
package access

// Rule is one Kubernetes RBAC permission meshd needs in a member cluster. Namespace "" is a cluster-scoped
// rule (a ClusterRole); anything else goes into a Role in that namespace. Names, when set, become the
// rule's resourceNames. Why is printed as a comment above the rule: what meshd does with it, and, for a rule
// without names, why it cannot be named.
type Rule struct {
	Cluster   string
	Namespace string
	APIGroup  string // "" is the core group
	Resource  string // plural, with "/subresource" when it is one, e.g. "serviceaccounts/token"
	Names     []string
	Verbs     []string
	Why       string
}

// Statement is one IAM policy statement. Resources default to "*" when empty; Condition is the statement's
// condition block (operator -> key -> values). Why documents the statement for tests and docs (IAM policy
// JSON has no comments; the renderer derives the Sid from it: the words before its first colon or full
// stop). Role names the identity that makes the calls: a member's assume_role ARN, or "" for meshd's own
// (default) credentials; a policy is printed for one identity at a time (plan.IAMOf).
type Statement struct {
	Sid       string
	Actions   []string
	Resources []string
	Condition map[string]map[string][]string
	Why       string
	Role      string
}

package cli

import (
	"fmt"
	"strings"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
)

// Defaults of meshctl rbac: the group a member's kubeconfig identity is put in (on EKS, by an access
// entry), and the daemon's ServiceAccount and state in the management cluster (deploy/meshd.yaml).
const (
	defaultMemberSubject     = "Group:meshd"
	defaultManagementSubject = "ServiceAccount:meshd-system/meshd"
	defaultStateSecret       = "meshd-system/meshd-state"
	defaultLeaseNamespace    = "meshd-system"
)

// rbac prints the Kubernetes RBAC meshd needs, derived from the spec: in one member (--cluster), every
// member (--all), or the management cluster (--management).
func (a *App) rbac(f rbacFlags) int {
	if n := count(f.cluster != "", f.all, f.management); n != 1 {
		return a.errorf("meshctl rbac needs exactly one of --cluster NAME, --all or --management")
	}
	subjectText := f.subject
	if subjectText == "" {
		subjectText = defaultMemberSubject
		if f.management {
			subjectText = defaultManagementSubject
		}
	}
	subject, err := access.ParseSubject(subjectText)
	if err != nil {
		return a.errorf("--subject: %v", err)
	}
	m, ok := a.loadSpec(f.spec)
	if !ok {
		return ExitError
	}
	var b strings.Builder
	switch {
	case f.management:
		ns, name, err := splitSecret(f.stateSecret)
		if err != nil {
			return a.errorf("%v", err)
		}
		lease := f.leaseName
		if lease == "" {
			lease = "meshd-" + m.Name
		}
		access.RenderRBAC(&b, access.RBACDocument{For: fmt.Sprintf("the management cluster of mesh %q", m.Name), Name: "meshd",
			Subject: subject}, managementRules(ns, name, f.leaseNamespace, lease))
	case f.all:
		for i, cl := range m.Clusters {
			if i > 0 {
				b.WriteString("---\n")
			}
			renderMember(&b, m, cl.Name, subject)
		}
	default:
		if m.Cluster(f.cluster) == nil {
			return a.errorf("--cluster %q is not a cluster of this mesh (%s)", f.cluster, m.ClusterList())
		}
		renderMember(&b, m, f.cluster, subject)
	}
	fmt.Fprint(a.Stdout, b.String())
	return ExitOK
}

func renderMember(b *strings.Builder, m *spec.Mesh, cluster string, subject access.Subject) {
	access.RenderRBAC(b, access.RBACDocument{Cluster: cluster, For: fmt.Sprintf("member cluster %q of mesh %q", cluster, m.Name),
		Name: "meshd-" + m.Name, Subject: subject}, plan.RBACOf(m, cluster))
}

// managementRules are what the daemon does in the management cluster: hold the leader Lease, lock the
// state with its own Lease, and read and write the state Secret.
func managementRules(stateNS, stateName, leaseNS, lease string) []access.Rule {
	const coordination = "coordination.k8s.io"
	lock := stateName + "-lock"
	rules := []access.Rule{
		{Namespace: leaseNS, APIGroup: coordination, Resource: "leases", Names: []string{lease}, Verbs: []string{"get", "update"},
			Why: "The leader Lease (--leader-elect): read and renewed by the replicas."},
		{Namespace: stateNS, APIGroup: coordination, Resource: "leases", Names: []string{lock}, Verbs: []string{"get", "update"},
			Why: "The state lock's Lease: taken, renewed and released around each pass that writes the state."},
		{Namespace: stateNS, Resource: "secrets", Names: []string{stateName}, Verbs: []string{"get", "update"},
			Why: "The state Secret: read at each pass, written after each apply."},
		{Namespace: stateNS, Resource: "secrets", Verbs: []string{"create"},
			Why: "Kubernetes cannot authorize a create by name: the first apply creates the state Secret " + stateName + "."},
	}
	leasesIn := map[string][]string{leaseNS: {lease}}
	leasesIn[stateNS] = append(leasesIn[stateNS], lock)
	for ns, names := range leasesIn {
		rules = append(rules, access.Rule{Namespace: ns, APIGroup: coordination, Resource: "leases", Verbs: []string{"create"},
			Why: "Kubernetes cannot authorize a create by name: the first replica creates the Leases named below (" + strings.Join(names, ", ") + ")."})
	}
	return rules
}

func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

package cli

import (
	"flag"
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
func (a *App) rbac(args []string) int {
	var c common
	fs := flag.NewFlagSet("meshctl rbac", flag.ContinueOnError)
	fs.SetOutput(a.Stderr)
	fs.StringVar(&c.spec, "spec", "", "spec file or directory of *.hcl files")
	cluster := fs.String("cluster", "", "the member cluster to print the RBAC of")
	all := fs.Bool("all", false, "print every member's RBAC (each document names its cluster)")
	management := fs.Bool("management", false, "print what the daemon needs in the management cluster: its Leases and state Secret")
	subjectFlag := fs.String("subject", "", "who the roles are bound to: User:NAME, Group:NAME or ServiceAccount:NAMESPACE/NAME (default "+
		defaultMemberSubject+", or "+defaultManagementSubject+" with --management)")
	stateSecret := fs.String("state-secret", defaultStateSecret, "with --management: the daemon's --state-secret (NAMESPACE/NAME)")
	leaseNamespace := fs.String("leader-elect-namespace", defaultLeaseNamespace, "with --management: the daemon's --leader-elect-namespace")
	leaseName := fs.String("leader-elect-name", "", "with --management: the daemon's --leader-elect-name (default meshd-<mesh>)")
	if err := parseInterspersed(fs, args); err != nil {
		return ExitError
	}
	if fs.NArg() > 0 {
		return a.errorf("meshctl rbac takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	if n := count(*cluster != "", *all, *management); n != 1 {
		return a.errorf("meshctl rbac needs exactly one of --cluster NAME, --all or --management")
	}
	subjectText := *subjectFlag
	if subjectText == "" {
		subjectText = defaultMemberSubject
		if *management {
			subjectText = defaultManagementSubject
		}
	}
	subject, err := access.ParseSubject(subjectText)
	if err != nil {
		return a.errorf("--subject: %v", err)
	}
	m, ok := a.loadSpec(c.spec)
	if !ok {
		return ExitError
	}
	var b strings.Builder
	switch {
	case *management:
		ns, name, err := splitSecret(*stateSecret)
		if err != nil {
			return a.errorf("%v", err)
		}
		lease := *leaseName
		if lease == "" {
			lease = "meshd-" + m.Name
		}
		access.RenderRBAC(&b, access.RBACDocument{For: fmt.Sprintf("the management cluster of mesh %q", m.Name), Name: "meshd",
			Subject: subject}, managementRules(ns, name, *leaseNamespace, lease))
	case *all:
		for i, cl := range m.Clusters {
			if i > 0 {
				b.WriteString("---\n")
			}
			renderMember(&b, m, cl.Name, subject)
		}
	default:
		if m.Cluster(*cluster) == nil {
			return a.errorf("--cluster %q is not a cluster of this mesh (%s)", *cluster, m.ClusterList())
		}
		renderMember(&b, m, *cluster, subject)
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

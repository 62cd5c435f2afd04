package spec

import (
	"fmt"
	"strings"
)

// Privilege checks. meshd holds credentials to every member cluster that can write Secrets, roles and
// bindings and mint ServiceAccount tokens; the spec steers them. Without allow_privileged = true in the mesh
// block a spec cannot use them to hand out more than it could grant anyway:
//
//   - no replicate block reads from or writes into a kube-* namespace, where the cluster keeps its own
//     credentials (ServiceAccount tokens, bootstrap tokens, cloud credentials of its controllers) and where
//     its own components trust what they find;
//   - no control_plane binds its account to a built-in admin-like ClusterRole (AdminRole), which would put
//     an admin token of each data plane into a Secret of the control plane.
//
// What a role grants is known only from the cluster: the planner checks the rules of replicated roles and
// of each control plane's cluster_role as observed (plan/privilege.go).

// ProtectedNamespace reports whether a namespace is one of Kubernetes' own (kube-system, kube-public,
// kube-node-lease, and any other kube-*), which replicate blocks may not read from or write into.
func ProtectedNamespace(ns string) bool { return strings.HasPrefix(ns, "kube-") }

// AdminRole reports whether a ClusterRole name is a built-in role that grants (close to) everything:
// cluster-admin, admin and edit (which read every Secret and, with admin, write roles and bindings of a
// namespace) and every system:* role (the API server's own, for nodes, controllers and the scheduler).
func AdminRole(name string) bool {
	switch name {
	case "cluster-admin", "admin", "edit":
		return true
	}
	return strings.HasPrefix(name, "system:")
}

// AllowPrivilegedHint is the end of every privilege diagnostic's detail: how to go on if the grant is meant.
func (m *Mesh) AllowPrivilegedHint() string {
	return fmt.Sprintf("If this is intended, set allow_privileged = true in the mesh block (%s); whoever can edit the spec can then grant it.", pos(m.DeclRange))
}

// checkPrivileges reports, unless the mesh allows it, replicate blocks that touch a kube-* namespace and
// control planes bound to an admin-like role.
func (d *decoder) checkPrivileges() {
	m := d.m
	if m.AllowPrivileged {
		return
	}
	for _, r := range m.Replicates {
		if !r.Namespaced() {
			continue
		}
		_, fromSet := r.Attrs["from.namespace"]
		if fromSet && ProtectedNamespace(r.FromNamespace) {
			into := ""
			if _, set := r.Attrs["namespace"]; !set {
				into = fmt.Sprintf(", and so into %s of each target (namespace is not set)", r.FromNamespace)
			}
			d.errorf(r.AttrRange("from.namespace"), "Replication from a kube-* namespace",
				"Replicate %q copies %s %s/%s out of cluster %q%s. Kubernetes keeps the cluster's own credentials in kube-* namespaces (ServiceAccount tokens, bootstrap tokens, its controllers' cloud credentials): a copy hands them to whoever can read the target namespace. %s",
				r.Name, r.FromKind, r.FromNamespace, r.FromName, r.FromCluster, into, m.AllowPrivilegedHint())
		}
		if _, set := r.Attrs["namespace"]; set && ProtectedNamespace(r.Namespace) {
			d.errorf(r.AttrRange("namespace"), "Replication into a kube-* namespace",
				"Replicate %q writes %s %s into namespace %s of its targets. The cluster's own components trust what is in kube-* namespaces (kube-system's ConfigMaps configure CoreDNS, kube-proxy and authentication; its RoleBindings grant to system accounts): a copy there changes the cluster's behaviour or rights. %s",
				r.Name, r.FromKind, r.FromName, r.Namespace, m.AllowPrivilegedHint())
		}
	}
	for _, cp := range m.ControlPlanes {
		if cp.ClusterRole != "" && AdminRole(cp.ClusterRole) {
			d.errorf(cp.AttrRange("cluster_role"), "Admin-like ClusterRole",
				"Control plane %q binds its ServiceAccount in each data plane to the built-in ClusterRole %q and writes that account's token into Secret %s/%s of cluster %q: whoever can read that Secret, or edit the spec, holds %s in every data plane. Bind a ClusterRole that grants what the operator needs (KubeBlocks: its manager's role). %s",
				cp.Name, cp.ClusterRole, cp.SecretNamespace, cp.SecretName, cp.Cluster, cp.ClusterRole, m.AllowPrivilegedHint())
		}
	}
}

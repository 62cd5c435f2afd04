package plan

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/spec"
)

// RBACOf is what the identity meshd uses in one member cluster needs for the spec m: every kind's RBAC,
// list and watch for what the daemon watches there (plan.Watch), and creating Events in each namespace
// where meshd writes (the daemon records its corrections on the object it corrected). Rules are not
// merged: access.Merge does that when they are rendered.
func RBACOf(m *spec.Mesh, cluster string) []access.Rule {
	var out []access.Rule
	for _, k := range Kinds() {
		if k.RBAC == nil {
			continue
		}
		for _, r := range k.RBAC(m) {
			if r.Cluster == cluster {
				out = append(out, r)
			}
		}
	}
	for _, w := range WatchesOf(m, cluster) {
		out = append(out, watchRule(w))
	}
	eventsIn := map[string]bool{}
	for _, r := range out {
		if writes(r.Verbs) {
			ns := r.Namespace
			if ns == "" {
				ns = "default" // where an Event about a cluster-scoped object goes (daemon.KubeEvents)
			}
			eventsIn[ns] = true
		}
	}
	for ns := range eventsIn {
		out = append(out, access.Rule{Cluster: cluster, Namespace: ns, Resource: "events", Verbs: []string{"create"},
			Why: "meshd (the daemon) records an Event on each object it corrects. An Event's name is generated, so create cannot be named."})
	}
	return out
}

// watchRule is what a daemon watch needs: list and watch, named when the watch is by name (the API server
// authorizes a list or watch with the field selector metadata.name=<name> against resourceNames).
func watchRule(w Watch) access.Rule {
	gv, _ := schema.ParseGroupVersion(w.APIVersion) // TestEveryWatchCanBeStarted checks every watch's
	r := access.Rule{Cluster: w.Cluster, Namespace: w.Namespace, APIGroup: gv.Group, Resource: w.Resource, Verbs: []string{"list", "watch"}}
	if w.Name != "" {
		r.Names = []string{w.Name}
		r.Why = "meshd (the daemon) watches these objects by name (field selector metadata.name), so that drift is corrected at once."
	} else {
		r.Why = "meshd (the daemon) watches the objects carrying its label here: a watch by label cannot be named."
	}
	return r
}

func writes(verbs []string) bool {
	for _, v := range verbs {
		switch v {
		case "create", "update", "patch", "delete":
			return true
		}
	}
	return false
}

// rbacRule is a Kubernetes permission of a kind in a member cluster.
func rbacRule(cluster, namespace, group, resource string, names []string, why string, verbs ...string) access.Rule {
	return access.Rule{Cluster: cluster, Namespace: namespace, APIGroup: group, Resource: resource, Names: names, Verbs: verbs, Why: why}
}

// Why-texts shared by the kinds.
const (
	whyCreate = "Kubernetes cannot authorize a create by name (the name is in the request's body), so create is granted for the whole resource in this scope; meshd creates only the objects named in the rules below."
)

// namespaceRule lets meshd check that a namespace it writes into exists (it never creates one).
func namespaceRule(cluster, namespace string) access.Rule {
	return rbacRule(cluster, "", "", "namespaces", []string{namespace},
		"meshd checks that the namespaces it writes into exist (it never creates one).", "get")
}

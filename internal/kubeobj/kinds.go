// Package kubeobj is meshd's model of the Kubernetes objects it owns, of any kind, as plain data: which
// kinds there are (a table, not a type per kind), an Object that holds the fields meshd sets, a Diff that
// compares only those, a summary that is safe to show for Secrets, and a per-cluster Client that writes
// them through client-go's dynamic client without ever touching an object that is not meshd's.
package kubeobj

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Kind is one kind of object meshd can own.
type Kind struct {
	Name       string // e.g. "Secret"
	GVR        schema.GroupVersionResource
	Namespaced bool
	// Content are the top-level fields, besides metadata, that are the object's content: what meshd sets
	// and compares. Status and server-set fields are never content.
	Content []string
	// Exact are the content fields compared key for key (data maps, whose keys are the content): a key
	// someone else added is drift there. Other maps are compared as subsets of what meshd set, so that
	// fields the server defaults never show as drift.
	Exact []string
	// ReplaceOn are the paths of content (dot-separated) that the API server (or, for custom resources, the
	// owning controller's webhook) refuses to change in place: a change needs delete and create.
	ReplaceOn []string
	// Immutable: the kind has the "immutable" field, after which its content cannot change in place.
	Immutable bool
	// Sensitive: the content is secret; only key names and a hash are ever shown.
	Sensitive bool
	// Grants: the content grants permissions (a role's rules). The API server lets an identity write such
	// content only if it holds every permission granted, or holds "escalate" on the object; escalate can be
	// given by name (meshctl rbac does), but a create has no name when it is authorized, so Create makes
	// such an object empty and then writes its content as an update, which the named escalate covers.
	Grants bool
}

// APIVersion is the kind's apiVersion, e.g. "v1" or "rbac.authorization.k8s.io/v1".
func (k Kind) APIVersion() string { return k.GVR.GroupVersion().String() }

var (
	core = schema.GroupVersion{Version: "v1"}
	rbac = schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"}
	// elbv2 is the AWS Load Balancer Controller's API (internal/sandbox/crds/targetgroupbinding.yaml).
	elbv2 = schema.GroupVersion{Group: "elbv2.k8s.aws", Version: "v1beta1"}
)

var kinds = map[string]Kind{
	"Secret": {Name: "Secret", GVR: core.WithResource("secrets"), Namespaced: true,
		Content: []string{"type", "data", "immutable"}, Exact: []string{"data"},
		ReplaceOn: []string{"type"}, Immutable: true, Sensitive: true},
	"ConfigMap": {Name: "ConfigMap", GVR: core.WithResource("configmaps"), Namespaced: true,
		Content: []string{"data", "binaryData", "immutable"}, Exact: []string{"data", "binaryData"},
		Immutable: true},
	// Namespace is read only (meshd checks that a copy's namespace exists; it never creates one).
	"Namespace":      {Name: "Namespace", GVR: core.WithResource("namespaces")},
	"ServiceAccount": {Name: "ServiceAccount", GVR: core.WithResource("serviceaccounts"), Namespaced: true},
	"ClusterRole": {Name: "ClusterRole", GVR: rbac.WithResource("clusterroles"),
		Content: []string{"rules", "aggregationRule"}, Grants: true},
	"Role": {Name: "Role", GVR: rbac.WithResource("roles"), Namespaced: true,
		Content: []string{"rules"}, Grants: true},
	// A binding's roleRef cannot be changed once created (the API server's validation).
	"ClusterRoleBinding": {Name: "ClusterRoleBinding", GVR: rbac.WithResource("clusterrolebindings"),
		Content: []string{"roleRef", "subjects"}, ReplaceOn: []string{"roleRef"}},
	"RoleBinding": {Name: "RoleBinding", GVR: rbac.WithResource("rolebindings"), Namespaced: true,
		Content: []string{"roleRef", "subjects"}, ReplaceOn: []string{"roleRef"}},
	// The load balancer controller's webhook refuses to change these of a TargetGroupBinding (no webhook
	// runs in the test API servers, so it is not enforced there).
	"TargetGroupBinding": {Name: "TargetGroupBinding", GVR: elbv2.WithResource("targetgroupbindings"), Namespaced: true,
		Content:   []string{"spec"},
		ReplaceOn: []string{"spec.targetGroupARN", "spec.targetType", "spec.ipAddressType", "spec.vpcID"}},
}

// ErrUnsupportedKind is wrapped by the error for a kind meshd does not manage.
var ErrUnsupportedKind = errors.New("unsupported kind")

// Lookup returns the kind named name (e.g. "Secret").
func Lookup(name string) (Kind, error) {
	k, ok := kinds[name]
	if !ok {
		return Kind{}, fmt.Errorf("%w %q: meshd manages %s", ErrUnsupportedKind, name, strings.Join(KindNames(), ", "))
	}
	return k, nil
}

// KindNames are the names of the supported kinds, sorted.
func KindNames() []string {
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (k Kind) isContent(field string) bool { return slices.Contains(k.Content, field) }

func (k Kind) isExact(field string) bool { return slices.Contains(k.Exact, field) }

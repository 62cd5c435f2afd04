package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/spec"
)

// TestCollapseForbidden: the diagnostics quoting the API server's refusals become one per cluster, at the
// first one's place, naming each refused verb, resource and object and the meshctl rbac command; the
// others are kept as they are.
func TestCollapseForbidden(t *testing.T) {
	at := func(line int) *hcl.Range { return &hcl.Range{Filename: "mesh.hcl", Start: hcl.Pos{Line: line}} }
	diags := hcl.Diagnostics{
		{Severity: hcl.DiagError, Summary: "Cannot reach cluster", Subject: at(9), Detail: `Cluster "tidb-1" (kube context "a"): reading Service kube-system/across-cluster-dns-tcp: services "across-cluster-dns-tcp" is forbidden: User "meshd" cannot get resource "services" in API group "" in the namespace "kube-system". Check that the cluster is up.`},
		{Severity: hcl.DiagWarning, Summary: "Replicated object missing", Subject: at(30), Detail: `Replicate "x": the source is gone.`},
		{Severity: hcl.DiagError, Summary: "Cannot reach cluster", Subject: at(16), Detail: `Cluster "tidb-2" (kube context "b"): reading: services "across-cluster-dns-tcp" is forbidden: User "meshd" cannot get resource "services" in API group "" in the namespace "kube-system".`},
		{Severity: hcl.DiagWarning, Summary: "Cannot read a replicated object", Subject: at(30), Detail: `Replicate "tidb-ca": reading Secret pingcap/ca in cluster "tidb-1": secrets "ca" is forbidden: User "meshd" cannot get resource "secrets" in API group "" in the namespace "pingcap". Its copy is left.`},
		{Severity: hcl.DiagError, Summary: "Cannot read", Subject: at(40), Detail: `control plane "cp" in cluster "tidb-1": namespaces "kb" is forbidden: User "meshd" cannot get resource "namespaces" in API group "" in the namespace "kb"`},
		{Severity: hcl.DiagError, Summary: "Cannot read", Subject: at(40), Detail: `in cluster "tidb-1": clusterroles.rbac.authorization.k8s.io "r" is forbidden: User "meshd" cannot get resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope`},
	}
	got := collapseForbidden(diags, "specs/x")
	var summaries []string
	for _, d := range got {
		summaries = append(summaries, d.Summary+" @"+string(rune('0'+d.Subject.Start.Line/10))+string(rune('0'+d.Subject.Start.Line%10)))
	}
	want := []string{"Permission missing in cluster \"tidb-1\" @09", "Replicated object missing @30", "Permission missing in cluster \"tidb-2\" @16"}
	if diff := cmp.Diff(want, summaries); diff != "" {
		t.Fatalf("diagnostics (-want +got):\n%s", diff)
	}
	d := got[0]
	if d.Severity != hcl.DiagError {
		t.Errorf("severity %v, want error", d.Severity)
	}
	for _, part := range []string{`user "meshd"`, `get services "across-cluster-dns-tcp" in namespace kube-system`,
		`get secrets "ca" in namespace pingcap`, `get namespaces "kb" (cluster-scoped)`,
		`get clusterroles.rbac.authorization.k8s.io "r" (cluster-scoped)`, "meshctl rbac --spec specs/x --cluster tidb-1"} {
		if !strings.Contains(d.Detail, part) {
			t.Errorf("the diagnostic does not say %q:\n%s", part, d.Detail)
		}
	}
	if strings.Contains(got[2].Detail, "secrets") {
		t.Errorf("tidb-2's diagnostic names tidb-1's refusals:\n%s", got[2].Detail)
	}
	if len(collapseForbidden(diags[1:2], "x")) != 1 {
		t.Error("a diagnostic without a refusal was dropped")
	}
}

// TestPermissionHint: an apply that failed on refusals names each refused cluster's meshctl rbac command;
// other failures get no hint.
func TestPermissionHint(t *testing.T) {
	err := errors.New("2 change(s) failed, 0 skipped:\n" +
		`  replica[r:tidb-2]: cluster tidb-2: creating ClusterRole x: clusterroles.rbac.authorization.k8s.io "x" is forbidden: user "meshd" (groups=["meshd"]) is attempting to grant RBAC permissions not currently held` + "\n" +
		`  corefile[tidb-3]: cluster tidb-3: updating ConfigMap kube-system/coredns: configmaps "coredns" is forbidden: User "meshd" cannot update resource "configmaps" in API group "" in the namespace "kube-system"` + "\n" +
		`  route[tidb-1:rtb-1:10.2.0.0/16]: RouteAlreadyExists`)
	m := &spec.Mesh{Files: map[string][]byte{"specs/a/x.hcl": nil, "specs/a/y.hcl": nil}}
	hint := PermissionHint(err, m)
	for _, part := range []string{`"tidb-2", "tidb-3"`, "meshctl rbac --spec specs/a --cluster tidb-2 |", "meshctl rbac --spec specs/a --cluster tidb-3 |"} {
		if !strings.Contains(hint, part) {
			t.Errorf("the hint does not say %q:\n%s", part, hint)
		}
	}
	if strings.Contains(hint, "tidb-1") {
		t.Errorf("the hint names a cluster whose change failed for another reason:\n%s", hint)
	}
	if h := PermissionHint(errors.New("route[x]: RouteAlreadyExists"), m); h != "" {
		t.Errorf("a hint for a failure without a refusal: %s", h)
	}
}

package engine

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
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

package plan_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

func role(t *testing.T, kind, name string, rules ...map[string]any) kubeobj.Object {
	t.Helper()
	var rs []any
	for _, r := range rules {
		rs = append(rs, r)
	}
	ns := ""
	if kind == "Role" {
		ns = "pingcap"
	}
	o, err := kubeobj.New(kind, ns, name, map[string]any{"rules": rs})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// rule is a policy rule as the API server returns it (JSON lists).
func rule(groups, resources, verbs string) map[string]any {
	list := func(s string) []any {
		var out []any
		for _, e := range strings.Split(s, " ") {
			if e == `""` {
				e = ""
			}
			out = append(out, e)
		}
		return out
	}
	return map[string]any{"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}
}

func TestEscalatingGrants(t *testing.T) {
	binding := func(kind, ref string) kubeobj.Object {
		o, _ := kubeobj.New(kind, "", "b", map[string]any{"roleRef": map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ref}})
		return o
	}
	urls := map[string]any{"nonResourceURLs": []any{"*"}, "verbs": []any{"*"}}
	cases := map[string]struct {
		reason string
		obj    kubeobj.Object
		want   []string
	}{
		"narrow": {
			reason: "A role for Pods of one operator grants nothing that escalates.",
			obj: role(t, "ClusterRole", "pods", rule(`""`, "pods pods/log", "get list watch"),
				rule("apps.kubeblocks.io", "clusters", "get"), rule(`""`, "serviceaccounts", "get create")),
		},
		"cluster-admin's rules": {
			reason: "Every verb on every resource, and on every URL.",
			obj:    role(t, "ClusterRole", "root", rule("*", "*", "*"), urls),
			want: []string{
				`rule 1 (verbs * on * in apiGroups *): every verb ("*"), every resource ("*")`,
				`rule 2 (verbs * on URLs *): every verb ("*")`,
			},
		},
		"every verb on one group's resources": {
			reason: "A wildcard verb includes escalate, bind and impersonate where they apply.",
			obj:    role(t, "Role", "ops", rule("apps", "deployments", "*")),
			want:   []string{`rule 1 (verbs * on deployments in apiGroups apps): every verb ("*")`},
		},
		"every resource of a group": {
			reason: "A wildcard resource includes what the group adds later.",
			obj:    role(t, "ClusterRole", "kb", rule("apps.kubeblocks.io", "*", "get")),
			want:   []string{`rule 1 (verbs get on * in apiGroups apps.kubeblocks.io): every resource ("*")`},
		},
		"every group's secrets": {
			reason: `"*" apiGroups with a credential resource reach it in every group.`,
			obj:    role(t, "ClusterRole", "s", rule("*", "secrets", "get"), rule("*", "pods", "get"), rule("*", "*/scale", "update")),
			want: []string{
				`rule 1 (verbs get on secrets in apiGroups *): "*" apiGroups with RBAC, credential or wildcard resources`,
				`rule 3 (verbs update on */scale in apiGroups *): "*" apiGroups with RBAC, credential or wildcard resources`,
			},
		},
		"escalate, bind, impersonate": {
			reason: "Each of the three verbs lets its holder go beyond its rules.",
			obj: role(t, "ClusterRole", "rbac", rule("rbac.authorization.k8s.io", "clusterroles", "escalate bind"),
				rule(`""`, "users groups serviceaccounts", "impersonate")),
			want: []string{
				"rule 1 (verbs escalate,bind on clusterroles in apiGroups rbac.authorization.k8s.io): escalate, bind",
				`rule 2 (verbs impersonate on users,groups,serviceaccounts in apiGroups ""): impersonate`,
			},
		},
		"tokens": {
			reason: "Creating a ServiceAccount token is acting as that account; */token is the same subresource.",
			obj: role(t, "Role", "tokens", rule(`""`, "serviceaccounts/token", "create"), rule(`""`, "*/token", "create"),
				rule(`""`, "serviceaccounts/token", "get"), rule("example.com", "serviceaccounts/token", "create")),
			want: []string{
				`rule 1 (verbs create on serviceaccounts/token in apiGroups ""): create on serviceaccounts/token`,
				`rule 2 (verbs create on */token in apiGroups ""): create on serviceaccounts/token`,
			},
		},
		"binding to cluster-admin": {
			reason: "A replicated binding to a built-in admin-like role grants it in every target.",
			obj:    binding("ClusterRoleBinding", "cluster-admin"),
			want:   []string{"binds its subjects to the built-in ClusterRole cluster-admin"},
		},
		"binding to system:masters' role": {
			reason: "system:* roles are the API server's own.",
			obj:    binding("RoleBinding", "system:controller:token-cleaner"),
			want:   []string{"binds its subjects to the built-in ClusterRole system:controller:token-cleaner"},
		},
		"binding to view": {
			reason: "view is not admin-like.",
			obj:    binding("ClusterRoleBinding", "view"),
		},
		"a Secret": {
			reason: "Only roles and bindings grant anything.",
			obj:    kubeobj.Object{Kind: "Secret", Content: map[string]any{"rules": []any{rule("*", "*", "*")}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, plan.EscalatingGrants(tc.obj)); diff != "" {
				t.Errorf("%s\nEscalatingGrants (-want, +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// privilegeSpec is a spec with a replicate block of a ClusterRole and a control plane, as a file, so that
// Check's diagnostics have positions.
func privilegeSpec(t *testing.T, allow bool) *spec.Mesh {
	t.Helper()
	mesh := `mesh "tidb" {}`
	if allow {
		mesh = "mesh \"tidb\" {\n  allow_privileged = true\n}"
	}
	text := mesh + `
cluster "a" {
  region       = "us-west-1"
  kube_context = "ctx-a"
  eks_cluster  = "a"
  namespace    = "ns-a"
}
cluster "b" {
  region       = "us-west-2"
  kube_context = "ctx-b"
  eks_cluster  = "b"
  namespace    = "ns-b"
}
cluster "c" {
  region       = "us-east-1"
  kube_context = "ctx-c"
  eks_cluster  = "c"
  namespace    = "ns-c"
}
replicate "kb-role" {
  from {
    cluster = "a"
    kind    = "ClusterRole"
    name    = "kubeblocks-cluster-pod-role"
  }
  to = ["b"]
}
control_plane "kb" {
  cluster      = "a"
  data_planes  = ["b", "c"]
  secret       = "kb-system/data-planes"
  cluster_role = "kb-role"
}
`
	path := filepath.Join(t.TempDir(), "mesh.hcl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	m, diags := spec.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return m
}

type privDiag struct {
	Line     int
	Severity hcl.DiagnosticSeverity
	Summary  string
}

func privDiags(diags hcl.Diagnostics) []privDiag {
	var out []privDiag
	for _, d := range diags {
		out = append(out, privDiag{d.Subject.Start.Line, d.Severity, d.Summary})
	}
	return out
}

// TestPrivilegedReplica: a replicated ClusterRole whose rules grant every verb is not copied, and Check
// reports it at the block's from.name, unless the mesh allows it.
func TestPrivilegedReplica(t *testing.T) {
	src := role(t, "ClusterRole", "kubeblocks-cluster-pod-role", rule(`""`, "pods", "get"), rule("apps.kubeblocks.io", "clusters", "*"))
	input := &plan.ReplicaInput{Sources: []plan.ReplicaSource{{Replicate: "kb-role", Cluster: "a", KubeContext: "ctx-a",
		Kind: "ClusterRole", Name: src.Name, Object: &src,
		Targets: []plan.ReplicaTarget{{Cluster: "b", KubeContext: "ctx-b"}}}}}
	for _, allow := range []bool{false, true} {
		m := privilegeSpec(t, allow)
		st := state.New("tidb")
		p := plan.Compute(plan.Input{Mesh: "tidb", AllowPrivileged: allow, Observed: model.NewObserved(), State: st, Replicas: input})
		diags := plan.Check(m, nil, model.NewObserved(), p)
		if !allow {
			if got := replicaLines(p); len(got) != 0 {
				t.Errorf("not allowed: the privileged role is planned anyway: %q", got)
			}
			want := []privDiag{{24, hcl.DiagError, "Privileged object replicated"}}
			if diff := cmp.Diff(want, privDiags(diags)); diff != "" {
				t.Errorf("not allowed: diagnostics (-want, +got):\n%s", diff)
			}
			if d := diags[0].Detail; !strings.Contains(d, `rule 2 (verbs * on clusters in apiGroups apps.kubeblocks.io): every verb ("*")`) ||
				!strings.Contains(d, "allow_privileged = true") {
				t.Errorf("detail does not name the rule and the way out: %s", d)
			}
			plan.PrivilegesAsWarnings(diags)
			if diags.HasErrors() {
				t.Error("PrivilegesAsWarnings left an error")
			}
			continue
		}
		if want, got := []string{"+ replica[kb-role:b]: copy missing"}, replicaLines(p); !cmp.Equal(want, got) {
			t.Errorf("allowed: replica changes %q, want %q", got, want)
		}
		if len(diags) != 0 {
			t.Errorf("allowed: diagnostics %v", diags)
		}
	}
}

// TestPrivilegedControlPlaneRole: a control plane whose cluster_role, as observed in a data plane, grants
// tokens of every ServiceAccount is left alone (nothing created, nothing recorded deleted), and Check
// reports it at cluster_role, unless the mesh allows it.
func TestPrivilegedControlPlaneRole(t *testing.T) {
	narrow := role(t, "ClusterRole", "kb-role", rule(`""`, "pods", "get list"))
	wide := role(t, "ClusterRole", "kb-role", rule(`""`, "pods", "get list"), rule(`""`, "serviceaccounts/token", "create"))
	b, c := dataPlane("b", plan.AccountObserved{}), dataPlane("c", plan.AccountObserved{})
	b.Role, c.Role = &narrow, &wide
	for _, allow := range []bool{false, true} {
		m := privilegeSpec(t, allow)
		in := cpInput(t0, nil, b, c)
		p := plan.Compute(plan.Input{Mesh: "tidb", AllowPrivileged: allow, Observed: model.NewObserved(), State: recorded(), ControlPlanes: in})
		diags := plan.Check(m, nil, model.NewObserved(), p)
		if !allow {
			if got := changesOf(p); len(got) != 0 || len(p.ForgetControlPlanes) != 0 {
				t.Errorf("not allowed: the control plane is planned anyway: %v, forget %v", got, p.ForgetControlPlanes)
			}
			want := []privDiag{{32, hcl.DiagError, "Privileged cluster_role"}}
			if diff := cmp.Diff(want, privDiags(diags)); diff != "" {
				t.Errorf("not allowed: diagnostics (-want, +got):\n%s", diff)
			}
			if d := diags[0].Detail; !strings.Contains(d, `data plane "c"`) || !strings.Contains(d, "create on serviceaccounts/token") {
				t.Errorf("detail does not name the data plane and the grant: %s", d)
			}
			if len(in.Planes) != 1 || len(in.LeftAlone) != 0 {
				t.Error("Compute changed its input")
			}
			continue
		}
		if len(changesOf(p)) != 3 || len(diags) != 0 {
			t.Errorf("allowed: changes %v, diagnostics %v; want the two accounts and the Secret, no diagnostic", changesOf(p), diags)
		}
	}
}

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// rbacSpecs are the example specs the goldens cover: every kind's rules appear in one of them.
var rbacSpecs = []string{"sandbox", "mesh.hcl", "kubeblocks.hcl", "multi-cluster-nlb.hcl", "tidb-tls.hcl"}

func meshctlWant(t *testing.T, want int, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	app := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
	if code := app.Main(context.Background(), args); code != want {
		t.Fatalf("meshctl %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	return out.String() + errb.String()
}

// TestRBACGolden pins meshctl rbac --all and --management for the example specs (go test -update rewrites).
func TestRBACGolden(t *testing.T) {
	for _, s := range rbacSpecs {
		for _, mode := range []string{"--all", "--management"} {
			got := meshctlWant(t, ExitOK, "rbac", "--spec", filepath.Join("../../specs", s), mode)
			checkGolden(t, filepath.Join("testdata", "rbac", strings.TrimSuffix(s, ".hcl")+strings.TrimPrefix(mode, "-")+".yaml"), got)
		}
	}
}

// rbacDoc is one document of meshctl rbac's output, decoded strictly as what it claims to be.
type rbacDoc struct {
	Kind     string
	Rules    []rbacv1.PolicyRule
	Subjects []rbacv1.Subject
	Comments string
}

func decodeRBAC(t *testing.T, out string) []rbacDoc {
	t.Helper()
	var docs []rbacDoc
	for _, text := range strings.Split(out, "---\n") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(text), &head); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, text)
		}
		d := rbacDoc{Kind: head.Kind, Comments: text}
		switch head.Kind {
		case "":
			continue // the header comment
		case "Role", "ClusterRole":
			var r rbacv1.ClusterRole
			if err := yaml.UnmarshalStrict([]byte(text), &r); err != nil {
				t.Fatalf("%s: %v\n%s", head.Kind, err, text)
			}
			d.Rules = r.Rules
		case "RoleBinding", "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			if err := yaml.UnmarshalStrict([]byte(text), &b); err != nil {
				t.Fatalf("%s: %v\n%s", head.Kind, err, text)
			}
			d.Subjects = b.Subjects
		default:
			t.Fatalf("unexpected kind %q", head.Kind)
		}
		docs = append(docs, d)
	}
	return docs
}

// TestRBACIsNamedAndNarrow checks every rule of every example spec's output: a rule that reads or writes
// existing objects (get, update, patch, delete, escalate, bind, a subresource) names them; only create,
// list and watch may go unnamed (the API server cannot authorize those by name), each with a comment;
// nothing is a wildcard; and no unnamed rule touches Secrets except create.
func TestRBACIsNamedAndNarrow(t *testing.T) {
	for _, s := range rbacSpecs {
		out := meshctlWant(t, ExitOK, "rbac", "--spec", filepath.Join("../../specs", s), "--all")
		docs := decodeRBAC(t, out)
		if len(docs) == 0 {
			t.Fatalf("%s: no documents", s)
		}
		for _, d := range docs {
			for _, r := range d.Rules {
				for _, field := range [][]string{r.Verbs, r.Resources, r.APIGroups, r.ResourceNames} {
					if slices.Contains(field, "*") {
						t.Errorf("%s: %s has a wildcard: %+v", s, d.Kind, r)
					}
				}
				if len(r.ResourceNames) > 0 {
					continue
				}
				for _, v := range r.Verbs {
					if v != "create" && v != "list" && v != "watch" {
						t.Errorf("%s: %s grants %s on every %v: it must be named", s, d.Kind, v, r.Resources)
					}
				}
				if slices.Contains(r.Resources, "secrets") && !slices.Equal(r.Verbs, []string{"create"}) {
					t.Errorf("%s: %s grants %v on every Secret", s, d.Kind, r.Verbs)
				}
			}
			for _, sub := range d.Subjects {
				if sub.Kind != "Group" || sub.Name != "meshd" {
					t.Errorf("%s: %s bound to %+v, want the default Group meshd", s, d.Kind, sub)
				}
			}
		}
	}
}

// TestRBACSubjects: --subject binds to a user, a group or a ServiceAccount, and a malformed one is refused.
func TestRBACSubjects(t *testing.T) {
	spec := filepath.Join("../../specs", "mesh.hcl")
	for subject, want := range map[string]rbacv1.Subject{
		"User:alice":                  {APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "alice"},
		"Group:meshd-writers":         {APIGroup: "rbac.authorization.k8s.io", Kind: "Group", Name: "meshd-writers"},
		"ServiceAccount:ops/meshd-sa": {Kind: "ServiceAccount", Namespace: "ops", Name: "meshd-sa"},
	} {
		docs := decodeRBAC(t, meshctlWant(t, ExitOK, "rbac", "--spec", spec, "--cluster", "tidb-1", "--subject", subject))
		n := 0
		for _, d := range docs {
			for _, got := range d.Subjects {
				n++
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("--subject %s (-want +got):\n%s", subject, diff)
				}
			}
		}
		if n == 0 {
			t.Errorf("--subject %s: no binding", subject)
		}
	}
	for _, bad := range []string{"alice", "Robot:x", "ServiceAccount:nonamespace", "User:"} {
		out := meshctlWant(t, ExitError, "rbac", "--spec", spec, "--cluster", "tidb-1", "--subject", bad)
		if !strings.Contains(out, "subject") {
			t.Errorf("--subject %s: the error does not say what is wrong:\n%s", bad, out)
		}
	}
	out := meshctlWant(t, ExitError, "rbac", "--spec", spec, "--cluster", "nope")
	if !strings.Contains(out, `"nope"`) || !strings.Contains(out, "tidb-1") {
		t.Errorf("an unknown --cluster: %s", out)
	}
	meshctlWant(t, ExitError, "rbac", "--spec", spec)
	meshctlWant(t, ExitError, "rbac", "--spec", spec, "--all", "--management")
}

// TestDeployRBACIsGenerated keeps deploy/ true: member-rbac.yaml is meshctl rbac --all for specs/mesh.hcl
// below its header, and meshd.yaml (charts/meshd rendered) carries exactly the Roles and RoleBindings of
// meshctl rbac --management for it: the same names, namespaces, rules, role references and subjects (the
// chart's labels aside), and no other.
func TestDeployRBACIsGenerated(t *testing.T) {
	spec := filepath.Join("../../specs", "mesh.hcl")
	member, err := os.ReadFile("../../deploy/member-rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := meshctlWant(t, ExitOK, "rbac", "--spec", spec, "--all")
	if !strings.HasSuffix(string(member), want) {
		t.Errorf("deploy/member-rbac.yaml is not meshctl rbac --spec specs/mesh.hcl --all below its header; regenerate it")
	}
	deploy, err := os.ReadFile("../../deploy/meshd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mgmt := meshctlWant(t, ExitOK, "rbac", "--spec", spec, "--management")
	if diff := cmp.Diff(managementRBACObjects(t, mgmt), managementRBACObjects(t, string(deploy))); diff != "" {
		t.Errorf("deploy/meshd.yaml's Roles and RoleBindings are not meshctl rbac --spec specs/mesh.hcl --management's (-meshctl, +deploy/meshd.yaml); set the chart's values or regenerate it (make deploy-manifest):\n%s", diff)
	}
}

// managementRBACObjects decodes the Roles and RoleBindings of a YAML stream strictly, without their labels (a
// chart's), for comparing with meshctl rbac --management.
func managementRBACObjects(t *testing.T, text string) []any {
	t.Helper()
	var out []any
	for _, doc := range strings.Split(text, "\n---\n") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		switch head.Kind {
		case "Role":
			var r rbacv1.Role
			if err := yaml.UnmarshalStrict([]byte(doc), &r); err != nil {
				t.Fatal(err)
			}
			r.Labels = nil
			out = append(out, r)
		case "RoleBinding":
			var b rbacv1.RoleBinding
			if err := yaml.UnmarshalStrict([]byte(doc), &b); err != nil {
				t.Fatal(err)
			}
			b.Labels = nil
			out = append(out, b)
		case "ClusterRole", "ClusterRoleBinding":
			t.Errorf("a %s in the management cluster's RBAC: meshd needs none", head.Kind)
		}
	}
	if len(out) == 0 {
		t.Errorf("no Role or RoleBinding in\n%s", text)
	}
	return out
}

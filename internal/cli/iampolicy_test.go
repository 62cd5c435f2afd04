package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/access"
)

// iamCase is one golden: meshctl iam-policy with args, pinned in testdata/iam-policy/<name>.json.
type iamCase struct {
	name string
	args []string
}

// iamCases are the example specs, and the accounts spec (testdata/iam-policy/accounts.hcl) that uses every
// feature with an AWS call: an assume_role member (its own policy with --cluster), named VPCs, groups and
// route tables, eks_cluster members, corefile_via = "eks_addon", a load_balancer block and adopt = true.
func iamCases(t *testing.T) []iamCase {
	t.Helper()
	specs, err := filepath.Glob("../../specs/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	specs = append(specs, "../../specs/sandbox")
	var out []iamCase
	for _, s := range specs {
		name := strings.TrimSuffix(filepath.Base(s), ".hcl")
		out = append(out, iamCase{name, []string{"--spec", s}})
	}
	accounts := filepath.Join("testdata", "iam-policy", "accounts.hcl")
	out = append(out, iamCase{"accounts", []string{"--spec", accounts}},
		iamCase{"accounts-cluster-b", []string{"--spec", accounts, "--cluster", "b"}},
		iamCase{"accounts-cluster-a", []string{"--spec", accounts, "--cluster", "a"}})
	return out
}

func runIAMPolicy(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	app := &App{Stdout: &stdout, Stderr: &stderr}
	code := app.Main(context.Background(), append([]string{"iam-policy"}, args...))
	return stdout.String(), stderr.String(), code
}

// TestIAMPolicyGolden pins meshctl iam-policy for the example specs and the accounts spec
// (go test ./internal/cli -run TestIAMPolicyGolden -update rewrites them).
func TestIAMPolicyGolden(t *testing.T) {
	for _, tc := range iamCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			got, stderr, code := runIAMPolicy(t, tc.args...)
			if code != ExitOK {
				t.Fatalf("meshctl iam-policy %v: exit %d\n%s", tc.args, code, stderr)
			}
			checkGolden(t, filepath.Join("testdata", "iam-policy", tc.name+".json"), got)
		})
	}
}

// notTagConditioned are the delete and revoke grants AWS cannot condition on meshd's tag, and why.
var notTagConditioned = map[string]string{
	"ec2:DeleteRoute": "routes take no tags, and the route table is not meshd's: limited to the route tables " +
		"the spec names, or by ec2:Vpc to the VPC it names",
	"ec2:RevokeSecurityGroupIngress on security-group": "the group is not meshd's (its rules are): the rule " +
		"itself is authorized separately, on security-group-rule, with meshd's tag",
}

// TestIAMPolicyIsValidAndScoped: every policy parses as an IAM policy document (Version 2012-10-17, unique
// Sids, Allow statements with actions and resources); every Delete or Revoke is conditioned on this mesh's
// tag, except where AWS cannot (notTagConditioned); CreateTags is allowed only in a create call
// (ec2:CreateAction) or, with adopt = true, only for meshd's tag keys; sts:AssumeRole only on the roles
// the spec names, never "*"; an identity's policy has no other identity's statements.
func TestIAMPolicyIsValidAndScoped(t *testing.T) {
	for _, tc := range iamCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runIAMPolicy(t, tc.args...)
			if code != ExitOK {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			var p access.Policy
			dec := json.NewDecoder(strings.NewReader(out))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				t.Fatalf("not a policy document: %v\n%s", err, out)
			}
			if p.Version != "2012-10-17" {
				t.Errorf("Version %q", p.Version)
			}
			sids := map[string]bool{}
			for _, s := range p.Statement {
				if s.Sid == "" || sids[s.Sid] || strings.Trim(s.Sid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" {
					t.Errorf("Sid %q: empty, repeated or not alphanumeric", s.Sid)
				}
				sids[s.Sid] = true
				if s.Effect != "Allow" || len(s.Action) == 0 || len(s.Resource) == 0 {
					t.Errorf("%s: effect %q, %d actions, %d resources", s.Sid, s.Effect, len(s.Action), len(s.Resource))
				}
				for _, a := range s.Action {
					checkScoped(t, s, a)
				}
			}
		})
	}
}

func checkScoped(t *testing.T, s access.PolicyStatement, action string) {
	t.Helper()
	tagged := slices.Equal(s.Condition["StringEquals"]["aws:ResourceTag/meshd.io/mesh"], []string{meshOf(s)})
	_, verb, _ := strings.Cut(action, ":")
	switch {
	case strings.HasPrefix(verb, "Delete") || strings.HasPrefix(verb, "Revoke"):
		if tagged {
			return
		}
		for _, r := range s.Resource {
			key := action
			if strings.Contains(r, ":security-group/") {
				key += " on security-group"
			}
			if _, ok := notTagConditioned[key]; !ok {
				t.Errorf("%s: %s on %s is not conditioned on meshd's tag", s.Sid, action, r)
			}
			if action == "ec2:DeleteRoute" && strings.HasSuffix(r, ":route-table/*") && len(s.Condition) == 0 && !strings.Contains(s.Sid, "RouteTables") {
				t.Errorf("%s: DeleteRoute on every route table", s.Sid)
			}
		}
	case action == "ec2:CreateTags":
		inCreate := len(s.Condition["StringEquals"]["ec2:CreateAction"]) > 0
		adopt := len(s.Condition["ForAllValues:StringEquals"]["aws:TagKeys"]) > 0
		if !inCreate && !adopt {
			t.Errorf("%s: CreateTags neither limited to a create call nor to meshd's tag keys: %v", s.Sid, s.Condition)
		}
		if len(s.Condition["StringEquals"]["aws:RequestTag/meshd.io/mesh"]) != 1 {
			t.Errorf("%s: CreateTags without this mesh's tag value: %v", s.Sid, s.Condition)
		}
	case action == "sts:AssumeRole":
		for _, r := range s.Resource {
			if !strings.HasPrefix(r, "arn:") || strings.Contains(r, "*") {
				t.Errorf("%s: sts:AssumeRole on %q, not a role the spec names", s.Sid, r)
			}
		}
	}
}

// meshOf is the mesh name a statement's tag conditions name (any of them).
func meshOf(s access.PolicyStatement) string {
	for _, keys := range s.Condition {
		for k, v := range keys {
			if strings.HasSuffix(k, "/meshd.io/mesh") && len(v) == 1 {
				return v[0]
			}
		}
	}
	return ""
}

// TestIAMPolicyPerIdentity: the accounts spec's policies split the work by identity. meshd's own has
// sts:AssumeRole on exactly b's role and the calls made with the default credentials (the add-on, target
// groups); b's role has b's observation and changes and nothing of meshd's own; --cluster a (no role) is
// meshd's own; an unknown or external cluster is an error.
func TestIAMPolicyPerIdentity(t *testing.T) {
	accounts := filepath.Join("testdata", "iam-policy", "accounts.hcl")
	policy := func(args ...string) access.Policy {
		t.Helper()
		out, stderr, code := runIAMPolicy(t, append([]string{"--spec", accounts}, args...)...)
		if code != ExitOK {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr)
		}
		var p access.Policy
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	own, a, b := policy(), policy("--cluster", "a"), policy("--cluster", "b")
	if diff := cmp.Diff(own, a); diff != "" {
		t.Errorf("--cluster a (no assume_role) is not meshd's own policy: -own, +a:\n%s", diff)
	}
	has := func(p access.Policy, action string) bool { return slices.Contains(p.Actions(), action) }
	for _, tc := range []struct {
		p      access.Policy
		who    string
		action string
		want   bool
	}{
		{own, "meshd's own", "sts:AssumeRole", true},
		{b, "b's role", "sts:AssumeRole", false},
		{own, "meshd's own", "eks:UpdateAddon", true},
		{b, "b's role", "eks:UpdateAddon", false},
		{own, "meshd's own", "elasticloadbalancing:DescribeTargetGroups", true},
		{b, "b's role", "elasticloadbalancing:DescribeTargetGroups", false},
		{b, "b's role", "ec2:CreateVpcPeeringConnection", true},
		{b, "b's role", "eks:DescribeCluster", false}, // b names its VPC: no EKS
		{own, "meshd's own", "eks:DescribeCluster", true},
		{b, "b's role", "ec2:DeleteRoute", true},
		{b, "b's role", "ec2:DescribeVpcs", true},
	} {
		if got := has(tc.p, tc.action); got != tc.want {
			t.Errorf("%s allows %s: %v, want %v", tc.who, tc.action, got, tc.want)
		}
	}
	for _, s := range own.Statement {
		if slices.Contains(s.Action, "sts:AssumeRole") {
			if diff := cmp.Diff([]string{"arn:aws:iam::111111111111:role/meshd"}, s.Resource); diff != "" {
				t.Errorf("sts:AssumeRole resources: -want, +got:\n%s", diff)
			}
		}
	}
	for _, s := range b.Statement {
		for _, r := range s.Resource {
			if strings.Contains(r, ":us-west-1:") {
				t.Errorf("b's role (us-east-1) is granted %s in a's region: %s", s.Sid, r)
			}
		}
	}
	for _, bad := range []string{"nope", "edge"} {
		if _, stderr, code := runIAMPolicy(t, "--spec", accounts, "--cluster", bad); code != ExitError || !strings.Contains(stderr, bad) {
			t.Errorf("--cluster %s: exit %d, stderr %q; want an error naming it", bad, code, stderr)
		}
	}
}

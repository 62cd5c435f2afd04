package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
)

// iamPrefix maps an SDK service package to its IAM action prefix.
var iamPrefix = map[string]string{"ec2": "ec2", "elasticloadbalancingv2": "elasticloadbalancing", "eks": "eks", "sts": "sts"}

// stsCalled are the STS operations meshd itself calls with credentials (stscreds' AssumeRole provider, for
// assume_role members). The binaries hold every STS operation: the SDK's default credential chain (config
// package) stores an *sts.Client in an interface for web identity (IRSA) and profile roles, which keeps all
// of its methods; those calls (AssumeRoleWithWebIdentity) need no permission of the caller. So for STS the
// binary proves nothing missing or extra, and this list is what the policy is compared with.
var stsCalled = []string{"sts:AssumeRole"}

var sdkOp = regexp.MustCompile(`github\.com/aws/aws-sdk-go-v2/service/([a-z0-9]+)\.\(\*Client\)\.([A-Z][A-Za-z0-9]+)$`)

// sdkActions lists the IAM actions of the SDK operations a binary contains (ec2, ELBv2, EKS and STS).
func sdkActions(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm %s: %v", bin, err)
	}
	var actions []string
	for _, line := range regexp.MustCompile(`\r?\n`).Split(string(out), -1) {
		m := sdkOp.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if prefix, ok := iamPrefix[m[1]]; ok && m[2] != "Options" {
			actions = append(actions, prefix+":"+m[2])
		}
	}
	slices.Sort(actions)
	return slices.Compact(actions)
}

// TestIAMPolicyCoversExactlyTheSDKOperations: the policy meshctl iam-policy prints for a spec using every
// feature with an AWS call (internal/cli/testdata/iam-policy/accounts.hcl; meshd's own identity and the
// assume_role member's, together) allows exactly the EC2, ELBv2 and EKS operations the meshd and meshctl
// binaries contain, and of STS what meshd calls: none missing (an AccessDenied in production), none extra
// (a permission nothing uses). The binaries keep only the operations meshd calls
// (TestBinaryKeepsOnlyUsedSDKOperations), so their symbol tables are the list of calls.
func TestIAMPolicyCoversExactlyTheSDKOperations(t *testing.T) {
	if testing.Short() {
		t.Skip("builds meshd and meshctl")
	}
	meshd := buildMeshd(t)
	meshctl := filepath.Join(t.TempDir(), "meshctl")
	if out, err := exec.Command("go", "build", "-o", meshctl, "../meshctl").CombinedOutput(); err != nil {
		t.Fatalf("go build meshctl: %v\n%s", err, out)
	}
	var inBinaries []string
	for _, bin := range []string{meshd, meshctl} {
		got := sdkActions(t, bin)
		if !slices.Contains(got, "ec2:DescribeRouteTables") {
			t.Fatalf("%s: no ec2 DescribeRouteTables in the symbol table: the comparison below would prove nothing", bin)
		}
		inBinaries = append(inBinaries, got...)
	}
	slices.Sort(inBinaries)
	inBinaries = slices.Compact(inBinaries)
	if !slices.Contains(inBinaries, "sts:AssumeRole") {
		t.Fatal("sts AssumeRole is not in the binaries: assume_role members could not work")
	}
	want := slices.DeleteFunc(slices.Clone(inBinaries), func(a string) bool { return strings.HasPrefix(a, "sts:") })
	want = append(want, stsCalled...)
	slices.Sort(want)

	m, diags := spec.Load("../../internal/cli/testdata/iam-policy/accounts.hcl")
	if diags.HasErrors() {
		t.Fatalf("spec: %v", diags)
	}
	// The Transit Gateway observation's calls are granted to a mesh with that topology only: the same spec
	// with it (the golden of accounts.hcl stays a peering mesh's).
	m.Topology = spec.TopologyTransitGateway
	var stmts []access.Statement
	for _, cluster := range []string{"", "b"} { // meshd's own, and b's assume_role
		s, err := plan.IAMOf(m, cluster)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, s...)
	}
	got := access.IAMPolicy(stmts).Actions()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("policy actions against the SDK operations in meshd and meshctl: -binaries (missing from the policy), +policy (extra):\n%s", diff)
	}
	t.Logf("%d actions, %d SDK operations of EC2, ELBv2 and EKS in the binaries", len(got), len(want)-len(stsCalled))
}

package cli_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/sandbox"
)

// A control plane (tidb-2) whose data plane's EKS endpoint (tidb-1) has private access only: apply opens
// the EKS cluster security group — not the node group — on TCP 443 to the control plane's CIDR block, a
// second plan is empty, destroy takes the rule away.
func TestControlPlaneOpensPrivateEndpoint(t *testing.T) {
	kw := startKube(t)
	h := newHarnessWith(t, func(c *sandbox.ClusterNet) { c.PrivateEndpoint = c.EKS })
	h.kubeconfig = kw.kubeconfig
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kb-cpnet"}}
	if _, err := kw.clients["tidb-2"].CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	text, err := os.ReadFile(h.spec)
	if err != nil {
		t.Fatal(err)
	}
	block := "\ncontrol_plane \"cpnet\" {\n  cluster      = \"tidb-2\"\n  data_planes  = [\"tidb-1\"]\n" +
		"  secret       = \"kb-cpnet/data-planes\"\n  cluster_role = \"view\"\n}\n"
	if err := os.WriteFile(h.spec, append(text, block...), 0o644); err != nil {
		t.Fatal(err)
	}
	dp, cp := h.nets[0], h.nets[1]
	if dp.ClusterSecurityGroupID == "" || dp.ClusterSecurityGroupID == dp.SecurityGroupID {
		t.Fatalf("the data plane needs a cluster security group of its own: %+v", dp)
	}

	r := h.mustRun(2, "plan", "--detailed-exitcode")
	addr := "sg_rule[tidb-1:" + dp.ClusterSecurityGroupID + ":" + cp.CIDR + "]"
	if !strings.Contains(r.stdout, addr) || !strings.Contains(r.stdout, "tcp/443") {
		t.Fatalf("the plan does not show %s on TCP 443:\n%s", addr, r.stdout)
	}
	h.mustRun(0, "apply", "--auto-approve")
	rules := apiRules(t, h, dp)
	if len(rules) != 1 {
		t.Fatalf("want one rule on the cluster security group, got %d: %+v", len(rules), rules)
	}
	got := rules[0]
	if aws.ToString(got.IpProtocol) != "tcp" || aws.ToInt32(got.FromPort) != 443 || aws.ToInt32(got.ToPort) != 443 ||
		aws.ToString(got.CidrIpv4) != cp.CIDR || tag(got.Tags, "meshd.io/mesh") != "tidb" ||
		!strings.Contains(aws.ToString(got.Description), "control_plane cpnet") {
		t.Errorf("rule: protocol %s ports %d-%d from %s, tags %v, description %q", aws.ToString(got.IpProtocol),
			aws.ToInt32(got.FromPort), aws.ToInt32(got.ToPort), aws.ToString(got.CidrIpv4), got.Tags, aws.ToString(got.Description))
	}
	if r := h.mustRun(0, "plan", "--detailed-exitcode"); !strings.Contains(r.stdout, "No changes.") {
		t.Fatalf("second plan:\n%s", r.stdout)
	}

	h.mustRun(0, "destroy", "--auto-approve")
	if rules := apiRules(t, h, dp); len(rules) != 0 {
		t.Errorf("destroy left %d rules on the cluster security group: %+v", len(rules), rules)
	}
}

// apiRules are the ingress rules on a network's EKS cluster security group.
func apiRules(t *testing.T, h *harness, n sandbox.Network) []ec2types.SecurityGroupRule {
	t.Helper()
	out, err := h.ec2(n.Region).DescribeSecurityGroupRules(context.Background(), &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{n.ClusterSecurityGroupID}}}})
	if err != nil {
		t.Fatal(err)
	}
	var in []ec2types.SecurityGroupRule
	for _, r := range out.SecurityGroupRules {
		if !aws.ToBool(r.IsEgress) {
			in = append(in, r)
		}
	}
	return in
}

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryKeepsOnlyUsedSDKOperations guards meshd's idle memory: the AWS SDK clients must reach meshd's
// interfaces only through method values (internal/providers/aws/sdk.go). If a *ec2.Client itself is stored in an
// interface (passed to an SDK paginator, say), the linker keeps all ~700 EC2 operations, the binary grows from
// about 78 MB to 120 MB, and an idle meshd keeps about 25 MiB more resident.
func TestBinaryKeepsOnlyUsedSDKOperations(t *testing.T) {
	bin := buildMeshd(t)
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	symbols := string(out)
	const used = "github.com/aws/aws-sdk-go-v2/service/ec2.(*Client).DescribeRouteTables"
	if !strings.Contains(symbols, used) {
		t.Fatalf("%s is missing from the symbol table: the check below would prove nothing", used)
	}
	for _, unused := range []string{
		"github.com/aws/aws-sdk-go-v2/service/ec2.(*Client).RunInstances",
		"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2.(*Client).CreateLoadBalancer",
		"github.com/aws/aws-sdk-go-v2/service/eks.(*Client).CreateCluster",
	} {
		if strings.Contains(symbols, unused) {
			t.Errorf("the meshd binary contains %s, an SDK operation meshd never calls: an SDK client is stored in an interface somewhere", unused)
		}
	}
}

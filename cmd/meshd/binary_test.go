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

// TestBinaryKeepsOnlyTwoTypedKubeGroups guards the same idle memory on the Kubernetes side: meshd links
// client-go's typed clients for core/v1 and coordination/v1 only (internal/kubeclient); every other kind
// (RBAC, custom resources) goes through the dynamic client. A typed client of another group in the binary
// means a kubernetes.Clientset (or a typed group) is stored in an interface somewhere.
func TestBinaryKeepsOnlyTwoTypedKubeGroups(t *testing.T) {
	bin := buildMeshd(t)
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	const typed = "k8s.io/client-go/kubernetes/typed/"
	groups := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if i := strings.Index(line, typed); i >= 0 {
			rest := line[i+len(typed):]
			if parts := strings.SplitN(rest, "/", 3); len(parts) >= 2 {
				groups[parts[0]+"/"+strings.SplitN(parts[1], ".", 2)[0]] = true
			}
		}
	}
	if !groups["core/v1"] {
		t.Fatalf("no typed core/v1 client in the binary: the check below would prove nothing")
	}
	for g := range groups {
		if g != "core/v1" && g != "coordination/v1" {
			t.Errorf("the meshd binary links client-go's typed %s client: use kubeclient.Interface's Resource (dynamic) instead", g)
		}
	}
}

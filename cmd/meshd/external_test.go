package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshd-io/meshd/internal/sandbox"
)

// TestDaemonFollowsExternalMember: meshd meshes three EKS clusters with tidb-4, a cluster outside AWS whose
// DNS Service gets its address from the MetalLB stand-in. When MetalLB moves the Service to another
// address (someone asked for it by hand), the daemon's watch sees the Service's status change and every
// other Corefile follows, long before the 1h interval.
func TestDaemonFollowsExternalMember(t *testing.T) {
	e := newE2EOn(t, sandbox.StartNT(t, 4, func(c *sandbox.Cluster) { c.External = c.Name == "tidb-4" }))
	ext, _ := e.sb.Cluster("tidb-4")
	e.start("--interval", "1h", "--state", e.state)
	e.waitFor(2*time.Minute, "every cluster resolving every other cluster's Pod", e.resolvesAll)

	ctx := context.Background()
	services := e.sb.Clients[ext.Name].CoreV1().Services("kube-system")
	svc, err := services.Get(ctx, "across-cluster-dns-tcp", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	moved := ext.DNS[0]
	if in := svc.Status.LoadBalancer.Ingress; len(in) > 0 && in[0].IP == moved {
		moved = ext.DNS[1]
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"metallb.io/loadBalancerIPs":%q}}}`, moved)
	if _, err := services.Patch(ctx, "across-cluster-dns-tcp", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	took := e.waitFor(time.Minute, "every other Corefile forwarding tidb-4's zone to "+moved, func() bool {
		for _, c := range e.sb.Clusters {
			if c.Name != ext.Name && !strings.Contains(e.corefile(c.Name), "forward . "+moved+" {") {
				return false
			}
		}
		return true
	})
	t.Logf("MetalLB address moved -> every Corefile follows: %s", took)
	e.waitFor(time.Minute, "every cluster resolving every other cluster's Pod again", e.resolvesAll)
	// The hand-set annotation is not meshd's: it stays.
	if svc, err = services.Get(ctx, "across-cluster-dns-tcp", metav1.GetOptions{}); err != nil || svc.Annotations["metallb.io/loadBalancerIPs"] != moved {
		t.Errorf("the annotation set by hand: %v, %v", svc.Annotations, err)
	}
}

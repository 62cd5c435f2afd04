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

// BenchmarkExternalAddressFollow measures, on a sandbox with tidb-4 outside AWS, the time from MetalLB
// moving tidb-4's DNS Service to another address (an annotation set by hand) to every other Corefile
// forwarding to the new one. meshd runs at its defaults and with --interval 5s, its AWS calls behind 80 ms
// each (DelayProxy), as a real endpoint's would; the Service is moved 20 times with the moves spaced 0.5 s,
// 1.5 s and 2.5 s apart (latencyBench). The change comes from meshd's Kubernetes watch. Target, as for any
// Kubernetes drift: p50 < 250 ms, p95 < 500 ms. Run with -benchtime 1x.
func BenchmarkExternalAddressFollow(b *testing.B) {
	e := newE2EOn(b, sandbox.StartNT(b, 4, func(c *sandbox.Cluster) { c.External = c.Name == "tidb-4" }))
	e.delayAWS(80 * time.Millisecond)
	ext, _ := e.sb.Cluster("tidb-4")
	services := e.sb.Clients[ext.Name].CoreV1().Services("kube-system")
	ctx := context.Background()
	at := "" // the address the Service has now
	latencyBench(b, e, []string{"--state", e.state}, e.resolvesAll, "address moved -> every Corefile follows",
		func(b *testing.B, _ int) (time.Time, time.Duration) {
			if at == "" {
				svc, err := services.Get(ctx, "across-cluster-dns-tcp", metav1.GetOptions{})
				if err != nil || len(svc.Status.LoadBalancer.Ingress) == 0 {
					b.Fatalf("tidb-4's DNS Service has no address: %v", err)
				}
				at = svc.Status.LoadBalancer.Ingress[0].IP
			}
			to := ext.DNS[0]
			if at == to {
				to = ext.DNS[1]
			}
			patch := fmt.Sprintf(`{"metadata":{"annotations":{"metallb.io/loadBalancerIPs":%q}}}`, to)
			start := time.Now()
			if _, err := services.Patch(ctx, "across-cluster-dns-tcp", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				b.Fatal(err)
			}
			e.waitFor(30*time.Second, "every other Corefile forwarding to "+to, func() bool {
				for _, c := range e.sb.Clusters {
					if c.Name != ext.Name && !strings.Contains(e.corefile(c.Name), "forward . "+to+" {") {
						return false
					}
				}
				return true
			})
			at = to
			return start, time.Since(start)
		})
}

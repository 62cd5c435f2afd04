package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
)

// TestDaemonWithEKSAddon: meshd against clusters whose CoreDNS is the EKS managed add-on (the sandbox's
// stand-in).
//   - corefile_via = "configmap": an add-on update with OVERWRITE reverts the ConfigMap; meshd repairs it
//     from the watch.
//   - corefile_via = "eks_addon": meshd writes its blocks into the add-on configuration; the same update
//     then keeps them in the ConfigMap, and meshd has nothing to repair.
//   - Another tool that keeps rewriting configuration_values (Terraform here) is named in meshd's
//     repeated-drift report.
func TestDaemonWithEKSAddon(t *testing.T) {
	e := newE2E(t)
	c1, c2 := e.sb.Clusters[0], e.sb.Clusters[1]
	ctx := context.Background()
	writeSpec := func(via string) {
		var b strings.Builder
		fmt.Fprintf(&b, "mesh \"tidb\" {\n  dns {\n    corefile_via = %q\n  }\n}\n", via)
		for _, c := range e.sb.Clusters {
			fmt.Fprintf(&b, "\ncluster %q {\n  region       = %q\n  kube_context = %q\n  eks_cluster  = %q\n  namespace    = %q\n}\n",
				c.Name, c.Region, c.Context, c.Name, c.Namespace)
		}
		e.writeFile("mesh.hcl", b.String())
	}
	block := c2.Namespace + ".svc.cluster.local:53"
	eksc := eks.NewFromConfig(e.sb.EKSConfig(c1.Region))
	addonUpdate := func() {
		t.Helper()
		out, err := eksc.UpdateAddon(ctx, &eks.UpdateAddonInput{ClusterName: aws.String(c1.Name), AddonName: aws.String("coredns"),
			ResolveConflicts: ekstypes.ResolveConflictsOverwrite})
		if err != nil {
			t.Fatal(err)
		}
		e.waitFor(30*time.Second, "the add-on update", func() bool {
			u, err := eksc.DescribeUpdate(ctx, &eks.DescribeUpdateInput{Name: aws.String(c1.Name), UpdateId: out.Update.Id, AddonName: aws.String("coredns")})
			return err == nil && u.Update.Status == ekstypes.UpdateStatusSuccessful
		})
	}
	inAddon := func() bool {
		_, values := e.sb.Addons.Addon(c1.Name)
		return strings.Contains(values, block)
	}
	writeSpec("configmap")
	m := e.start("--interval", "1h", "--state", e.state)
	e.waitFor(2*time.Minute, "every cluster resolving every other cluster's Pod", e.resolvesAll)
	corefileFixes := func() float64 { return m.metric(`meshd_drift_corrected_total{action="update",kind="corefile"}`) }

	// 1. The add-on update reverts the ConfigMap; meshd puts its blocks back.
	before := corefileFixes()
	addonUpdate()
	e.waitFor(30*time.Second, "tidb-1's Corefile restored after the add-on update", func() bool {
		return strings.Contains(e.corefile(c1.Name), block)
	})
	e.waitFor(30*time.Second, "the repair counted", func() bool { return corefileFixes() > before })
	if inAddon() {
		t.Fatal("with corefile_via = \"configmap\" meshd wrote into the add-on configuration")
	}

	// 2. corefile_via = "eks_addon" (the spec watch starts a pass): the blocks go into the add-on's
	// configuration, and an add-on update keeps them.
	writeSpec("eks_addon")
	e.waitFor(60*time.Second, "meshd's blocks in tidb-1's add-on configuration", inAddon)
	passes := func() float64 {
		return m.metricSum(func(s string) bool { return strings.HasPrefix(s, "meshd_passes_total") })
	}
	before = corefileFixes()
	addonUpdate()
	if got := e.corefile(c1.Name); !strings.Contains(got, block) {
		t.Fatalf("the add-on update removed meshd's blocks from the ConfigMap:\n%s", got)
	}
	n := passes()
	m.trigger()
	e.waitFor(30*time.Second, "a pass after the add-on update", func() bool { return passes() > n })
	if got := corefileFixes(); got != before {
		t.Errorf("meshd repaired the ConfigMap %v time(s) after an add-on update that kept its blocks", got-before)
	}

	// 3. Terraform resets configuration_values again and again: meshd puts its blocks back each time and
	// names the likely writer.
	version, _ := e.sb.Addons.Addon(c1.Name)
	for i := 0; i < 3; i++ {
		e.sb.Addons.SetAddon(c1.Name, version, "")
		m.trigger()
		e.waitFor(30*time.Second, "meshd's blocks back in the add-on configuration", inAddon)
	}
	e.waitFor(30*time.Second, "the repeated-drift report", func() bool {
		return m.metric(`meshd_drift_repeated_total{kind="addon_corefile"}`) >= 1
	})
	e.kill(m, syscall.SIGTERM)
	log, err := os.ReadFile(m.log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "aws_eks_addon.configuration_values") || !strings.Contains(string(log), "eksctl") {
		t.Errorf("the repeated-drift report does not name Terraform and eksctl:\n%s", tail(string(log), 4000))
	}
	if strings.Contains(string(log), "lameduck") {
		t.Error("meshd's log holds Corefile text")
	}
}

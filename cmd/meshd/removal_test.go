package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshd-io/meshd/internal/sandbox"
)

// TestDaemonRefusesMassRemoval: the spec on disk replaced by one that keeps only tidb-1 (a placeholder
// applied over the user's ConfigMap) is refused and the last good spec stays enforced; a meshd started with
// it changes nothing; with --allow-mass-removal the two members are removed.
func TestDaemonRefusesMassRemoval(t *testing.T) {
	e := newE2E(t)
	c1, c2, c3 := e.sb.Clusters[0], e.sb.Clusters[1], e.sb.Clusters[2]
	forwards := func(to sandbox.Cluster) bool {
		return strings.Contains(e.corefile(c1.Name), to.Namespace+".svc.cluster.local:53")
	}

	m := e.start("--interval", "1h", "--state", e.state)
	e.waitFor(2*time.Minute, "every cluster resolving every other cluster's Pod", e.resolvesAll)

	e.writeSpec([]sandbox.Cluster{c1})
	e.waitFor(30*time.Second, `meshd_spec_reloads_total{result="refused"}`, func() bool {
		return m.metric(`meshd_spec_reloads_total{result="refused"}`) == 1
	})
	logText, _ := os.ReadFile(m.log)
	if !strings.Contains(string(logText), "refusing the spec on disk: it would remove tidb-2, tidb-3 of the 3 members the state records") {
		t.Errorf("no warning naming the members the refused spec removes")
	}
	// The last good spec stays enforced, watches included: tidb-1's reverted Corefile gets its blocks for
	// tidb-2 and tidb-3 back.
	e.revertCorefile(c1.Name)
	e.waitFor(30*time.Second, "tidb-1's Corefile restored with both blocks", func() bool { return forwards(c2) && forwards(c3) })
	if n := len(e.livePeerings()); n != 3 {
		t.Errorf("%d live peerings after the refusal, want 3", n)
	}
	e.kill(m, syscall.SIGTERM)

	// A meshd started with that spec has no good spec to fall back on: its passes fail and change nothing.
	m = e.start("--interval", "1h", "--state", e.state)
	e.waitFor(30*time.Second, "the start pass refused", func() bool {
		return m.metric(`meshd_passes_total{result="error"}`) >= 1 && m.metric(`meshd_spec_reloads_total{result="refused"}`) == 1
	})
	if n := len(e.livePeerings()); n != 3 || !forwards(c2) || !forwards(c3) {
		t.Errorf("a meshd started with the refused spec changed the mesh: %d live peerings, tidb-1 forwarding to tidb-2 %v, tidb-3 %v",
			n, forwards(c2), forwards(c3))
	}
	e.kill(m, syscall.SIGTERM)

	// --allow-mass-removal lets it through.
	m = e.start("--interval", "1h", "--state", e.state, "--allow-mass-removal")
	e.waitFor(2*time.Minute, "tidb-2 and tidb-3 removed from the mesh", func() bool {
		return len(e.livePeerings()) == 0 && !forwards(c2) && !forwards(c3)
	})
	e.kill(m, syscall.SIGTERM)
}

package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDaemonRefusesRenamedMesh: a spec on disk that renames the mesh is refused at reload (counted as an
// invalid reload, logged naming both names) and the last good spec stays enforced: a reverted Corefile is
// restored with meshd's blocks, which the renamed mesh's state check would refuse.
func TestDaemonRefusesRenamedMesh(t *testing.T) {
	e := newE2E(t)
	c1, c2 := e.sb.Clusters[0], e.sb.Clusters[1]
	m := e.start("--interval", "1h", "--state", e.state)
	e.waitFor(2*time.Minute, "every cluster resolving every other cluster's Pod", e.resolvesAll)

	b, err := os.ReadFile(e.spec + "/mesh.hcl")
	if err != nil {
		t.Fatal(err)
	}
	before := m.metric(`meshd_spec_reloads_total{result="invalid"}`)
	e.writeFile("mesh.hcl", strings.Replace(string(b), `mesh "tidb"`, `mesh "other"`, 1))
	// Reloaded, refused or not: then the Corefile check below says which spec is enforced.
	e.waitFor(30*time.Second, "the renamed spec reloaded", func() bool {
		logText, _ := os.ReadFile(m.log)
		return strings.Contains(string(logText), "renames the mesh") || strings.Contains(string(logText), "spec changed on disk")
	})
	e.revertCorefile(c1.Name)
	e.waitFor(30*time.Second, "tidb-1's Corefile restored under the old spec", func() bool {
		return strings.Contains(e.corefile(c1.Name), c2.Namespace+".svc.cluster.local:53")
	})
	if got := m.metric(`meshd_spec_reloads_total{result="invalid"}`); got != before+1 {
		t.Errorf("invalid spec reloads %v after the rename, want %v", got, before+1)
	}
	logText, _ := os.ReadFile(m.log)
	if !strings.Contains(string(logText), "the spec on disk renames the mesh") {
		t.Errorf("no error saying the spec on disk renames the mesh")
	}
	if n := len(e.livePeerings()); n != 3 {
		t.Errorf("%d live peerings after the refused rename, want 3", n)
	}
	e.kill(m, syscall.SIGTERM)
}

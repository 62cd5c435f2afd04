package main

import (
	"context"
	"encoding/json"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/meshd-io/meshd/internal/daemon"
	"github.com/meshd-io/meshd/internal/sandbox"
)

// TestDaemonSIGTERMFinishesThePass: SIGTERM in the middle of the start pass's apply (AWS answering through a
// proxy that delays every call) does not cut the pass short: meshd exits 0 within --shutdown-grace, after
// making every change of the pass, and its state file records the routes it made.
func TestDaemonSIGTERMFinishesThePass(t *testing.T) {
	e := newE2E(t)
	proxy, err := sandbox.StartDelayProxy(e.sb.MotoEndpoint, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	e.env = []string{"AWS_ENDPOINT_URL=" + proxy.URL}
	const grace = 90 * time.Second
	m := e.start("--interval", "1h", "--state", e.state, "--shutdown-grace", grace.String())
	t.Cleanup(func() { // e.kill shows the log only of a meshd still running
		if t.Failed() {
			b, _ := os.ReadFile(m.log)
			t.Logf("meshd log (%s):\n%s", m.log, tail(string(b), 6000))
		}
	})

	// The apply is under way once moto has a peering (the test asks moto directly, not through the proxy);
	// routes need the peerings active, so none is made yet.
	e.waitFor(2*time.Minute, "the start pass requesting a peering", func() bool { return e.peerings() > 0 })
	if n := e.peeringRoutes(); n != 0 {
		t.Fatalf("%d routes made before SIGTERM: the signal would not come in the middle of the apply", n)
	}
	sent := time.Now()
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.done:
	case <-time.After(grace + 30*time.Second):
		t.Fatalf("meshd still running %s after SIGTERM (grace %s)", time.Since(sent).Round(time.Second), grace)
	}
	took := time.Since(sent)
	t.Logf("meshd exited %s after SIGTERM", took.Round(time.Millisecond))
	if code := m.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("meshd exited %d on SIGTERM during a pass, want 0", code)
	}
	if took >= grace {
		t.Errorf("meshd exited %s after SIGTERM, not within the grace of %s: the pass was cut off, not finished", took, grace)
	}

	// The pass finished: every route made and recorded, and the DNS part written (resolving needs no meshd).
	routes := e.peeringRoutes()
	data, err := os.ReadFile(e.state)
	if err != nil {
		t.Fatalf("no state written by the pass that SIGTERM let finish: %v", err)
	}
	var st struct {
		Serial uint64            `json:"serial"`
		Routes []json.RawMessage `json:"routes"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	want := 0 // each route table of a member has a route to every other member
	for _, n := range e.sb.Networks {
		want += len(n.RouteTables()) * (len(e.sb.Networks) - 1)
	}
	if routes != want || len(st.Routes) != routes || st.Serial == 0 {
		t.Errorf("after the pass: %d routes in AWS (want %d), the state (serial %d) records %d", routes, want, st.Serial, len(st.Routes))
	}
	e.waitFor(time.Minute, "every cluster resolving every other cluster's Pod, meshd gone", e.resolvesAll)
}

// peerings counts the peerings in moto that are neither deleted nor rejected, in any state.
func (e *e2e) peerings() int {
	seen := map[string]bool{}
	for _, cl := range e.sb.Clusters {
		if _, ok := e.sb.Networks[cl.Name]; !ok {
			continue
		}
		c, _ := e.ec2(cl.Name)
		out, err := c.DescribeVpcPeeringConnections(context.Background(), &ec2.DescribeVpcPeeringConnectionsInput{})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, pc := range out.VpcPeeringConnections {
			if s := string(pc.Status.Code); s != "deleted" && s != "rejected" {
				seen[aws.ToString(pc.VpcPeeringConnectionId)] = true
			}
		}
	}
	return len(seen)
}

// peeringRoutes counts the routes through a peering in the clusters' route tables.
func (e *e2e) peeringRoutes() int {
	n := 0
	for _, cl := range e.sb.Clusters {
		net, ok := e.sb.Networks[cl.Name]
		if !ok {
			continue
		}
		c, _ := e.ec2(cl.Name)
		out, err := c.DescribeRouteTables(context.Background(), &ec2.DescribeRouteTablesInput{RouteTableIds: net.RouteTables()})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, rt := range out.RouteTables {
			for _, r := range rt.Routes {
				if aws.ToString(r.VpcPeeringConnectionId) != "" {
					n++
				}
			}
		}
	}
	return n
}

// TestJitterWithinDocumentedBounds: the controller meshd runs spreads its interval by at most the ±10% that
// --interval's help documents (daemon.TestIntervalJitterStaysWithinBounds shows that Jitter bounds it), and
// does spread it.
func TestJitterWithinDocumentedBounds(t *testing.T) {
	ctl := newController(options{interval: time.Hour, minInterval: time.Second}, &daemon.Reconciler{})
	if ctl.Jitter <= 0 || ctl.Jitter > 0.1 {
		t.Errorf("meshd's controller has Jitter %v, want within (0, 0.1]: --interval documents ±10%%", ctl.Jitter)
	}
	if ctl.Interval != time.Hour {
		t.Errorf("controller interval %s, want --interval's %s", ctl.Interval, time.Hour)
	}
}

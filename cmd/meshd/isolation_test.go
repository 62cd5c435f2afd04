package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/state"
)

// series reads every series of one metric from meshd's /metrics, by "name{labels}".
func (m *meshdProc) series(name string) map[string]float64 {
	out := map[string]float64{}
	m.metricSum(func(s string) bool {
		if strings.HasPrefix(s, name+"{") {
			out[s] = m.metric(s)
		}
		return false
	})
	return out
}

// apiCallsSince is what meshd_api_calls_total grew by since before, by series (zeros left out).
func apiCallsSince(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for s, v := range after {
		if d := v - before[s]; d != 0 {
			out[strings.TrimPrefix(s, "meshd_api_calls_total")] = d
		}
	}
	return out
}

// quiet waits until meshd has run no pass for 2 s, so that what follows is counted alone.
func (e *e2e) quiet(m *meshdProc) {
	e.t.Helper()
	passes, since := -1.0, time.Now()
	e.waitFor(60*time.Second, "meshd quiet for 2s", func() bool {
		n := m.metricSum(func(s string) bool { return strings.HasPrefix(s, "meshd_passes_total{") })
		if n != passes {
			passes, since = n, time.Now()
		}
		return time.Since(since) > 2*time.Second
	})
}

func (e *e2e) logHas(m *meshdProc, parts ...string) int {
	text, _ := os.ReadFile(m.log)
	n := 0
	for _, line := range strings.Split(string(text), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// TestDaemonFastAndIsolated runs meshd against the sandbox and checks, in order on one sandbox: what one
// watch-triggered pass costs in API calls; that --wait-timeout bounds how long a pass holds the state lock;
// that an AWS that does not answer leaves the Kubernetes corrections going; and that one cluster's AWS
// problem leaves the other clusters' corrections going.
func TestDaemonFastAndIsolated(t *testing.T) {
	e := newE2E(t)
	c1, c2, c3 := e.sb.Clusters[0], e.sb.Clusters[1], e.sb.Clusters[2]
	const waitTimeout = 4 * time.Second
	m := e.start("--interval", "1h", "--state", e.state, "--min-interval", "500ms",
		"--wait-timeout", waitTimeout.String(), "--aws-observe-timeout", "2s")
	e.waitFor(2*time.Minute, "the mesh converged", e.resolvesAll)
	e.quiet(m)

	t.Run("WatchTriggeredPassCalls", func(t *testing.T) {
		// A reverted Corefile: each pass it triggers reads tidb-1's three DNS objects and nothing of the
		// other clusters or AWS; the repair adds a read, the write and the Event. (meshd knows its own write by
		// the resourceVersion it returned, so its watch event triggers no spare pass.)
		before := m.series("meshd_api_calls_total")
		passes := m.metricSum(func(s string) bool { return strings.HasPrefix(s, "meshd_passes_total{") })
		corrected := m.metric(`meshd_drift_corrected_total{action="update",kind="corefile"}`)
		e.revertCorefile(c1.Name)
		e.waitFor(30*time.Second, "the correction counted", func() bool {
			return m.metric(`meshd_drift_corrected_total{action="update",kind="corefile"}`) > corrected
		})
		e.quiet(m)
		n := m.metricSum(func(s string) bool { return strings.HasPrefix(s, "meshd_passes_total{") }) - passes
		got := apiCallsSince(before, m.series("meshd_api_calls_total"))
		want := map[string]float64{
			`{api="kubernetes",operation="GET services"}`:   n,       // tidb-1's DNS Service, each pass
			`{api="kubernetes",operation="GET configmaps"}`: 2*n + 2, // coredns and its backup: each pass, and at apply
			`{api="kubernetes",operation="PUT configmaps"}`: 1,       // the repair
			`{api="kubernetes",operation="POST events"}`:    1,       // its Event
		}
		if n < 1 || n > 2 || !maps.Equal(want, got) {
			t.Errorf("API calls of %v watch-triggered passes: %v, want %v", n, got, want)
		}
		t.Logf("%v pass(es): %v", n, got)
	})

	t.Run("WaitTimeoutBoundsTheLock", func(t *testing.T) {
		// tidb-2's Service names a load balancer AWS does not have, and its controller is down: meshd waits
		// for it, but holds the state lock no longer than --wait-timeout.
		e.sb.LB.Pause(c2.Name, true)
		defer e.sb.LB.Pause(c2.Name, false)
		svcs := e.sb.Clients[c2.Name].CoreV1().Services("kube-system")
		ctx := context.Background()
		svc, err := svcs.Get(ctx, "across-cluster-dns-tcp", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		good := svc.Status.LoadBalancer
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{Hostname: "k8s-gone-0123456789.elb.us-west-2.amazonaws.com"}}
		if _, err := svcs.UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitFor(30*time.Second, "the drift of tidb-2's Service detected", func() bool {
			return m.metric(`meshd_drift_detected{kind="dns_service"}`) >= 1
		})
		start := time.Now()
		lockCtx, cancel := context.WithTimeout(ctx, 3*waitTimeout)
		defer cancel()
		unlock, err := state.NewLocal(e.state).Lock(lockCtx)
		if err != nil {
			t.Fatalf("the state lock was not released within %s: %v", 3*waitTimeout, err)
		}
		held := time.Since(start)
		_ = unlock()
		if held > waitTimeout {
			t.Errorf("the pass held the state lock %s after the drift was detected, more than --wait-timeout %s", held, waitTimeout)
		}
		t.Logf("state lock free %s after the drift was detected (--wait-timeout %s)", held, waitTimeout)
		e.waitFor(30*time.Second, "the failed wait logged", func() bool {
			return e.logHas(m, `"correction failed"`, `dns_service[`+c2.Name+`]`) > 0
		})
		// The controller is back and the status put back as it was.
		e.sb.LB.Pause(c2.Name, false)
		svc, err = svcs.Get(ctx, "across-cluster-dns-tcp", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svc.Status.LoadBalancer = good
		if _, err := svcs.UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitFor(60*time.Second, "tidb-1 resolving tidb-2 again", func() bool { return e.resolves(c1, c2) })
		// Settled: a full pass that succeeds, and then no pass for a while.
		since := float64(time.Now().Unix())
		e.waitFor(60*time.Second, "a successful full pass", func() bool {
			m.trigger()
			return m.metric("meshd_last_success_timestamp_seconds") > since
		})
		e.quiet(m)
	})

	t.Run("AWSUnobservable", func(t *testing.T) {
		// moto stops answering (SIGSTOP): a full pass cannot observe AWS, and a reverted Corefile is still
		// restored from the last known NLB addresses, with a warning.
		var moto interface{ Signal(os.Signal) error }
		for _, p := range e.sb.Processes() {
			if p.Name == "moto" {
				moto = p.Process()
			}
		}
		if err := moto.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		resume := func() { once.Do(func() { _ = moto.Signal(syscall.SIGCONT) }) }
		t.Cleanup(resume)
		defer resume()
		m.trigger() // a full pass: AWS is observed (and does not answer)
		e.waitFor(30*time.Second, "the AWS warning", func() bool { return e.logHas(m, "AWS could not be observed") > 0 })
		e.revertCorefile(c1.Name)
		e.waitFor(30*time.Second, "tidb-1's Corefile restored while AWS does not answer", func() bool {
			cf := e.corefile(c1.Name)
			return strings.Contains(cf, c2.Namespace+".svc.cluster.local:53") && strings.Contains(cf, c3.Namespace+".svc.cluster.local:53")
		})
		e.waitFor(30*time.Second, "tidb-1 resolving tidb-2 while AWS does not answer", func() bool { return e.resolves(c1, c2) })
		resume()
		e.waitFor(60*time.Second, "a successful pass once AWS answers", func() bool {
			m.trigger()
			return m.metric("meshd_last_success_timestamp_seconds") >= float64(time.Now().Add(-3*time.Second).Unix())
		})
	})

	t.Run("OneClusterAWSProblem", func(t *testing.T) {
		// tidb-3's EKS cluster is deleted: it is reported at its spec line every pass, nothing of it is
		// deleted, and the other clusters' AWS and Kubernetes drift is still corrected.
		ctx := context.Background()
		peerings := len(e.livePeerings())
		cfg := e.sb.AWSConfig(c3.Region)
		if _, err := eks.NewFromConfig(cfg).DeleteCluster(ctx, &eks.DeleteClusterInput{Name: aws.String(c3.Name)}); err != nil {
			t.Fatal(err)
		}
		c, n1 := e.ec2(c1.Name)
		toC2 := e.routeTo(c1.Name, n1.PrivateTable, c2.CIDR)
		if _, err := c.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(n1.PrivateTable), DestinationCidrBlock: aws.String(c2.CIDR)}); err != nil {
			t.Fatal(err)
		}
		e.revertCorefile(c2.Name)
		m.trigger() // AWS drift is seen on a full pass
		e.waitFor(60*time.Second, "tidb-1's route to tidb-2 and tidb-2's Corefile restored", func() bool {
			cf := e.corefile(c2.Name)
			return e.routeTo(c1.Name, n1.PrivateTable, c2.CIDR) == toC2 && strings.Contains(cf, c1.Namespace+".svc.cluster.local:53")
		})
		// Reported with its position at every pass (two full passes here).
		m.trigger()
		where := fmt.Sprintf("mesh.hcl:%d", lineOf(t, e, `eks_cluster  = "`+c3.Name+`"`))
		e.waitFor(30*time.Second, "the unknown EKS cluster reported twice at its spec line", func() bool {
			m.trigger()
			return e.logHas(m, where, "Unknown EKS cluster") >= 2
		})
		if got := len(e.livePeerings()); got != peerings {
			t.Errorf("%d live peerings while tidb-3 is held, want %d (nothing of it deleted)", got, peerings)
		}
		if !strings.Contains(e.corefile(c1.Name), c3.Namespace+".svc.cluster.local:53") {
			t.Error("tidb-1's block for the held tidb-3 was removed")
		}
	})
}

// lineOf is the line of the spec file's mesh.hcl that holds text.
func lineOf(t *testing.T, e *e2e, text string) int {
	b, err := os.ReadFile(e.spec + "/mesh.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, text) {
			return i + 1
		}
	}
	t.Fatalf("mesh.hcl has no line with %q", text)
	return 0
}

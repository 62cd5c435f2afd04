package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/meshd-io/meshd/internal/sandbox"
)

// BenchmarkDriftRepair measures, on the sandbox, the time from a Corefile revert (an EKS add-on update) to
// meshd's write restoring its blocks, seen on a watch. meshd runs at its defaults (a 30 s interval, a 1 s
// --min-interval) and again with --interval 5s; its AWS calls go through a DelayProxy in front of moto, which
// waits 80 ms before each (a real endpoint's round trip; moto alone answers in about 5 ms). For each
// interval, tidb-1's Corefile is reverted 20 times with the reverts spaced 0.5 s, 1.5 s and 2.5 s apart
// (latencyBench), so the reverts fall at every phase of the interval's AWS observation and of meshd's own
// writes. Target: p50 under 100 ms and p99 under 300 ms.
//
// Run with -benchtime 1x (the reverts are inside one op).
func BenchmarkDriftRepair(b *testing.B) {
	e := newE2E(b)
	e.delayAWS(80 * time.Millisecond)
	cms := e.sb.Clients[e.sb.Clusters[0].Name].CoreV1().ConfigMaps("kube-system")
	ctx := context.Background()
	latencyBench(b, e, []string{"--state", e.state}, e.resolvesAll, "revert -> restored",
		func(b *testing.B, _ int) (time.Time, time.Duration) {
			cm, err := cms.Get(ctx, "coredns", metav1.GetOptions{})
			if err != nil {
				b.Fatal(err)
			}
			cm.Data["Corefile"] = sandbox.DefaultEKSCorefile
			start := time.Now()
			updated, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
			if err != nil {
				b.Fatal(err)
			}
			w, err := cms.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=coredns", ResourceVersion: updated.ResourceVersion})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Stop()
			return start, waitRestored(b, w, start)
		})
}

// delayAWS puts a DelayProxy in front of moto for the meshd processes started from now on: each AWS call
// waits d, as a real regional endpoint's round trip does.
func (e *e2e) delayAWS(d time.Duration) {
	proxy, err := sandbox.StartDelayProxy(e.sb.MotoEndpoint, d)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = proxy.Close() })
	e.env = append(e.env, "AWS_ENDPOINT_URL="+proxy.URL)
}

func waitRestored(b *testing.B, w watch.Interface, start time.Time) time.Duration {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-w.ResultChan():
			if cm, ok := ev.Object.(*corev1.ConfigMap); ok && strings.Contains(cm.Data["Corefile"], "meshd.io/mesh") {
				return time.Since(start)
			}
		case <-timeout:
			b.Fatal("the Corefile was not restored within 30s")
		}
	}
}

// BenchmarkIdle measures what meshd costs while nothing drifts, at its default --interval (30 s) and
// --min-interval (1 s), watching 3 and 10 simulated clusters: passes, AWS and Kubernetes API calls per hour
// (counted by meshd's own metrics over an idle window of MESHD_BENCH_IDLE_WINDOW, default 65s, and scaled
// to an hour) and resident memory. Target: under 60 MiB resident for 10 clusters.
func BenchmarkIdle(b *testing.B) {
	window := 65 * time.Second
	if v := os.Getenv("MESHD_BENCH_IDLE_WINDOW"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			window = d
		}
	}
	for _, n := range []int{3, 10} {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			clusters := sandbox.ClustersN(n, "127.0.20.%d", "127.0.21.%d")
			var addrs []string
			for _, c := range clusters {
				addrs = append(addrs, c.DNS...)
			}
			if err := sandbox.CheckBind(addrs...); err != nil {
				b.Skip(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			sb, err := sandbox.Start(ctx, sandbox.Options{Dir: b.TempDir(), Clusters: clusters})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = sb.Stop() })
			e := newE2EOn(b, sb)
			m := e.start(append([]string{"--state", e.state, "--log-level", "info"}, defaultRates()...)...)
			e.waitFor(5*time.Minute, "the mesh converged", e.resolvesAll)
			e.quiet(m) // the passes that built the mesh are over
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				passes0, aws0, kube0 := m.passes(), m.calls("aws"), m.calls("kubernetes")
				time.Sleep(window)
				passes1, aws1, kube1 := m.passes(), m.calls("aws"), m.calls("kubernetes")
				perHour := float64(time.Hour) / float64(window)
				b.ReportMetric((passes1-passes0)*perHour, "passes/hour")
				b.ReportMetric((aws1-aws0)*perHour, "aws-calls/hour")
				b.ReportMetric((kube1-kube0)*perHour, "kube-calls/hour")
				b.ReportMetric(procKiB(b, m.cmd.Process.Pid, "VmRSS")/1024, "rss-MiB")
				b.ReportMetric(procKiB(b, m.cmd.Process.Pid, "VmHWM")/1024, "peak-rss-MiB")
				// Anonymous memory (heap, stacks) apart from file-backed pages (the binary's code, shared).
				b.ReportMetric(procKiB(b, m.cmd.Process.Pid, "RssAnon")/1024, "rss-anon-MiB")
				b.ReportMetric(procKiB(b, m.cmd.Process.Pid, "RssFile")/1024, "rss-file-MiB")
				b.ReportMetric(m.metric("go_memstats_heap_inuse_bytes")/(1<<20), "heap-inuse-MiB")
				b.ReportMetric(m.metric("go_goroutines"), "goroutines")
			}
		})
	}
}

// passes is how many passes meshd has run, whatever their result.
func (m *meshdProc) passes() float64 {
	return m.metricSum(func(series string) bool { return strings.HasPrefix(series, "meshd_passes_total{") })
}

func (m *meshdProc) calls(api string) float64 {
	prefix := fmt.Sprintf(`meshd_api_calls_total{api=%q,`, api)
	return m.metricSum(func(series string) bool { return strings.HasPrefix(series, prefix) })
}

// procKiB reads a memory figure (kB) of a process from /proc/<pid>/status.
func procKiB(b *testing.B, pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return v
		}
	}
	return 0
}

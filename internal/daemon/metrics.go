package daemon

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Metrics is a small Prometheus registry: counters, gauges and one histogram family, rendered in the text
// exposition format. meshd needs a dozen series; a hand-written registry keeps the client library (and its
// dependency tree) out of the binary.
type Metrics struct {
	mu       sync.Mutex
	families map[string]*family
}

type family struct {
	name, help, typ string
	series          map[string]float64 // by rendered label set
	buckets         []float64          // histograms only
	hist            map[string]*histogram
}

type histogram struct {
	counts []uint64
	sum    float64
	count  uint64
}

// Labels are a metric's label pairs.
type Labels map[string]string

func (l Labels) String() string {
	if len(l) == 0 {
		return ""
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, l[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Metric names meshd exports.
const (
	MetricPasses       = "meshd_passes_total"
	MetricPassDuration = "meshd_pass_duration_seconds"
	MetricCorrected    = "meshd_drift_corrected_total"
	MetricDetected     = "meshd_drift_detected"
	MetricAPICalls     = "meshd_api_calls_total"
	MetricErrors       = "meshd_errors_total"
	MetricLastSuccess  = "meshd_last_success_timestamp_seconds"
	MetricLeader       = "meshd_leader"
	MetricSpecReloads  = "meshd_spec_reloads_total"
	// MetricRepeatedDrift counts objects corrected repeatLimit times within repeatWindow (once per window).
	MetricRepeatedDrift = "meshd_drift_repeated_total"
	MetricPathOK        = "meshd_path_ok"
	// MetricAPIErrors counts failed attempts of API calls by error code: each retry of a throttled AWS call
	// counts, so throttling shows even when the retries succeed.
	MetricAPIErrors = "meshd_api_errors_total"
	// MetricStarted and MetricStaleAfter let an alert say what /readyz says: no pass has succeeded for
	// MetricStaleAfter (three intervals), counting from the start before the first success.
	MetricStarted    = "meshd_start_timestamp_seconds"
	MetricStaleAfter = "meshd_success_stale_after_seconds"
)

// NewMetrics returns a registry with meshd's families declared.
func NewMetrics() *Metrics {
	m := &Metrics{families: map[string]*family{}}
	m.declare(MetricPasses, "counter", "Reconcile passes by result (ok, error, skipped).")
	m.declareHistogram(MetricPassDuration, "Duration of reconcile passes.", []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300})
	m.declare(MetricCorrected, "counter", "Changes applied to correct drift, by resource kind and action.")
	m.declare(MetricDetected, "gauge", "Changes the last pass found necessary, by resource kind (in dry-run mode: not applied).")
	m.declare(MetricAPICalls, "counter", "API calls by API (aws, kubernetes) and operation.")
	m.declare(MetricErrors, "counter", "Errors by kind (spec, observe, apply, conflict, state).")
	m.declare(MetricLastSuccess, "gauge", "Unix time of the last pass that completed without errors.")
	m.declare(MetricLeader, "gauge", "1 while this replica is the leader (or leader election is off), else 0.")
	m.declare(MetricSpecReloads, "counter", "Spec reloads from disk by result (ok, invalid).")
	m.declare(MetricPathOK, "gauge", "1 when the path from one member to another passes a layer's check (peering or transit_gateway, routes, sg, nacl, dns), 0 when it fails; a layer not checked has no series.")
	m.declare(MetricAPIErrors, "counter", "Failed attempts of API calls (each retry counts) by API (aws), operation and error code (the AWS error code, e.g. RequestLimitExceeded; transport when there is none).")
	m.declare(MetricStarted, "gauge", "Unix time meshd started.")
	m.declare(MetricStaleAfter, "gauge", "How long without a successful pass makes /readyz fail (three --interval).")
	m.declare(MetricRepeatedDrift, "counter", "Objects corrected 3 times within 10 minutes (someone else keeps changing them), by kind; once per object and window.")
	return m
}

func (m *Metrics) declare(name, typ, help string) {
	m.families[name] = &family{name: name, typ: typ, help: help, series: map[string]float64{}}
}

func (m *Metrics) declareHistogram(name, help string, buckets []float64) {
	m.families[name] = &family{name: name, typ: "histogram", help: help, buckets: buckets, hist: map[string]*histogram{}}
}

// Add increases a counter.
func (m *Metrics) Add(name string, l Labels, v float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.families[name].series[l.String()] += v
}

// Set sets a gauge.
func (m *Metrics) Set(name string, l Labels, v float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.families[name].series[l.String()] = v
}

// Reset drops every series of a gauge family (before setting the current ones).
func (m *Metrics) Reset(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.families[name].series = map[string]float64{}
}

// Observe records a histogram sample.
func (m *Metrics) Observe(name string, l Labels, v float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.families[name]
	h := f.hist[l.String()]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(f.buckets))}
		f.hist[l.String()] = h
	}
	for i, b := range f.buckets {
		if v <= b {
			h.counts[i]++
		}
	}
	h.sum += v
	h.count++
}

// Value returns a counter's or gauge's current value (for tests and the demo).
func (m *Metrics) Value(name string, l Labels) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.families[name].series[l.String()]
}

// Sum adds up every series of a family.
func (m *Metrics) Sum(name string) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	total := 0.0
	for _, v := range m.families[name].series {
		total += v
	}
	return total
}

// WriteTo renders every family in the Prometheus text format. It renders under the lock and writes after
// releasing it: a scraper that stops reading must not block Add, which the AWS and Kubernetes call hooks, and
// so every pass, call.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	m.render(&b)
	writeRuntime(&b)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// render writes the families into b, under the lock.
func (m *Metrics) render(b *strings.Builder) {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.families))
	for n := range m.families {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := m.families[n]
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		if f.typ == "histogram" {
			for _, ls := range sortedSeries(f.hist) {
				h := f.hist[ls]
				for i, bound := range f.buckets {
					fmt.Fprintf(b, "%s_bucket%s %d\n", f.name, withLabel(ls, "le", formatFloat(bound)), h.counts[i])
				}
				fmt.Fprintf(b, "%s_bucket%s %d\n", f.name, withLabel(ls, "le", "+Inf"), h.count)
				fmt.Fprintf(b, "%s_sum%s %s\n%s_count%s %d\n", f.name, ls, formatFloat(h.sum), f.name, ls, h.count)
			}
			continue
		}
		for _, ls := range sortedSeries(f.series) {
			fmt.Fprintf(b, "%s%s %s\n", f.name, ls, formatFloat(f.series[ls]))
		}
	}
}

// writeRuntime adds the Go runtime gauges operators expect from any Go service (named as the Prometheus
// client library names them): goroutines, heap in use, and memory obtained from the OS.
func writeRuntime(b *strings.Builder) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for _, g := range []struct {
		name, help string
		value      float64
	}{
		{"go_goroutines", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine())},
		{"go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", float64(ms.HeapInuse)},
		{"go_memstats_sys_bytes", "Number of bytes obtained from system.", float64(ms.Sys)},
	} {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", g.name, g.help, g.name, g.name, formatFloat(g.value))
	}
}

func sortedSeries[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func withLabel(ls, k, v string) string {
	pair := fmt.Sprintf("%s=%q", k, v)
	if ls == "" {
		return "{" + pair + "}"
	}
	return ls[:len(ls)-1] + "," + pair + "}"
}

func formatFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%g", v)
}

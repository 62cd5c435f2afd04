package main

import (
	"flag"
	"fmt"
	"math"
	"slices"
	"syscall"
	"testing"
	"time"
)

// What the latency benchmarks (BenchmarkDriftRepair, BenchmarkReplication, BenchmarkExternalAddressFollow)
// share: meshd at the interval settings users run, events at several spacings, and the percentiles reported.

// defaultFlag is the default of one of meshd's flags, read from the flag set meshd parses, so that a
// benchmark "at the defaults" follows them when they change.
func defaultFlag(name string) string {
	fs := flag.NewFlagSet("meshd", flag.ContinueOnError)
	new(options).register(fs)
	return fs.Lookup(name).DefValue
}

// defaultRates are meshd's default --interval and --min-interval, given explicitly: e2e.start's own
// --min-interval (200 ms, to keep tests short) would otherwise apply.
func defaultRates() []string {
	return []string{"--interval", defaultFlag("interval"), "--min-interval", defaultFlag("min-interval")}
}

// benchIntervals are the settings a latency benchmark runs meshd at: its defaults, and --interval 5s, where
// a repair is more often asked for while a background AWS observation runs.
func benchIntervals() []struct {
	name string
	args []string
} {
	return []struct {
		name string
		args []string
	}{
		{"interval=" + defaultFlag("interval"), defaultRates()},
		{"interval=5s", []string{"--interval", "5s", "--min-interval", defaultFlag("min-interval")}},
	}
}

// benchSpacings are how far apart a latency benchmark's events are: closer than, about, and past the default
// --min-interval of 1 s plus an AWS observation behind 80 ms calls, so that events fall at every phase of it.
var benchSpacings = []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 2500 * time.Millisecond}

// benchEvents is how many events each spacing times.
const benchEvents = 20

// event makes the r-th change of a latency benchmark and returns once its effect is seen: when the change was
// made and how long the effect took.
type event func(b *testing.B, r int) (start time.Time, took time.Duration)

// latencyBench runs, for each of benchIntervals, meshd on e with args, waits for ready and for meshd to be
// quiet (steady state: the passes that built the mesh are over), then for each of benchSpacings times
// benchEvents events, each spacing after the last (or as soon as the last was seen, when that is later).
// Each sub-benchmark, interval=…/spacing=…, reports p50, p95, p99 and max in milliseconds.
func latencyBench(b *testing.B, e *e2e, args []string, ready func() bool, what string, ev event) {
	for _, run := range benchIntervals() {
		b.Run(run.name, func(b *testing.B) {
			m := e.start(append(append([]string{"--log-level", "info"}, args...), run.args...)...)
			defer e.kill(m, syscall.SIGTERM)
			e.waitFor(2*time.Minute, "the mesh converged", ready)
			e.quiet(m)
			for _, spacing := range benchSpacings {
				b.Run(fmt.Sprintf("spacing=%s", spacing), func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						lat := spaced(b, benchEvents, spacing, ev)
						reportLatencies(b, lat)
						b.Logf("%s, sorted: %v", what, lat)
					}
				})
			}
		})
	}
}

// spaced runs n events spacing apart and returns their latencies, sorted.
func spaced(b *testing.B, n int, spacing time.Duration, ev event) []time.Duration {
	var lat []time.Duration
	next := time.Now().Add(spacing)
	for r := 0; r < n; r++ {
		time.Sleep(time.Until(next))
		start, took := ev(b, r)
		next = start.Add(spacing)
		lat = append(lat, took)
	}
	slices.Sort(lat)
	return lat
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// percentile is the nearest-rank p-th percentile of sorted: the smallest value at least p% of the values
// are not above. Of 20 values, p95 is the 19th and p99 the 20th (the maximum).
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// reportLatencies sorts lat and reports its median, 95th and 99th percentiles and maximum, in milliseconds.
func reportLatencies(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 95)), "p95-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
}

package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// BenchmarkReplication measures, on the sandbox, the time from a renewal of the replicated CA Secret in
// tidb-1 to both copies (tidb-2 and tidb-3) holding the new data, seen on watches of the copies. meshd runs
// at its defaults and with --interval 5s, its AWS calls behind 80 ms each (DelayProxy); the source is renewed
// 20 times with the renewals spaced 0.5 s, 1.5 s and 2.5 s apart (latencyBench). Every propagation comes
// from meshd's watch on the source, and a watch-triggered pass makes no AWS call. Target: p50 under 500 ms.
// Run with -benchtime 1x.
func BenchmarkReplication(b *testing.B) {
	r := newReplicateEnv(b)
	r.delayAWS(80 * time.Millisecond)
	c2, c3 := r.sb.Clusters[1].Name, r.sb.Clusters[2].Name
	r.spec(false, caBlock)
	ctx := context.Background()
	renewals := 0 // generations are unique across sub-benchmarks
	latencyBench(b, r.e2e, []string{"--state", r.state}, func() bool { return r.sameAsSource(c2) && r.sameAsSource(c3) },
		"source renewed -> both copies updated", func(b *testing.B, _ int) (time.Time, time.Duration) {
			renewals++
			gen := fmt.Sprintf("bench-%d", renewals)
			var watches []watch.Interface
			for _, c := range []string{c2, c3} {
				w, err := r.client(c).CoreV1().Secrets(caNamespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + caSecret})
				if err != nil {
					b.Fatal(err)
				}
				defer w.Stop()
				watches = append(watches, w)
			}
			start := time.Now()
			r.writeCA(gen)
			var slowest time.Duration
			for _, w := range watches {
				slowest = max(slowest, waitCopied(b, w, gen, start))
			}
			return start, slowest
		})
}

// waitCopied waits on a copy's watch until it holds the data of generation gen.
func waitCopied(b *testing.B, w watch.Interface, gen string, start time.Time) time.Duration {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-w.ResultChan():
			if s, ok := ev.Object.(*corev1.Secret); ok && strings.Contains(string(s.Data["ca.crt"]), "MESHD-TEST-CA-"+gen+"-") {
				return time.Since(start)
			}
		case <-timeout:
			b.Fatalf("the copy did not get generation %s within 30s", gen)
		}
	}
}

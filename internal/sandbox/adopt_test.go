package sandbox_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshd-io/meshd/internal/corefile"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
)

// TestAdoptRunbookOnSandbox: the runbook done by hand on the sandbox (each cluster's Service
// kube-system/across-cluster-dns-tcp with the runbook's annotations, its NLB from the load-balancer
// stand-in, and in each Corefile a block per other cluster forwarding to that cluster's NLB addresses, as
// the runbook writes it) is taken over with adopt = true without a DNS outage. Without adopt, apply reports
// the conflicts and changes nothing. With it, while apply runs and until every CoreDNS has reloaded the
// adopted Corefile, every ordered pair is queried in a loop and no answer fails; the Services are the same
// objects (UID) with the same NLB; each Corefile differs from the hand-written one only inside the adopted
// blocks; and a second plan is empty.
func TestAdoptRunbookOnSandbox(t *testing.T) {
	s := startSandbox(t)
	s.SetEnv(t)
	ctx := context.Background()
	lbs, err := awsprovider.New(ctx, awsprovider.Options{Mesh: "tidb", PollInterval: 200 * time.Millisecond, WaitTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}

	// The runbook, step 5: the Service, and the NLB's private addresses once it is active.
	nlb := map[string][]string{}
	uids := map[string]string{}
	for _, c := range s.Clusters {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "across-cluster-dns-tcp", Namespace: "kube-system", Annotations: map[string]string{
				"service.beta.kubernetes.io/aws-load-balancer-type":                              "nlb",
				"service.beta.kubernetes.io/aws-load-balancer-internal":                          "true",
				"service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": "true",
			}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"k8s-app": "kube-dns"},
				Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(53)}}},
		}
		created, err := s.Clients[c.Name].CoreV1().Services("kube-system").Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids[c.Name] = string(created.UID)
	}
	hosts := map[string]string{}
	for _, c := range s.Clusters {
		hosts[c.Name] = waitHostname(t, s, c.Name)
		lb, err := lbs.WaitLoadBalancer(ctx, c.Region, hosts[c.Name], "runbook "+c.Name)
		if err != nil {
			t.Fatal(err)
		}
		// The runbook lists the ENIs' addresses as they come; meshd writes them sorted by address. Written
		// the other way round here, so that adopting the block rewrites it and CoreDNS really reloads during
		// apply. (Sorted as addresses, not strings: with the sandbox's 127.0.9.x and 127.0.10.x set the two
		// orders differ, and a reversed string order was meshd's own, so nothing reloaded.)
		nlb[c.Name] = slices.SortedFunc(slices.Values(lb.Addresses), func(a, b string) int {
			return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b))
		})
		slices.Reverse(nlb[c.Name])
		if len(nlb[c.Name]) < 2 {
			t.Fatalf("%s's NLB has %d addresses; the test wants at least 2 to write them out of order", c.Name, len(nlb[c.Name]))
		}
	}

	// The runbook, step 6: a block per other cluster, after the default one, with a comment of the user's.
	blocks := map[string][]string{}
	handWritten := map[string]string{}
	for _, c := range s.Clusters {
		text := sandbox.DefaultEKSCorefile + "\n# Added by hand, following the cross-cluster DNS runbook.\n"
		for _, other := range s.Clusters {
			if other.Name == c.Name {
				continue
			}
			blk := fmt.Sprintf("%s.svc.cluster.local:53 {\n    errors\n    cache 30\n    forward . %s {\n        force_tcp\n    }\n}\n",
				other.Namespace, strings.Join(nlb[other.Name], " "))
			blocks[c.Name] = append(blocks[c.Name], blk)
			text += "\n" + blk
		}
		setCorefile(t, s, c.Name, text)
		handWritten[c.Name] = text
	}
	resolvesEveryPair(t, s)

	dir := t.TempDir()
	spec := filepath.Join(dir, "mesh.hcl")
	writeSpec := func(adopt bool) {
		var b strings.Builder
		fmt.Fprintf(&b, "mesh \"tidb\" {\n  adopt = %t\n  dns {\n    forward_by = \"namespace\"\n  }\n}\n", adopt)
		for _, c := range s.Clusters {
			fmt.Fprintf(&b, "cluster %q {\n  region = %q\n  kube_context = %q\n  eks_cluster = %q\n  namespace = %q\n}\n",
				c.Name, c.Region, c.Context, c.Name, c.Namespace)
		}
		if err := os.WriteFile(spec, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := meshctl(t, s, dir, spec)
	corefiles := func() map[string]string { return corefilesOf(t, s) }

	// Without adopt: a conflict per Service, and nothing changes in Kubernetes.
	writeSpec(false)
	out := run(1, "apply", "--auto-approve")
	for _, want := range []string{"already has a Service kube-system/across-cluster-dns-tcp that meshd does not own", "set adopt = true", "nothing was changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply without adopt: output lacks %q:\n%s", want, out)
		}
	}
	if got := corefiles(); fmt.Sprint(got) != fmt.Sprint(handWritten) {
		t.Errorf("apply without adopt changed a Corefile:\n%v", got)
	}
	for _, c := range s.Clusters {
		svc, err := s.Clients[c.Name].CoreV1().Services("kube-system").Get(ctx, "across-cluster-dns-tcp", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(svc.Labels) != 0 {
			t.Errorf("apply without adopt labelled %s's Service: %v", c.Name, svc.Labels)
		}
	}

	// With adopt: every ordered pair is asked in a loop while apply runs and until each CoreDNS has loaded
	// the rewritten Corefile.
	writeSpec(true)
	plan := run(2, "plan", "--detailed-exitcode")
	for _, want := range []string{"> dns_service[tidb-1]", "> corefile[tidb-1]", "(adopted)", "6 to adopt"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan with adopt lacks %q:\n%s", want, plan)
		}
	}
	reloads := map[string]int{}
	for _, c := range s.Clusters {
		reloads[c.Name] = reloadCount(t, s, c.Name)
	}
	loopCtx, stop := context.WithCancel(ctx)
	var queries, failures atomic.Int64
	var failMu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for loopCtx.Err() == nil {
			for _, a := range s.Clusters {
				for _, b := range s.Clusters {
					if a.Name == b.Name {
						continue
					}
					qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					addrs, err := testenv.LookupAContext(qctx, a.DNSAddr()+":53", b.SampleName(), false)
					cancel()
					queries.Add(1)
					if err != nil || len(addrs) != 1 || addrs[0].String() != b.SampleIP {
						failures.Add(1)
						failMu.Lock()
						if len(failed) < 10 {
							failed = append(failed, fmt.Sprintf("%s %s: %s -> %v, %v", time.Now().Format("15:04:05.000"), a.Name, b.SampleName(), addrs, err))
						}
						failMu.Unlock()
					}
				}
			}
		}
	}()
	run(0, "apply", "--auto-approve")
	applied := queries.Load()
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range s.Clusters {
		for reloadCount(t, s, c.Name) <= reloads[c.Name] {
			if time.Now().After(deadline) {
				t.Errorf("%s's CoreDNS did not reload the adopted Corefile", c.Name)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// A few more rounds against the reloaded configuration (each query gives up after 2 s, so twelve take at
	// most 24 s; the deadline only keeps a stuck query loop from hanging the test).
	for n, deadline := queries.Load(), time.Now().Add(time.Minute); queries.Load() < n+12; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("only %d queries within a minute after the reloads, want 12", queries.Load()-n)
			break
		}
	}
	stop()
	wg.Wait()
	t.Logf("%d queries over the 6 ordered pairs (%d while apply ran), %d failed", queries.Load(), applied, failures.Load())
	if failures.Load() > 0 {
		t.Errorf("%d of %d queries failed during the adoption:\n%s", failures.Load(), queries.Load(), strings.Join(failed, "\n"))
	}
	if applied < 6 {
		t.Errorf("only %d queries ran while apply ran; every pair should have been asked", applied)
	}

	// The Corefiles: only the adopted blocks changed (marker above, addresses sorted); every other byte is
	// the hand-written one.
	got := corefiles()
	for _, c := range s.Clusters {
		want := handWritten[c.Name]
		for _, blk := range blocks[c.Name] {
			adopted := blk
			for _, other := range s.Clusters {
				rev := strings.Join(nlb[other.Name], " ")
				adopted = strings.Replace(adopted, rev, strings.Join(slices.Sorted(slices.Values(nlb[other.Name])), " "), 1)
			}
			want = strings.Replace(want, blk, corefile.Marker("tidb")+"\n"+adopted, 1)
		}
		if got[c.Name] != want {
			t.Errorf("%s's Corefile after adoption:\n%s\nwant (the hand-written one with the adopted blocks as meshd's):\n%s", c.Name, got[c.Name], want)
		}
		svc, err := s.Clients[c.Name].CoreV1().Services("kube-system").Get(ctx, "across-cluster-dns-tcp", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(svc.UID) != uids[c.Name] || hostnameOf(svc) != hosts[c.Name] {
			t.Errorf("%s's Service was replaced or got another NLB: uid %s (was %s), hostname %s (was %s)",
				c.Name, svc.UID, uids[c.Name], hostnameOf(svc), hosts[c.Name])
		}
		if svc.Labels["app.kubernetes.io/managed-by"] != "meshd" || svc.Labels["meshd.io/mesh"] != "tidb" {
			t.Errorf("%s's Service is not labelled as meshd's: %v", c.Name, svc.Labels)
		}
	}
	run(0, "plan", "--detailed-exitcode")
	resolvesEveryPair(t, s)
}

func hostnameOf(svc *corev1.Service) string {
	if len(svc.Status.LoadBalancer.Ingress) == 0 {
		return ""
	}
	return svc.Status.LoadBalancer.Ingress[0].Hostname
}

// waitHostname waits until the load-balancer stand-in has set the DNS Service's hostname in cluster.
func waitHostname(t *testing.T, s *sandbox.Sandbox, cluster string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		svc, err := s.Clients[cluster].CoreV1().Services("kube-system").Get(context.Background(), "across-cluster-dns-tcp", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if h := hostnameOf(svc); h != "" {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the load-balancer stand-in set no hostname on the DNS Service", cluster)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reloadCount is how often cluster's CoreDNS has loaded a changed Corefile, from its log.
func reloadCount(t *testing.T, s *sandbox.Sandbox, cluster string) int {
	t.Helper()
	b, err := os.ReadFile(s.DNS[cluster].LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "Reloading complete")
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
)

// e2e is one sandbox with meshd processes run against it.
type e2e struct {
	t      testing.TB
	sb     *sandbox.Sandbox
	bin    string
	dir    string
	spec   string
	state  string
	meshds []*meshdProc
	// env is added to the sandbox's environment of the meshd processes started from now on (the last value
	// of a variable wins).
	env []string
}

type meshdProc struct {
	cmd     *exec.Cmd
	metrics string // http://127.0.0.1:port
	trig    string // http://127.0.0.1:port of --trigger-addr
	log     string
	done    chan struct{}
}

func buildMeshd(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "meshd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func newE2E(t testing.TB) *e2e { return newE2EOn(t, sandbox.StartT(t)) }

// newE2EOn runs meshd against a sandbox the caller started.
func newE2EOn(t testing.TB, sb *sandbox.Sandbox) *e2e {
	e := &e2e{t: t, sb: sb, bin: buildMeshd(t), dir: t.TempDir()}
	e.spec = filepath.Join(e.dir, "spec")
	e.state = filepath.Join(e.dir, "meshd.state.json")
	if err := os.MkdirAll(e.spec, 0o755); err != nil {
		t.Fatal(err)
	}
	e.writeSpec(sb.Clusters)
	t.Cleanup(func() {
		for _, m := range e.meshds {
			e.kill(m, syscall.SIGKILL)
		}
	})
	return e
}

func (e *e2e) writeSpec(clusters []sandbox.Cluster) {
	var b strings.Builder
	b.WriteString("mesh \"tidb\" {\n  dns {\n    forward_by = \"namespace\"\n  }\n}\n")
	for _, c := range clusters {
		if c.External { // outside AWS: its DNS Service gets an address from the MetalLB stand-in
			fmt.Fprintf(&b, "\ncluster %q {\n  network      = \"external\"\n  kube_context = %q\n  namespace    = %q\n  dns {\n    service_type = \"LoadBalancer\"\n  }\n}\n",
				c.Name, c.Context, c.Namespace)
			continue
		}
		fmt.Fprintf(&b, "\ncluster %q {\n  region       = %q\n  kube_context = %q\n  eks_cluster  = %q\n  namespace    = %q\n}\n",
			c.Name, c.Region, c.Context, c.Name, c.Namespace)
	}
	e.writeFile("mesh.hcl", b.String())
}

func (e *e2e) writeFile(name, text string) {
	// Write-and-rename, as editors and ConfigMap volumes do.
	tmp := filepath.Join(e.spec, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.spec, name)); err != nil {
		e.t.Fatal(err)
	}
}

// start runs meshd with the sandbox's environment and waits until /readyz answers.
func (e *e2e) start(args ...string) *meshdProc {
	e.t.Helper()
	port, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		e.t.Fatal(err)
	}
	tport, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		e.t.Fatal(err)
	}
	m := &meshdProc{metrics: fmt.Sprintf("http://127.0.0.1:%d", port), trig: fmt.Sprintf("http://127.0.0.1:%d", tport),
		done: make(chan struct{}), log: filepath.Join(e.dir, fmt.Sprintf("meshd-%d.log", len(e.meshds)))}
	base := []string{"--spec", e.spec, "--kubeconfig", e.sb.Kubeconfig, "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--trigger-addr", fmt.Sprintf("127.0.0.1:%d", tport),
		"--min-interval", "200ms", "--log-level", "debug"}
	m.cmd = exec.Command(e.bin, append(base, args...)...)
	m.cmd.Env = append(append(os.Environ(), e.sb.Env()...), e.env...)
	logf, err := os.Create(m.log)
	if err != nil {
		e.t.Fatal(err)
	}
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { _ = m.cmd.Wait(); logf.Close(); close(m.done) }()
	e.meshds = append(e.meshds, m)
	e.waitFor(30*time.Second, "meshd ready", func() bool { return httpOK(m.metrics + "/readyz") })
	return m
}

func (e *e2e) kill(m *meshdProc, sig syscall.Signal) {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(sig)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	if e.t.Failed() {
		b, _ := os.ReadFile(m.log)
		e.t.Logf("meshd log (%s):\n%s", m.log, tail(string(b), 6000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func httpOK(url string) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// metric reads one series from meshd's /metrics ("name{labels}" exactly as exposed, or a bare name).
func (m *meshdProc) metric(series string) float64 {
	return m.metricSum(func(name string) bool { return name == series })
}

// metricSum adds up the series whose "name{labels}" match.
func (m *meshdProc) metricSum(match func(series string) bool) float64 {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(m.metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		// The value follows the last space: label values may hold spaces ("GET configmaps").
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if name, value := line[:max(i, 0)], line[i+1:]; i > 0 && !strings.HasPrefix(name, "#") && match(name) {
			v, _ := strconv.ParseFloat(value, 64)
			sum += v
		}
	}
	return sum
}

func (m *meshdProc) trigger() {
	resp, err := http.Post(m.trig+"/trigger", "text/plain", nil)
	if err == nil {
		resp.Body.Close()
	}
}

func (e *e2e) waitFor(timeout time.Duration, what string, cond func() bool) time.Duration {
	e.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			e.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// resolvesAll reports whether every cluster's CoreDNS resolves every other cluster's sample Pod.
func (e *e2e) resolvesAll() bool {
	for _, a := range e.sb.Clusters {
		for _, b := range e.sb.Clusters {
			if !e.resolves(a, b) {
				return false
			}
		}
	}
	return true
}

func (e *e2e) resolves(a, b sandbox.Cluster) bool {
	name := fmt.Sprintf("sample-nginx.sample-nginx-peer.%s.svc.cluster.local", b.Namespace)
	addrs, err := testenv.LookupA(a.DNS[0]+":53", name, true)
	return err == nil && len(addrs) == 1 && addrs[0].String() == b.SampleIP
}

func (e *e2e) corefile(cluster string) string {
	cm, err := e.sb.Clients[cluster].CoreV1().ConfigMaps("kube-system").Get(context.Background(), "coredns", metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return cm.Data["Corefile"]
}

// revertCorefile puts EKS's default Corefile back, as an add-on update with OVERWRITE does.
func (e *e2e) revertCorefile(cluster string) {
	ctx := context.Background()
	cms := e.sb.Clients[cluster].CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	cm.Data["Corefile"] = sandbox.DefaultEKSCorefile
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *e2e) ec2(cluster string) (*ec2.Client, sandbox.Network) {
	n := e.sb.Networks[cluster]
	return ec2.NewFromConfig(e.sb.AWSConfig(n.Region)), n
}

func (e *e2e) routeTo(cluster, table, cidr string) string {
	c, _ := e.ec2(cluster)
	out, err := c.DescribeRouteTables(context.Background(), &ec2.DescribeRouteTablesInput{RouteTableIds: []string{table}})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, rt := range out.RouteTables {
		for _, r := range rt.Routes {
			if aws.ToString(r.DestinationCidrBlock) == cidr {
				return aws.ToString(r.VpcPeeringConnectionId)
			}
		}
	}
	return ""
}

func (e *e2e) meshRules(cluster string) []string {
	c, n := e.ec2(cluster)
	out, err := c.DescribeSecurityGroupRules(context.Background(), &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{n.SecurityGroupID}}}})
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, r := range out.SecurityGroupRules {
		if !aws.ToBool(r.IsEgress) && aws.ToString(r.GroupId) == n.SecurityGroupID {
			for _, tag := range r.Tags {
				if aws.ToString(tag.Key) == "meshd.io/mesh" {
					ids = append(ids, aws.ToString(r.SecurityGroupRuleId))
				}
			}
		}
	}
	sort.Strings(ids)
	return ids
}

func (e *e2e) livePeerings() map[string]string {
	out := map[string]string{}
	for _, cl := range e.sb.Clusters {
		c, _ := e.ec2(cl.Name)
		pcs, err := c.DescribeVpcPeeringConnections(context.Background(), &ec2.DescribeVpcPeeringConnectionsInput{})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, pc := range pcs.VpcPeeringConnections {
			if s := pc.Status.Code; s == ec2types.VpcPeeringConnectionStateReasonCodeActive {
				out[aws.ToString(pc.VpcPeeringConnectionId)] = aws.ToString(pc.RequesterVpcInfo.VpcId) + "-" + aws.ToString(pc.AccepterVpcInfo.VpcId)
			}
		}
	}
	return out
}

// TestDaemonCorrectsDrift runs meshd against the sandbox and breaks the mesh in every way issue 4 names.
func TestDaemonCorrectsDrift(t *testing.T) {
	e := newE2E(t)
	c1, c2, c3 := e.sb.Clusters[0], e.sb.Clusters[1], e.sb.Clusters[2]

	// 1. From empty to converged, with no timer: the start pass does it.
	m := e.start("--interval", "1h", "--state", e.state)
	e.waitFor(2*time.Minute, "every cluster resolving every other cluster's Pod", e.resolvesAll)

	// 2. A reverted Corefile is restored from the Kubernetes watch, long before the 1h interval.
	var latencies []time.Duration
	for i := 0; i < 5; i++ {
		e.revertCorefile(c1.Name)
		latencies = append(latencies, e.waitFor(30*time.Second, "tidb-1's Corefile restored", func() bool {
			return strings.Contains(e.corefile(c1.Name), c2.Namespace+".svc.cluster.local:53")
		}))
	}
	t.Logf("Corefile revert -> restored: %v", latencies)
	e.waitFor(30*time.Second, "tidb-1 resolving tidb-2 again", func() bool { return e.resolves(c1, c2) })
	// Counted once the pass has also written the state, a moment after the Corefile write.
	e.waitFor(30*time.Second, "5 corefile corrections counted", func() bool {
		return m.metric(`meshd_drift_corrected_total{action="update",kind="corefile"}`) >= 5
	})
	e.kill(m, syscall.SIGTERM)

	// 3. AWS drift is restored by the next AWS pass (a 2s interval here).
	m = e.start("--interval", "2s", "--state", e.state)
	c, n1 := e.ec2(c1.Name)
	ctx := context.Background()
	peering := e.routeTo(c1.Name, n1.PrivateTable, c3.CIDR)
	if peering == "" {
		t.Fatal("no route to tidb-3 in tidb-1's private table")
	}
	if _, err := c.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(n1.PrivateTable), DestinationCidrBlock: aws.String(c3.CIDR)}); err != nil {
		t.Fatal(err)
	}
	rules := e.meshRules(c1.Name)
	if _, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(n1.SecurityGroupID), SecurityGroupRuleIds: rules[:1]}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(30*time.Second, "route and rule restored", func() bool {
		return e.routeTo(c1.Name, n1.PrivateTable, c3.CIDR) == peering && len(e.meshRules(c1.Name)) == len(rules)
	})
	// The pass that found the route gone said so in its path verdicts (they describe the world as the pass
	// found it); a later pass reports the path whole again.
	e.waitFor(30*time.Second, "meshd_path_ok for tidb-1 -> tidb-3 routes back at 1", func() bool {
		return m.metric(`meshd_path_ok{from="tidb-1",layer="routes",to="tidb-3"}`) == 1
	})
	if log, err := os.ReadFile(m.log); err != nil {
		t.Fatal(err)
	} else if !slices.ContainsFunc(strings.Split(string(log), "\n"), func(l string) bool {
		return strings.Contains(l, `"path check fails"`) && strings.Contains(l, `"layer":"routes"`) && strings.Contains(l, c3.CIDR)
	}) {
		t.Error("meshd did not log the broken route path with its cause")
	}
	// A deleted peering is requested again, and the routes through it move to the new one.
	if _, err := c.DeleteVpcPeeringConnection(ctx, &ec2.DeleteVpcPeeringConnectionInput{VpcPeeringConnectionId: aws.String(peering)}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(60*time.Second, "a new peering to tidb-3 with the routes moved to it", func() bool {
		now := e.routeTo(c1.Name, n1.PrivateTable, c3.CIDR)
		_, live := e.livePeerings()[now]
		return now != "" && now != peering && live
	})
	if n := len(e.livePeerings()); n != 3 {
		t.Errorf("%d live peerings after the repair, want 3", n)
	}

	// An unreachable member cluster (tidb-3's API server frozen: requests time out) does not stop the other
	// corrections. A deleted route and tidb-1's reverted Corefile are restored meanwhile; tidb-1's block for
	// tidb-3 comes back with the addresses tidb-2's block for it has, so tidb-1 resolves tidb-3's names
	// (tidb-3's CoreDNS answers from its cache) before tidb-3's API server answers again.
	apiserver3 := e.sb.APIServers[c3.Name]
	if err := apiserver3.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var resumeOnce sync.Once
	resume := func() { resumeOnce.Do(func() { _ = apiserver3.Signal(syscall.SIGCONT) }) }
	t.Cleanup(resume) // before the sandbox's cleanup, which must be able to stop it
	errorsBefore := m.metric(`meshd_errors_total{kind="observe"}`)
	toC2 := e.routeTo(c1.Name, n1.PrivateTable, c2.CIDR)
	if _, err := c.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(n1.PrivateTable), DestinationCidrBlock: aws.String(c2.CIDR)}); err != nil {
		t.Fatal(err)
	}
	e.revertCorefile(c1.Name)
	e.waitFor(90*time.Second, "the route and tidb-1's blocks restored while tidb-3 is unreachable", func() bool {
		cf := e.corefile(c1.Name)
		return e.routeTo(c1.Name, n1.PrivateTable, c2.CIDR) == toC2 &&
			strings.Contains(cf, c2.Namespace+".svc.cluster.local:53") && strings.Contains(cf, c3.Namespace+".svc.cluster.local:53")
	})
	e.waitFor(30*time.Second, "tidb-1 resolving tidb-3 while tidb-3's API server is frozen", func() bool { return e.resolves(c1, c3) })
	// The repairs above may come from watch-triggered passes, which do not read tidb-3 again; the next full
	// pass (2s interval, then tidb-3's 15s request timeout) reports it.
	e.waitFor(60*time.Second, "tidb-3 reported unobservable (log and meshd_errors_total{kind=\"observe\"})", func() bool {
		logText, _ := os.ReadFile(m.log)
		return m.metric(`meshd_errors_total{kind="observe"}`) > errorsBefore &&
			strings.Contains(string(logText), `Cluster \"tidb-3\" could not be observed`)
	})
	resume()
	e.waitFor(90*time.Second, "a successful pass once tidb-3 answers", func() bool {
		return m.metric("meshd_last_success_timestamp_seconds") >= float64(time.Now().Add(-5*time.Second).Unix())
	})

	// 4. A spec change on disk is applied: tidb-3 leaves the mesh, then comes back.
	e.writeSpec([]sandbox.Cluster{c1, c2})
	e.waitFor(60*time.Second, "tidb-1 no longer forwarding tidb-3's names", func() bool {
		return !strings.Contains(e.corefile(c1.Name), c3.Namespace+".svc") && len(e.livePeerings()) == 1
	})
	// 5. A broken spec is reported and the last good one stays enforced.
	e.writeFile("mesh.hcl", "mesh \"tidb\" {\n  bogus = true\n}\n")
	e.waitFor(10*time.Second, "the broken spec reported", func() bool {
		return m.metric(`meshd_spec_reloads_total{result="invalid"}`) >= 1
	})
	e.revertCorefile(c1.Name)
	e.waitFor(30*time.Second, "last good spec enforced on tidb-1's Corefile", func() bool {
		cf := e.corefile(c1.Name)
		return strings.Contains(cf, c2.Namespace+".svc") && !strings.Contains(cf, c3.Namespace+".svc")
	})
	logText, _ := os.ReadFile(m.log)
	if !strings.Contains(string(logText), "mesh.hcl:2,3: error: Unsupported argument") {
		t.Errorf("the log does not report the broken spec with its position")
	}
	e.writeSpec(e.sb.Clusters)
	e.waitFor(2*time.Minute, "tidb-3 back in the mesh", e.resolvesAll)
	e.kill(m, syscall.SIGTERM)
	select {
	case <-m.done:
		if code := m.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("meshd exited %d on SIGTERM, want 0", code)
		}
	default:
	}

	// 6. --dry-run reports drift and changes nothing; SIGHUP asks for a pass.
	m = e.start("--interval", "1h", "--state", e.state, "--dry-run")
	e.waitFor(30*time.Second, "the start pass", func() bool { return m.metric(`meshd_passes_total{result="ok"}`) >= 1 })
	passes := m.metric(`meshd_passes_total{result="ok"}`)
	if err := m.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitFor(30*time.Second, "a pass after SIGHUP", func() bool { return m.metric(`meshd_passes_total{result="ok"}`) > passes })
	e.revertCorefile(c2.Name)
	// Watched all along, from the revert until a pass asked for after the detection has ended: the pass that
	// detected the drift, which would have corrected it, has ended by then too.
	untouched := func() {
		if strings.Contains(e.corefile(c2.Name), "meshd.io/mesh") {
			t.Fatal("dry-run rewrote the Corefile")
		}
		if got := m.metric(`meshd_drift_corrected_total{action="update",kind="corefile"}`); got > 0 { // -1: not read
			t.Fatalf("dry-run corrected %v changes", got)
		}
	}
	e.waitFor(30*time.Second, "drift detected in dry-run", func() bool {
		untouched()
		return m.metric(`meshd_drift_detected{kind="corefile"}`) == 1
	})
	allPasses := func() float64 {
		return m.metricSum(func(s string) bool { return strings.HasPrefix(s, "meshd_passes_total{") })
	}
	for i := 0; i < 2; i++ { // the first may be the detecting pass ending; the second started after it
		n := allPasses()
		m.trigger()
		e.waitFor(30*time.Second, "a pass after the detection", func() bool {
			untouched()
			return allPasses() > n
		})
	}
	untouched()
	e.kill(m, syscall.SIGTERM)
}

// TestDaemonLeaderElection: two replicas, one Lease; only the leader writes, and when it is killed the other
// takes over and corrects drift.
func TestDaemonLeaderElection(t *testing.T) {
	e := newE2E(t)
	c1, c2 := e.sb.Clusters[0], e.sb.Clusters[1]
	args := []string{"--interval", "1h", "--leader-elect", "--management-context", c1.Context,
		"--leader-elect-namespace", "kube-system", "--state-secret", "kube-system/meshd-state",
		"--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s", "--leader-elect-retry-period", "500ms"}
	a := e.start(args...)
	e.waitFor(30*time.Second, "a leading", func() bool { return a.metric("meshd_leader") == 1 })
	b := e.start(args...)
	e.waitFor(2*time.Minute, "the mesh converged by the leader", e.resolvesAll)
	if b.metric("meshd_leader") != 0 {
		t.Fatal("two leaders")
	}

	e.revertCorefile(c1.Name)
	e.waitFor(30*time.Second, "the leader restoring tidb-1's Corefile", func() bool {
		return strings.Contains(e.corefile(c1.Name), c2.Namespace+".svc.cluster.local:53")
	})
	e.waitFor(30*time.Second, "the leader counting its correction", func() bool {
		return a.metric(`meshd_drift_corrected_total{action="update",kind="corefile"}`) >= 1
	})
	if got := b.metric(`meshd_drift_corrected_total{action="update",kind="corefile"}`); got != 0 {
		t.Errorf("the follower corrected %v Corefiles", got)
	}

	// The leader dies without releasing the Lease; the follower takes over within about a lease duration.
	e.kill(a, syscall.SIGKILL)
	took := e.waitFor(30*time.Second, "b leading", func() bool { return b.metric("meshd_leader") == 1 })
	t.Logf("handover after the leader was killed: %s", took)
	e.revertCorefile(c1.Name)
	e.waitFor(30*time.Second, "the new leader restoring tidb-1's Corefile", func() bool {
		return strings.Contains(e.corefile(c1.Name), c2.Namespace+".svc.cluster.local:53")
	})
	e.waitFor(30*time.Second, "the new leader counting its correction", func() bool {
		return b.metric(`meshd_drift_corrected_total{action="update",kind="corefile"}`) >= 1
	})
	// The state lives in the Secret.
	if _, err := e.sb.Clients[c1.Name].CoreV1().Secrets("kube-system").Get(context.Background(), "meshd-state", metav1.GetOptions{}); err != nil {
		t.Errorf("state Secret: %v", err)
	}
	_ = io.Discard
}

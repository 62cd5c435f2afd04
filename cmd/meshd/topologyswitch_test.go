package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/cli"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
	"github.com/meshd-io/meshd/internal/verify"
)

// TestTopologySwitchOnSandbox switches the sandbox's three clusters (three regions) from VPC peering to a
// Transit Gateway per region and back, each with meshctl apply, while every cluster's CoreDNS is asked for
// every other cluster's sample Pod in a loop: no lookup may fail (at least minLookupsPerSwitch per switch),
// the plan after each switch is empty, verify passes every layer of the new topology, and no Corefile
// ConfigMap or DNS Service was written by the switch (their resourceVersions and each CoreDNS's Corefile
// writes unchanged). The switch moves routes; the names keep resolving only if it leaves the DNS half of
// the mesh alone, which is what the loop guards. destroy then leaves no gateway and no peering.
func TestTopologySwitchOnSandbox(t *testing.T) {
	sb := sandbox.StartT(t)
	sb.SetEnv(t)
	// meshctl's AWS calls wait as a regional endpoint's round trip does (set per switch below), so that the
	// switch lasts long enough for the loop to see its intermediate states many times over.
	proxy, err := sandbox.StartDelayProxy(sb.MotoEndpoint, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	t.Setenv("AWS_ENDPOINT_URL", proxy.URL)

	e := &e2e{t: t, sb: sb, dir: t.TempDir()}
	e.spec, e.state = filepath.Join(e.dir, "spec"), filepath.Join(e.dir, "meshd.state.json")
	if err := os.MkdirAll(e.spec, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTopology := func(topology string) {
		e.writeSpec(sb.Clusters)
		text, err := os.ReadFile(filepath.Join(e.spec, "mesh.hcl"))
		if err != nil {
			t.Fatal(err)
		}
		e.writeFile("mesh.hcl", strings.Replace(string(text), "mesh \"tidb\" {\n", fmt.Sprintf("mesh \"tidb\" {\n  topology = %q\n", topology), 1))
	}
	meshctl := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
		if code := app.Main(context.Background(), append(args, "--spec", e.spec, "--state", e.state, "--kubeconfig", sb.Kubeconfig)); code != want {
			t.Fatalf("meshctl %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String()
	}
	ctx := context.Background()

	writeTopology("peering")
	meshctl(0, "apply", "--auto-approve")
	for _, a := range sb.Clusters {
		for _, b := range sb.Clusters {
			if _, err := sb.WaitResolve(ctx, a.Name, b.SampleName(), 30*time.Second); err != nil {
				t.Fatalf("after the peering apply: %v", err)
			}
		}
	}
	meshctl(0, "plan", "--detailed-exitcode")
	verifyLayers(t, sb, meshctl, verify.LayerPeering)
	dnsBefore := dnsObjects(t, sb)

	for _, topology := range []string{"transit_gateway", "peering"} {
		writeTopology(topology)
		var switchPlan struct {
			Changes []struct {
				Kind    plan.Kind `json:"kind"`
				Address string    `json:"address"`
			} `json:"changes"`
		}
		if err := json.Unmarshal([]byte(meshctl(2, "plan", "--json", "--detailed-exitcode")), &switchPlan); err != nil {
			t.Fatal(err)
		}
		kinds := map[plan.Kind]int{}
		for _, c := range switchPlan.Changes {
			kinds[c.Kind]++
			if !networkKinds[c.Kind] {
				t.Errorf("the switch to %s plans %s, not a network change", topology, c.Address)
			}
		}
		t.Logf("switch to %s: changes by kind %v", topology, kinds)
		loop, stop := resolveLoop(ctx, sb)
		proxy.SetDelay(30 * time.Millisecond)
		start := time.Now()
		meshctl(0, "apply", "--auto-approve")
		took := time.Since(start)
		proxy.SetDelay(0)
		// What the apply may have written into a Corefile is answered from only after CoreDNS's reload: the
		// loop goes on until every CoreDNS serves its ConfigMap as it is now.
		if err := sb.WaitServed(ctx, 30*time.Second); err != nil {
			t.Error(err)
		}
		stop()
		t.Logf("switch to %s: apply %s, %d lookups, %d failed", topology, took.Round(time.Millisecond), loop.lookups.Load(), loop.failed.Load())
		if n := loop.lookups.Load(); n < minLookupsPerSwitch {
			t.Errorf("switch to %s: only %d lookups during the apply (want at least %d): the loop proves nothing", topology, n, minLookupsPerSwitch)
		}
		if n := loop.failed.Load(); n > 0 {
			t.Errorf("switch to %s: %d of %d lookups failed, first: %v", topology, n, loop.lookups.Load(), loop.firstFailures())
		}
		meshctl(0, "plan", "--detailed-exitcode")
		first := verify.LayerPeering
		if topology == "transit_gateway" {
			first = verify.LayerGateway
		}
		verifyLayers(t, sb, meshctl, first)
		if after := dnsObjects(t, sb); !maps.Equal(after, dnsBefore) {
			t.Errorf("the switch to %s wrote the DNS half of the mesh:\n got %v\nwant %v", topology, after, dnsBefore)
		}
	}

	meshctl(0, "destroy", "--auto-approve")
	for _, region := range regionsOf(sb) {
		c := ec2.NewFromConfig(sb.AWSConfig(region))
		gws, err := c.DescribeTransitGateways(ctx, &ec2.DescribeTransitGatewaysInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gws.TransitGateways {
			if g.State != ec2types.TransitGatewayStateDeleted {
				t.Errorf("after destroy %s still has transit gateway %s (%s)", region, aws.ToString(g.TransitGatewayId), g.State)
			}
		}
		pcxs, err := c.DescribeVpcPeeringConnections(ctx, &ec2.DescribeVpcPeeringConnectionsInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pcxs.VpcPeeringConnections { // moto keeps deleted ones listed
			if p.Status != nil && p.Status.Code == ec2types.VpcPeeringConnectionStateReasonCodeActive {
				t.Errorf("after destroy %s still has peering %s", region, aws.ToString(p.VpcPeeringConnectionId))
			}
		}
	}
}

// networkKinds are the kinds a topology switch may change: the peerings, the gateways and their parts, the
// VPC routes (to either) and the security-group rules, none of the DNS half.
var networkKinds = map[plan.Kind]bool{plan.KindPeering: true, plan.KindRoute: true, plan.KindSGRule: true,
	plan.KindTransitGateway: true, plan.KindTGWRouteTable: true, plan.KindTGWAttachment: true, plan.KindTGWVPCRoute: true,
	plan.KindTGWPeering: true, plan.KindTGWRoute: true}

// minLookupsPerSwitch is the fewest lookups a switch must see for its "0 failed" to mean something: ten
// rounds of the six ordered pairs (a switch of about 1.2 s saw some 60 rounds).
const minLookupsPerSwitch = 60

// resolveLoopEvery paces resolveLoop's rounds, so that the loop does not starve the apply it watches on a
// two-core machine.
const resolveLoopEvery = 20 * time.Millisecond

// lookupLoop counts the lookups of resolveLoop and those that failed, with the first few failures.
type lookupLoop struct {
	lookups, failed atomic.Int64
	mu              sync.Mutex
	first           []string
}

func (l *lookupLoop) firstFailures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.first...)
}

// resolveLoop asks, round after round, each cluster's CoreDNS for every other cluster's sample Pod, as a
// Pod of that cluster would (UDP, one try): a lookup fails unless the answer is exactly the Pod's address.
// The function it returns stops the loop after one more whole round, so that the state the caller waited
// for before stopping is asked about for every pair.
func resolveLoop(ctx context.Context, sb *sandbox.Sandbox) (*lookupLoop, func()) {
	l := &lookupLoop{}
	stopping, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(resolveLoopEvery)
		defer tick.Stop()
		for last := false; ; {
			select {
			case <-stopping:
				last = true // the round below starts after stop was called
			default:
			}
			for _, a := range sb.Clusters {
				for _, b := range sb.Clusters {
					if a.Name != b.Name {
						l.lookup(ctx, a, b)
					}
				}
			}
			if last {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-stopping:
			case <-tick.C:
			}
		}
	}()
	return l, func() { close(stopping); <-done }
}

// lookup asks a's CoreDNS for b's sample Pod once and counts the answer.
func (l *lookupLoop) lookup(ctx context.Context, a, b sandbox.Cluster) {
	ips, err := testenv.LookupAContext(ctx, a.DNSAddr(), b.SampleName(), false)
	if err == nil && (len(ips) != 1 || ips[0].String() != b.SampleIP) {
		err = fmt.Errorf("answered %v, want %s", ips, b.SampleIP)
	}
	l.lookups.Add(1)
	if err == nil {
		return
	}
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.first) < 5 {
		l.first = append(l.first, fmt.Sprintf("%s -> %s: %v", a.Name, b.SampleName(), err))
	}
}

// dnsObjects are the resourceVersions of what the mesh's names depend on in each cluster, the CoreDNS
// ConfigMap and meshd's DNS Service, and how many Corefiles of other text the kubelet stand-in has written
// for its CoreDNS: "<cluster> <object>" to version or count.
func dnsObjects(t *testing.T, sb *sandbox.Sandbox) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, c := range sb.Clusters {
		cm, err := sb.Clients[c.Name].CoreV1().ConfigMaps("kube-system").Get(ctx, c.CoreDNSConfigMap(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svc, err := sb.Clients[c.Name].CoreV1().Services("kube-system").Get(ctx, plan.DNSServiceName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out[c.Name+" ConfigMap kube-system/"+cm.Name] = cm.ResourceVersion
		out[c.Name+" Service kube-system/"+svc.Name] = svc.ResourceVersion
		out[c.Name+" Corefile writes"] = fmt.Sprint(sb.Syncers[c.Name].Writes())
	}
	return out
}

// verifyLayers runs meshctl verify --json, which must pass (exit 0), and checks that its first network
// layer is first (peering or transit_gateway) and that every pair passes each checked layer.
func verifyLayers(t *testing.T, sb *sandbox.Sandbox, meshctl func(int, ...string) string, first verify.Layer) {
	t.Helper()
	var report struct {
		Layers   []verify.Layer   `json:"layers"`
		Verdicts []verify.Verdict `json:"verdicts"`
	}
	if err := json.Unmarshal([]byte(meshctl(0, "verify", "--json")), &report); err != nil {
		t.Fatal(err)
	}
	if len(report.Layers) == 0 || report.Layers[0] != first {
		t.Errorf("verify's layers are %v, want %s first", report.Layers, first)
	}
	checked := map[verify.Layer]int{}
	for _, v := range report.Verdicts {
		switch {
		case v.Status == verify.OK:
			checked[v.Layer]++
		case v.Layer != verify.LayerProbe: // asked for with --probe only
			t.Errorf("verify: %s -> %s %s is %s: %v", v.From, v.To, v.Layer, v.Status, v.Causes)
		}
	}
	pairs := len(sb.Clusters) * (len(sb.Clusters) - 1)
	for _, l := range []verify.Layer{first, verify.LayerRoutes, verify.LayerSG, verify.LayerNACL, verify.LayerDNS} {
		if checked[l] != pairs {
			t.Errorf("verify passed %s for %d pairs, want %d", l, checked[l], pairs)
		}
	}
}

// regionsOf are the regions of the sandbox's clusters, each once.
func regionsOf(sb *sandbox.Sandbox) []string {
	var out []string
	for _, c := range sb.Clusters {
		if !slices.Contains(out, c.Region) {
			out = append(out, c.Region)
		}
	}
	return out
}

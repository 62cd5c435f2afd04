package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/verify"
)

// Probe Pods: labelled so that they can be found (and, on the sandbox, run by the kubelet stand-in).
const (
	LabelProbe   = "meshd.io/probe"    // the mesh
	LabelProbeTo = "meshd.io/probe-to" // the cluster probed
	// ProbeEnvName and ProbeEnvPort carry what the probe resolves and connects to.
	ProbeEnvName = "PROBE_NAME"
	ProbeEnvPort = "PROBE_PORT"
)

// probeScript is the probe container's command: resolve PROBE_NAME through the cluster's DNS, then open a
// TCP connection to the address it resolved to. Its last line is the verdict's message.
const probeScript = `ip=$(nslookup "$PROBE_NAME" 2>/dev/null | awk '/^Address/ {a=$NF} END {print a}')
case "$ip" in ""|*:53|*#53) echo "dns: $PROBE_NAME did not resolve"; exit 1;; esac
nc -z -w 5 "$ip" "$PROBE_PORT" || { echo "tcp: $PROBE_NAME resolved to $ip, but $ip:$PROBE_PORT accepted no connection"; exit 1; }
echo "ok: $PROBE_NAME -> $ip, tcp $ip:$PROBE_PORT open"`

// ExitFailing is verify's exit code when some pair fails.
const ExitFailing = 2

type probeOptions struct {
	image, namespace, target string
	port                     int
	timeout                  time.Duration
}

// register declares the probe flags. Their defaults are what deploy/probe-target.yaml and
// deploy/probe-rbac.yaml are made for (TestDeployProbeManifests).
func (po *probeOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&po.image, "probe-image", "busybox:1.36", "image of the probe Pods (needs sh, nslookup, awk and nc)")
	fs.StringVar(&po.namespace, "probe-namespace", "default", "namespace the probe Pods run in")
	fs.StringVar(&po.target, "probe-target", "sample-nginx.sample-nginx-peer", "<pod hostname>.<headless service> in each cluster's namespace that the probes resolve")
	fs.IntVar(&po.port, "probe-port", 80, "TCP port of the probed Pod")
	fs.DurationVar(&po.timeout, "probe-timeout", 60*time.Second, "how long to wait for a probe Pod to finish")
}

func (a *App) verify(ctx context.Context, c common, asJSON, probe bool, po probeOptions) int {
	m, ok := a.loadSpec(c.spec)
	if !ok {
		return ExitError
	}
	eng, err := a.engineWith(ctx, m.Name, c.kubeconfig, true)
	if err != nil {
		return a.errorf("%v", err)
	}
	// The state (a file, or meshd's Secret with --state-secret) is read without its lock: verify writes
	// nothing, and both backends replace the state whole.
	b, err := backend(&c, eng)
	if err != nil {
		return a.errorf("%v", err)
	}
	st, err := b.Read(ctx)
	if err != nil {
		return a.errorf("%v", err)
	}
	if err := checkStateMesh(st, m.Name, &c); err != nil {
		return a.errorf("%v", err)
	}
	in, diags, err := eng.ObserveForVerify(ctx, m, st)
	a.printDiags(m.Files, diags)
	if err != nil {
		return a.errorf("could not verify: %v", err)
	}
	if diags.HasErrors() {
		return ExitError
	}
	if probe {
		in.Probes = a.probe(ctx, m, in.Members, po, eng.KubeClient)
	}
	r := verify.Verify(in)
	if asJSON {
		err = verify.RenderJSON(a.Stdout, r)
	} else {
		err = verify.RenderHuman(a.Stdout, r)
	}
	if err != nil {
		return a.errorf("%v", err)
	}
	if !r.OK() {
		return ExitFailing
	}
	return ExitOK
}

// probe runs one probe Pod per ordered pair, all at once, and returns what each reported.
func (a *App) probe(ctx context.Context, m *spec.Mesh, members []model.Member, po probeOptions, client func(string) (kubeclient.Interface, error)) map[verify.Pair]verify.ProbeResult {
	out := map[verify.Pair]verify.ProbeResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, from := range members {
		for _, to := range members {
			if from.Name == to.Name {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := runProbe(ctx, m.Name, from, to, po, client)
				mu.Lock()
				out[verify.Pair{From: from.Name, To: to.Name}] = res
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return out
}

// probeName is what a probe from another cluster resolves for member to.
func probeName(target string, to model.Member) string {
	domain := to.ClusterDomain
	if domain == "" {
		domain = spec.DefaultClusterDomain
	}
	return target + "." + to.Namespace + ".svc." + domain
}

func runProbe(ctx context.Context, mesh string, from, to model.Member, po probeOptions, client func(string) (kubeclient.Interface, error)) verify.ProbeResult {
	kc, err := client(from.KubeContext)
	if err != nil {
		return verify.ProbeResult{Message: fmt.Sprintf("no client for %s: %v", from.Name, err)}
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	name := "meshd-probe-" + to.Name + "-" + hex.EncodeToString(rnd[:])
	where := fmt.Sprintf("probe Pod %s/%s in %s", po.namespace, name, from.Name)
	deadline := int64(po.timeout / time.Second)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: po.namespace,
			Labels: map[string]string{LabelProbe: mesh, LabelProbeTo: to.Name}},
		Spec: corev1.PodSpec{
			RestartPolicy:         corev1.RestartPolicyNever,
			ActiveDeadlineSeconds: &deadline,
			Containers: []corev1.Container{{
				Name: "probe", Image: po.image, Command: []string{"sh", "-c", probeScript},
				Env: []corev1.EnvVar{{Name: ProbeEnvName, Value: probeName(po.target, to)},
					{Name: ProbeEnvPort, Value: fmt.Sprint(po.port)}},
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			}},
		},
	}
	pods := kc.CoreV1().Pods(po.namespace)
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return verify.ProbeResult{Message: fmt.Sprintf("%s: creating it: %v", where, err)}
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		_ = pods.Delete(dctx, name, metav1.DeleteOptions{})
	}()
	wctx, cancel := context.WithTimeout(ctx, po.timeout)
	defer cancel()
	for {
		p, err := pods.Get(wctx, name, metav1.GetOptions{})
		if err == nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
			msg := p.Status.Message
			for _, cs := range p.Status.ContainerStatuses {
				if t := cs.State.Terminated; t != nil && t.Message != "" {
					msg = t.Message
				}
			}
			if p.Status.Phase == corev1.PodSucceeded {
				return verify.ProbeResult{OK: true, Message: msg}
			}
			return verify.ProbeResult{Message: fmt.Sprintf("%s: %s", where, msg)}
		}
		select {
		case <-wctx.Done():
			return verify.ProbeResult{Message: fmt.Sprintf("%s did not finish within %s", where, po.timeout)}
		case <-time.After(250 * time.Millisecond):
		}
	}
}

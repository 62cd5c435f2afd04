package sandbox

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/meshd-io/meshd/internal/testenv"
)

// What meshctl verify --probe puts on its probe Pods (internal/cli/verify.go).
const (
	probeLabel   = "meshd.io/probe"
	probeEnvName = "PROBE_NAME"
	probeEnvPort = "PROBE_PORT"
)

// PodListeners stand in for the Pods the probes connect to: the sample Pod of each cluster gets a TCP
// listener on the cluster's loopback address (any free port), and a connection to "<Pod IP>:<port>" is
// made to that listener instead. A Pod IP the sandbox has no listener for refuses the connection.
type PodListeners struct {
	mu sync.Mutex
	// by is keyed by the Pod's address as the cluster's DNS gives it: "10.2.1.5:80".
	by        map[string]string
	listeners []net.Listener
}

// Listen starts the listener of one Pod address and accepts (and closes) connections until Close.
func (p *PodListeners) Listen(podAddr, bindIP string) error {
	l, err := net.Listen("tcp", net.JoinHostPort(bindIP, "0"))
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.by == nil {
		p.by = map[string]string{}
	}
	p.by[podAddr] = l.Addr().String()
	p.listeners = append(p.listeners, l)
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return nil
}

// Lookup is the listener standing in for a Pod address.
func (p *PodListeners) Lookup(podAddr string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.by[podAddr]
	return a, ok
}

// Close stops every listener.
func (p *PodListeners) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.listeners {
		l.Close()
	}
}

// ProbeRunner is the kubelet stand-in for meshctl verify's probe Pods in one cluster: for each Pod labelled
// meshd.io/probe that has not finished, it does what the Pod's command does, from the cluster's own
// loopback address — resolve PROBE_NAME through the cluster's CoreDNS, then open a TCP connection to the
// address it resolved to, port PROBE_PORT (through PodListeners) — and sets the Pod's phase to Succeeded or
// Failed, with the command's last line as the message. It runs no container and pulls no image.
type ProbeRunner struct {
	Cluster Cluster
	Client  kubernetes.Interface
	Pods    *PodListeners
	Logf    func(format string, args ...any)
}

// Run serves probe Pods until ctx ends.
func (r *ProbeRunner) Run(ctx context.Context) {
	lw := cache.NewFilteredListWatchFromClient(r.Client.CoreV1().RESTClient(), "pods", metav1.NamespaceAll,
		func(o *metav1.ListOptions) { o.LabelSelector = probeLabel })
	handle := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok && p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			go r.run(ctx, p.DeepCopy())
		}
	}
	_, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &corev1.Pod{},
		Handler:       cache.ResourceEventHandlerFuncs{AddFunc: handle},
	})
	ctrl.Run(ctx.Done())
}

func (r *ProbeRunner) run(ctx context.Context, p *corev1.Pod) {
	ok, msg := r.execute(ctx, p)
	phase := corev1.PodFailed
	if ok {
		phase = corev1.PodSucceeded
	}
	p.Status.Phase, p.Status.Message = phase, msg
	if _, err := r.Client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
		r.logf("probe %s: %s/%s: setting its status: %v", r.Cluster.Name, p.Namespace, p.Name, err)
		return
	}
	r.logf("probe %s: %s/%s: %s: %s", r.Cluster.Name, p.Namespace, p.Name, phase, msg)
}

func (r *ProbeRunner) execute(ctx context.Context, p *corev1.Pod) (bool, string) {
	env := map[string]string{}
	for _, c := range p.Spec.Containers {
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
	}
	name, port := env[probeEnvName], env[probeEnvPort]
	if name == "" || port == "" {
		return false, fmt.Sprintf("the Pod sets no %s and %s", probeEnvName, probeEnvPort)
	}
	// The probe's nslookup asks the cluster DNS once, with busybox's retries: a few tries over a second.
	var ips []string
	var err error
	for try := 0; try < 3 && len(ips) == 0; try++ {
		if try > 0 {
			time.Sleep(300 * time.Millisecond)
		}
		addrs, lerr := testenv.LookupAContext(ctx, r.Cluster.DNSAddr(), name, false)
		err = lerr
		for _, a := range addrs {
			ips = append(ips, a.String())
		}
	}
	if len(ips) == 0 {
		return false, fmt.Sprintf("dns: %s did not resolve (%v)", name, err)
	}
	ip := ips[len(ips)-1]
	target := net.JoinHostPort(ip, port)
	dialTo, known := r.Pods.Lookup(target)
	if !known {
		return false, fmt.Sprintf("tcp: %s resolved to %s, but %s accepted no connection", name, ip, target)
	}
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(r.Cluster.DNSAddr())}}
	c, err := d.DialContext(ctx, "tcp", dialTo)
	if err != nil {
		return false, fmt.Sprintf("tcp: %s resolved to %s, but %s accepted no connection: %v", name, ip, target,
			strings.TrimPrefix(err.Error(), "dial tcp "))
	}
	c.Close()
	return true, fmt.Sprintf("ok: %s -> %s, tcp %s open", name, ip, target)
}

func (r *ProbeRunner) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

package sandbox

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// corednsPod is what a Service may select the cluster's CoreDNS Pods by (their labels) and name their ports
// by (the container ports of the CoreDNS Deployment). They are the only Pods of the sandbox's clusters that
// listen.
var corednsPod = struct {
	labels labels.Set
	ports  map[string]int32
}{
	labels: labels.Set{"k8s-app": "kube-dns"},
	ports:  map[string]int32{"dns": 53, "dns-tcp": 53, "metrics": 9153},
}

// NodePortCluster is one cluster the kube-proxy stand-in serves.
type NodePortCluster struct {
	Name   string
	Client kubernetes.Interface
	// Nodes are the node addresses node ports are opened on (Cluster.NodeAddresses).
	Nodes []string
	// PodIP is where the CoreDNS Pods' ports are: the cluster's CoreDNS address (Cluster.DNSAddr).
	PodIP string
}

// NodePorts stands in for kube-proxy's node ports in the External clusters: for each TCP port of a Service
// of type NodePort or LoadBalancer (kube-proxy opens node ports for both) that selects the CoreDNS Pods
// (its selector is a non-empty subset of k8s-app: kube-dns), it accepts connections at
// <node address>:<nodePort> on every node and joins each to the Pod's target port (a number, or a CoreDNS
// container port's name: dns, dns-tcp, metrics) at PodIP, as kube-proxy's rules forward them to a Pod. The
// listeners follow the Service: a changed nodePort or target closes the old listener and opens the new one,
// a deleted Service (or one that stops selecting CoreDNS) closes them. UDP node ports are not served. A
// node port it cannot listen on is retried with backoff.
type NodePorts struct {
	Clusters []NodePortCluster
	Logf     func(format string, args ...any)
	// Resync re-examines every Service this often (default 30s).
	Resync time.Duration
}

// Run serves every cluster until ctx ends, then closes every listener and connection it opened.
func (n *NodePorts) Run(ctx context.Context) {
	forEach(n.Clusters, func(cl NodePortCluster) {
		open := map[string]map[string]*tcpProxy{} // by Service key, by listen address
		defer func() {
			for _, byAddr := range open {
				for _, p := range byAddr {
					p.close()
				}
			}
		}()
		runServiceQueue(ctx, cl.Client, n.Resync,
			func(q *serviceQueue, key string) error { return n.reconcile(cl, open, q, key) },
			func(key string, err error) { n.logf("kube-proxy %s: %s: %v (retrying)", cl.Name, key, err) })
	})
}

func (n *NodePorts) reconcile(cl NodePortCluster, open map[string]map[string]*tcpProxy, q *serviceQueue, key string) error {
	svc, err := q.service(key)
	if err != nil {
		return err
	}
	want := nodePortTargets(svc, cl.Nodes, cl.PodIP)
	have := open[key]
	if have == nil {
		have = map[string]*tcpProxy{}
	}
	defer func() {
		if len(have) == 0 {
			delete(open, key)
		} else {
			open[key] = have
		}
	}()
	for addr, p := range have {
		if want[addr] != p.target {
			p.close()
			delete(have, addr)
			n.logf("kube-proxy %s: %s: closed node port %s", cl.Name, key, addr)
		}
	}
	var errs []error
	for addr, target := range want {
		if have[addr] != nil {
			continue
		}
		p, err := listenProxy(addr, target)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		have[addr] = p
		n.logf("kube-proxy %s: %s: node port %s -> %s", cl.Name, key, addr, target)
	}
	return errors.Join(errs...)
}

// nodePortTargets are the node ports svc (nil: deleted) opens, as listen address -> Pod address.
func nodePortTargets(svc *corev1.Service, nodes []string, podIP string) map[string]string {
	out := map[string]string{}
	if svc == nil || (svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer) ||
		len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(corednsPod.labels) {
		return out
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort == 0 || (p.Protocol != corev1.ProtocolTCP && p.Protocol != "") {
			continue
		}
		target := p.TargetPort.IntVal
		switch {
		case p.TargetPort.Type == intstr.String:
			target = corednsPod.ports[p.TargetPort.StrVal]
		case target == 0:
			target = p.Port
		}
		if target == 0 {
			continue // a name no CoreDNS container port has: kube-proxy has no endpoint for it
		}
		for _, node := range nodes {
			out[net.JoinHostPort(node, strconv.Itoa(int(p.NodePort)))] = net.JoinHostPort(podIP, strconv.Itoa(int(target)))
		}
	}
	return out
}

func (n *NodePorts) logf(format string, args ...any) {
	if n.Logf != nil {
		n.Logf(format, args...)
	}
}

// tcpProxy accepts connections on one address and joins each to a new connection to target, until close.
type tcpProxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

func listenProxy(addr, target string) (*tcpProxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &tcpProxy{target: target, ln: ln, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !p.track(c) {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.join(c)
			}()
		}
	}()
	return p, nil
}

// join copies between c and a new connection to the target, passing on each side's end of data
// (half-close), until both have ended or the proxy is closed.
func (p *tcpProxy) join(c net.Conn) {
	defer p.untrack(c)
	d := net.Dialer{Timeout: 5 * time.Second}
	up, err := d.Dial("tcp", p.target)
	if err != nil || !p.track(up) {
		return
	}
	defer p.untrack(up)
	done := make(chan struct{})
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// track records an open connection, or closes it and answers false when the proxy is closed.
func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *tcpProxy) untrack(c net.Conn) {
	c.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

// close stops accepting, closes every connection and waits for the proxy's goroutines.
func (p *tcpProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

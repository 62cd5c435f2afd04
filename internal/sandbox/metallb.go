package sandbox

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// What MetalLB reads and writes on a Service.
const (
	// AnnotationMetalLBIPs asks for addresses, comma-separated (one per IP family); current MetalLB
	// releases read it before AnnotationMetalLBIPsDeprecated.
	AnnotationMetalLBIPs           = "metallb.io/loadBalancerIPs"
	AnnotationMetalLBIPsDeprecated = "metallb.universe.tf/loadBalancerIPs"
	// AnnotationMetalLBPool is what MetalLB writes on a Service it gave an address: the pool's name.
	AnnotationMetalLBPool = "metallb.io/ip-allocated-from-pool"
	// MetalLBPool is the name of the one address pool each cluster of the stand-in has.
	MetalLBPool = "default"
)

// MetalLBCluster is one cluster the MetalLB stand-in serves.
type MetalLBCluster struct {
	Name   string
	Client kubernetes.Interface
	// Pool are the addresses it hands out, IPv4, in order. Start gives the cluster's CoreDNS addresses
	// (Cluster.DNS), so that DNS traffic to an assigned address reaches that CoreDNS on port 53, as traffic
	// to the NLB stand-in's ENI addresses does.
	Pool []string
}

// MetalLB stands in for MetalLB's controller (L2 mode, v0.13 and later) in the External clusters. It
// serves each Service of type LoadBalancer that has no spec.loadBalancerClass: it assigns the Service one
// IPv4 address of the cluster's pool, writes status.loadBalancer.ingress = [{ip: <address>}] and, as
// current releases do, annotates the Service metallb.io/ip-allocated-from-pool: default (a writer of the
// Service's annotations must expect it). The address is
//   - the one requested by the annotation metallb.io/loadBalancerIPs (else metallb.universe.tf/
//     loadBalancerIPs, which v0.13 reads), or by spec.loadBalancerIP (not both). A request it cannot meet
//     (an address outside the pool or held by another Service, an address that does not parse, more than
//     one address: the pool has one family) assigns nothing and clears the status, with a log line where
//     MetalLB emits an AllocationFailed event; the Service is looked at again when it changes or another
//     Service frees an address;
//   - without a request: the address the Service already has (in the stand-in's memory, else in its
//     status, if that is in the pool and free), else the last free address of the pool, in pool order.
//
// Changing the request moves the Service to the new address. A Service that stops being of type
// LoadBalancer, or is deleted, frees its address (its status and the annotation are cleared). No two
// Services share an address (MetalLB's allow-shared-ip is not copied), and the deprecated annotations are
// left on the Service (the newest releases delete them). L2 mode's part, answering ARP for the address on
// a node, is played by the loopback interface: the pool's addresses are the cluster's own.
type MetalLB struct {
	Clusters []MetalLBCluster
	Logf     func(format string, args ...any)
	// Resync re-examines every Service this often (default 30s), repairing what was changed behind its back.
	Resync time.Duration

	pauses
}

// Run serves every cluster until ctx ends.
func (m *MetalLB) Run(ctx context.Context) {
	forEach(m.Clusters, func(cl MetalLBCluster) {
		pool, err := newAddressPool(cl.Pool)
		if err != nil {
			m.logf("metallb %s: %v", cl.Name, err)
			return
		}
		runServiceQueue(ctx, cl.Client, m.Resync,
			func(q *serviceQueue, key string) error { return m.reconcile(ctx, cl, pool, q, key) },
			func(key string, err error) { m.logf("metallb %s: %s: %v (retrying)", cl.Name, key, err) })
	})
}

func (m *MetalLB) reconcile(ctx context.Context, cl MetalLBCluster, pool *addressPool, q *serviceQueue, key string) error {
	if m.isPaused(cl.Name) {
		return nil
	}
	held := pool.held(key)
	svc, err := q.service(key)
	if err != nil {
		return err
	}
	if svc == nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		pool.release(key)
	} else if svc.Spec.LoadBalancerClass != nil {
		return nil // another load balancer's
	} else if err := pool.assignFor(key, svc); err != nil {
		m.logf("metallb %s: %s: AllocationFailed: %v", cl.Name, key, err)
	}
	addr := pool.held(key)
	if held.IsValid() && held != addr {
		q.requeueAll() // a Service waiting for an address may have it now
	}
	if svc == nil {
		return nil
	}

	services := cl.Client.CoreV1().Services(svc.Namespace)
	if _, annotated := svc.Annotations[AnnotationMetalLBPool]; annotated != addr.IsValid() {
		if addr.IsValid() {
			if svc.Annotations == nil {
				svc.Annotations = map[string]string{}
			}
			svc.Annotations[AnnotationMetalLBPool] = MetalLBPool
		} else {
			delete(svc.Annotations, AnnotationMetalLBPool)
		}
		if svc, err = services.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			return err
		}
		m.logf("metallb %s: %s: annotation %s %s", cl.Name, key, AnnotationMetalLBPool, map[bool]string{true: "set", false: "removed"}[addr.IsValid()])
	}
	want := corev1.LoadBalancerStatus{}
	if addr.IsValid() {
		want.Ingress = []corev1.LoadBalancerIngress{{IP: addr.String()}}
	}
	// The API server adds ipMode: VIP to each ingress (LoadBalancerIPMode), so compare the addresses.
	if have := svc.Status.LoadBalancer.Ingress; len(have) == len(want.Ingress) &&
		(len(have) == 0 || have[0].IP == want.Ingress[0].IP && have[0].Hostname == "") {
		return nil
	}
	svc.Status.LoadBalancer = want
	if _, err := services.UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		return err
	}
	if addr.IsValid() {
		m.logf("metallb %s: %s: status.loadBalancer.ingress[0].ip = %s", cl.Name, key, addr)
	} else {
		m.logf("metallb %s: %s: status.loadBalancer cleared", cl.Name, key)
	}
	return nil
}

func (m *MetalLB) logf(format string, args ...any) {
	if m.Logf != nil {
		m.Logf(format, args...)
	}
}

// addressPool is one cluster's pool and which Service (by key) holds which of its addresses. It is used by
// one goroutine at a time.
type addressPool struct {
	addrs  []netip.Addr
	holder map[netip.Addr]string
}

func newAddressPool(addrs []string) (*addressPool, error) {
	p := &addressPool{holder: map[netip.Addr]string{}}
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("pool address %q is not an IPv4 address", s)
		}
		p.addrs = append(p.addrs, a)
	}
	return p, nil
}

// held is the address key holds (the zero Addr if none).
func (p *addressPool) held(key string) netip.Addr {
	for a, k := range p.holder {
		if k == key {
			return a
		}
	}
	return netip.Addr{}
}

func (p *addressPool) release(key string) {
	if a := p.held(key); a.IsValid() {
		delete(p.holder, a)
	}
}

// assignFor gives the Service of key the address it should have (see MetalLB); on an error it holds none.
func (p *addressPool) assignFor(key string, svc *corev1.Service) error {
	requested, err := requestedAddresses(svc)
	var status netip.Addr
	if ing := svc.Status.LoadBalancer.Ingress; len(ing) > 0 {
		status, _ = netip.ParseAddr(ing[0].IP)
	}
	var a netip.Addr
	if err == nil {
		a, err = p.choose(key, requested, status)
	}
	p.release(key)
	if err != nil {
		return err
	}
	p.holder[a] = key
	return nil
}

// choose picks key's address: see MetalLB.
func (p *addressPool) choose(key string, requested []netip.Addr, status netip.Addr) (netip.Addr, error) {
	free := func(a netip.Addr) bool {
		k, taken := p.holder[a]
		return !taken || k == key
	}
	inPool := func(a netip.Addr) bool {
		for _, b := range p.addrs {
			if a == b {
				return true
			}
		}
		return false
	}
	switch {
	case len(requested) > 1:
		return netip.Addr{}, fmt.Errorf("%v requested: the pool has IPv4 addresses only, and a Service gets one address per family", requested)
	case len(requested) == 1 && !inPool(requested[0]):
		return netip.Addr{}, fmt.Errorf("%s is not in pool %s (%v)", requested[0], MetalLBPool, p.addrs)
	case len(requested) == 1 && !free(requested[0]):
		return netip.Addr{}, fmt.Errorf("%s is already in use by %s", requested[0], p.holder[requested[0]])
	case len(requested) == 1:
		return requested[0], nil
	}
	if a := p.held(key); a.IsValid() {
		return a, nil
	}
	if status.IsValid() && inPool(status) && free(status) {
		return status, nil
	}
	for i := len(p.addrs) - 1; i >= 0; i-- {
		if free(p.addrs[i]) {
			return p.addrs[i], nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no available IPs in pool %s (%v)", MetalLBPool, p.addrs)
}

// requestedAddresses are the addresses svc asks MetalLB for; none asks for any.
func requestedAddresses(svc *corev1.Service) ([]netip.Addr, error) {
	name := AnnotationMetalLBIPs
	list, ok := svc.Annotations[name]
	if !ok {
		name = AnnotationMetalLBIPsDeprecated
		list = svc.Annotations[name]
	}
	switch {
	case list != "" && svc.Spec.LoadBalancerIP != "":
		return nil, fmt.Errorf("the Service has both %s and spec.loadBalancerIP", name)
	case list == "" && svc.Spec.LoadBalancerIP == "":
		return nil, nil
	case list == "":
		name, list = "spec.loadBalancerIP", svc.Spec.LoadBalancerIP
	}
	var out []netip.Addr
	for _, s := range strings.Split(list, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("invalid %s %q", name, list)
		}
		out = append(out, a)
	}
	return out, nil
}

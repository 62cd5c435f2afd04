package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/hashicorp/hcl/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
)

// Observe reads, in every target cluster at once (bounded by Parallelism), the DNS Service and the CoreDNS
// ConfigMap and its backup: three GETs per cluster. The load balancers behind the Services are the AWS
// provider's to find. A cluster that cannot be reached, or a context the kubeconfig lacks, is a diagnostic
// against the cluster's kube_context; such a cluster has no entry in the result.
func (p *Provider) Observe(ctx context.Context, targets []Target) (map[string]model.DNSObserved, hcl.Diagnostics) {
	out := map[string]model.DNSObserved{}
	diags := make([]*hcl.Diagnostic, len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, p.opts.Parallelism)
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			o, d := p.observe(ctx, t)
			mu.Lock()
			defer mu.Unlock()
			if d != nil {
				diags[i] = d
				return
			}
			out[t.Cluster] = o
		}()
	}
	wg.Wait()
	var all hcl.Diagnostics
	for _, d := range diags {
		if d != nil {
			all = append(all, d)
		}
	}
	return out, all
}

func (p *Provider) observe(ctx context.Context, t Target) (model.DNSObserved, *hcl.Diagnostic) {
	var o model.DNSObserved
	c, err := p.Client(t.KubeContext)
	if errors.Is(err, ErrNoContext) {
		return o, t.diag("Unknown kube context", fmt.Sprintf("Cluster %q: %v. Use one of those, or point --kubeconfig at the file that has it.", t.Cluster, err))
	}
	if err != nil {
		return o, t.diag("Cannot use kube context", fmt.Sprintf("Cluster %q: %v.", t.Cluster, err))
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.RequestTimeout)
	defer cancel()

	unreachable := func(what string, err error) *hcl.Diagnostic {
		return t.diag("Cannot reach cluster", fmt.Sprintf("Cluster %q (kube context %q): reading %s: %v. Check that the cluster is up and that the context's credentials are valid.",
			t.Cluster, t.KubeContext, what, err))
	}
	svc, err := c.CoreV1().Services(plan.DNSNamespace).Get(ctx, plan.DNSServiceName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return o, unreachable("Service "+plan.DNSNamespace+"/"+plan.DNSServiceName, err)
	default:
		s := ServiceFromAPI(svc)
		o.Service = &s
	}
	get := func(ns, name string) (*model.ConfigMap, error) {
		got, err := c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("ConfigMap %s/%s: %w", ns, name, err)
		}
		m := ConfigMapFromAPI(got)
		return &m, nil
	}
	mesh, member := t.Mesh, t.Member
	if mesh == nil {
		mesh = &spec.Mesh{}
	}
	if member == nil {
		member = &spec.Cluster{Name: t.Cluster}
	}
	found, err := plan.DetectCorefile(mesh, member, get)
	if err != nil {
		return o, unreachable("the CoreDNS configuration", err)
	}
	found.Service = o.Service
	o = found
	// The cache's Corefile where meshd may write to it, or verify asks; its backup only in the first case.
	writes := plan.CacheNeedsBlocks(mesh)
	if writes || t.ReadNodeLocal {
		o.NodeLocal, err = get(plan.DNSNamespace, plan.NodeLocalConfigMap)
		if err == nil && o.NodeLocal != nil && writes {
			o.NodeLocalBackup, err = get(plan.DNSNamespace, plan.BackupName(plan.NodeLocalConfigMap))
		}
		if err != nil {
			return o, unreachable("the NodeLocal DNSCache configuration", err)
		}
	}
	return o, nil
}

// ServiceFromAPI converts a Service to what the planner compares.
func ServiceFromAPI(svc *corev1.Service) model.Service {
	s := model.Service{Spec: model.ServiceSpec{
		Type:        string(svc.Spec.Type),
		Annotations: svc.Annotations,
		Labels:      svc.Labels,
		Selector:    svc.Spec.Selector,

		SourceRanges: svc.Spec.LoadBalancerSourceRanges,
	}}
	for _, port := range svc.Spec.Ports {
		s.Spec.Ports = append(s.Spec.Ports, model.ServicePort{Name: port.Name, Protocol: string(port.Protocol),
			Port: port.Port, TargetPort: port.TargetPort.String()})
		if port.Port == 53 && port.Protocol == corev1.ProtocolTCP {
			s.NodePort = port.NodePort
		}
	}
	s.Hostname = hostname(svc)
	s.IPs = ingressIPs(svc)
	return s
}

// ingressIPs are the addresses a load balancer that publishes IPs (MetalLB) put into the Service's status,
// sorted and without repeats.
func ingressIPs(svc *corev1.Service) []string {
	var out []string
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP != "" && !slices.Contains(out, in.IP) {
			out = append(out, in.IP)
		}
	}
	slices.Sort(out)
	return out
}

func hostname(svc *corev1.Service) string {
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.Hostname != "" {
			return in.Hostname
		}
	}
	return ""
}

// ConfigMapFromAPI keeps of a ConfigMap its labels, data and field managers.
func ConfigMapFromAPI(cm *corev1.ConfigMap) model.ConfigMap {
	m := model.ConfigMap{Labels: cm.Labels, Data: cm.Data}
	for _, f := range cm.ManagedFields {
		if f.Manager != "" && !slices.Contains(m.Managers, f.Manager) {
			m.Managers = append(m.Managers, f.Manager)
		}
	}
	sort.Strings(m.Managers)
	return m
}

// clientFor is Client with the cluster named in the error.
func (p *Provider) clientFor(cluster, kubeContext string) (kubeclient.Interface, error) {
	c, err := p.Client(kubeContext)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	return c, nil
}

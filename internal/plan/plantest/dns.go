package plantest

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// The Kubernetes side of the world: per cluster, what meshd observes for DNS (World.DNS), and executors
// for dns_service and corefile changes that do to it what the kube provider's executors do to a cluster.
//
// A Service that is created or updated gets its load balancer at once: active, named k8s-<cluster>, with
// the addresses World.LoadBalancerAddresses gives for the cluster (else one derived from its first CIDR
// block, its network address + 10). A cluster in World.StuckLoadBalancers never gets one: the change sets
// the Service and then fails, as the kube provider's executor gives up waiting.

// DNSInput returns what the next plan observes of the Kubernetes side: a copy of every cluster's DNS
// objects, except for the clusters in Unobserved, which are listed as unobserved instead.
func (w *World) DNSInput(forwardBy string) *plan.DNSInput {
	w.mu.Lock()
	defer w.mu.Unlock()
	in := &plan.DNSInput{ForwardBy: forwardBy, Clusters: map[string]model.DNSObserved{}}
	for name, o := range w.DNS {
		if w.Unobserved[name] {
			continue
		}
		in.Clusters[name] = cloneDNS(o)
	}
	for name, unobserved := range w.Unobserved {
		if unobserved {
			if in.Unobserved == nil {
				in.Unobserved = map[string]bool{}
			}
			in.Unobserved[name] = true
		}
	}
	return in
}

// Corefile returns a cluster's Corefile text as it is now ("" without one).
func (w *World) Corefile(cluster string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cm := w.DNS[cluster].CoreDNS; cm != nil {
		return cm.Data[plan.CorefileKey]
	}
	return ""
}

// OriginalCorefile is the Corefile a cluster had when the world was made.
func (w *World) OriginalCorefile(cluster string) string { return w.originalCorefile[cluster] }

// RevertCorefile puts a cluster's original Corefile text back, as an update of the EKS CoreDNS add-on does:
// meshd's blocks are gone. The ConfigMap's field managers stay as they are (a test that wants the planner's
// warning about the add-on sets them).
func (w *World) RevertCorefile(cluster string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.DNS[cluster]
	cm := cloneConfigMap(o.CoreDNS)
	if cm == nil {
		cm = &model.ConfigMap{}
	}
	cm.Data = map[string]string{plan.CorefileKey: w.originalCorefile[cluster]}
	o.CoreDNS = cm
	w.DNS[cluster] = o
}

// DeleteService deletes a cluster's DNS Service, as kubectl delete does; its load balancer goes with it.
func (w *World) DeleteService(cluster string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.DNS[cluster]
	o.Service, o.LoadBalancer = nil, nil
	w.DNS[cluster] = o
}

// lbAddresses are the addresses a new load balancer of cluster's DNS Service gets, sorted.
func (w *World) lbAddresses(cluster string) []string {
	if ips, ok := w.LoadBalancerAddresses[cluster]; ok {
		return slices.Sorted(slices.Values(ips))
	}
	if p, err := netip.ParsePrefix(w.cidrs[cluster]); err == nil && p.Addr().Is4() {
		a := p.Masked().Addr().As4()
		a[3] += 10
		return []string{netip.AddrFrom4(a).String()}
	}
	return []string{"192.0.2.10"}
}

type serviceExecutor struct{ w *World }

func init() {
	executors.Register(func(w *World) apply.Executor { return serviceExecutor{w} }, plan.KindDNSService)
}

// Execute creates, updates or deletes meshd's DNS Service as the kube provider's executor does; a create
// or update returns the load balancer's addresses, sorted and comma-separated.
func (e serviceExecutor) Execute(_ context.Context, ch plan.Change, _ apply.Known) (apply.Outcome, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	switch ch.Action {
	case plan.Create, plan.Update, plan.Adopt:
		want := ch.After.(plan.DNSService)
		o, ok := w.DNS[want.Cluster]
		if !ok {
			return apply.Outcome{}, fmt.Errorf("no cluster %s", want.Cluster)
		}
		svc := &model.Service{Spec: cloneSpec(want.Spec)}
		if o.Service != nil {
			handMade := ch.Action == plan.Adopt && o.Service.Spec.Labels[model.LabelManagedBy] != model.ManagedByMeshd
			if !model.OwnedBy(o.Service.Spec.Labels, w.Mesh) && !handMade {
				return apply.Outcome{}, fmt.Errorf("cluster %s: Service %s/%s exists and is not meshd's: left alone; plan again",
					want.Cluster, plan.DNSNamespace, plan.DNSServiceName)
			}
			// meshd's labels and annotations are added to the Service's own (less those it set from the spec
			// before and no longer does); type, selector and ports are meshd's.
			svc = cloneService(o.Service)
			maps.Copy(svc.Spec.Labels, want.Spec.Labels)
			svc.Spec.Annotations = plan.MergeServiceAnnotations(svc.Spec.Annotations, want.Spec.Annotations, want.StaleAnnotations)
			svc.Spec.Type, svc.Spec.Selector = want.Spec.Type, maps.Clone(want.Spec.Selector)
			svc.Spec.Ports = slices.Clone(want.Spec.Ports)
			svc.Spec.SourceRanges = slices.Clone(want.Spec.SourceRanges)
		}
		if want.External {
			// An external member's Service gets a node port at once (the API server allocates it) and, as
			// type LoadBalancer, an address from its MetalLB-like load balancer, kept once it has one.
			if svc.NodePort == 0 {
				svc.NodePort = ExternalNodePort
			}
			var addrs []string
			if want.Spec.Type == spec.ServiceTypeNodePort {
				svc.IPs = nil
				addrs = plan.NodeUpstreams(want.NodeAddresses, svc.NodePort)
			} else {
				if len(svc.IPs) == 0 {
					svc.IPs = w.lbAddresses(want.Cluster)
				}
				addrs = svc.IPs
			}
			o.Service = svc
			w.DNS[want.Cluster] = o
			return apply.WithID(strings.Join(addrs, ","), nil)
		}
		host := fmt.Sprintf("k8s-kubesyst-acrossc-%s.elb.%s.amazonaws.com", want.Cluster, want.Region)
		svc.Hostname = host
		o.Service = svc
		if w.StuckLoadBalancers[want.Cluster] {
			o.LoadBalancer = &model.LoadBalancer{Name: "k8s-" + want.Cluster, DNSName: host, State: "provisioning"}
			w.DNS[want.Cluster] = o
			return apply.Outcome{}, fmt.Errorf("cluster %s: gave up waiting for NLB k8s-%s to become active", want.Cluster, want.Cluster)
		}
		// A load balancer that serves the Service already stays as it is; else one is made now.
		lb := o.LoadBalancer
		if lb == nil || lb.DNSName != host || lb.State != model.LoadBalancerActive || len(lb.Addresses) == 0 {
			lb = &model.LoadBalancer{Name: "k8s-" + want.Cluster, DNSName: host, State: model.LoadBalancerActive,
				Addresses: w.lbAddresses(want.Cluster)}
		}
		o.LoadBalancer = lb
		w.DNS[want.Cluster] = o
		return apply.WithID(strings.Join(slices.Sorted(slices.Values(lb.Addresses)), ","), nil)

	case plan.Delete:
		before := ch.Before.(plan.DNSService)
		o := w.DNS[before.Cluster]
		if o.Service == nil {
			return apply.Outcome{}, nil
		}
		if !model.OwnedBy(o.Service.Spec.Labels, w.Mesh) {
			return apply.Outcome{}, fmt.Errorf("Service %s/%s is not meshd's (labels changed since the plan): left alone",
				plan.DNSNamespace, plan.DNSServiceName)
		}
		o.Service, o.LoadBalancer = nil, nil
		w.DNS[before.Cluster] = o
		return apply.Outcome{}, nil
	}
	return apply.Outcome{}, fmt.Errorf("%s: cannot %s a DNS Service", ch.Address, ch.Action.Verb())
}

type corefileExecutor struct{ w *World }

func init() {
	executors.Register(func(w *World) apply.Executor { return corefileExecutor{w} }, plan.KindCorefile)
}

// Execute merges meshd's blocks into the Corefile as it is now, exactly as the kube provider's executor
// does: Pending blocks take the addresses their dns_service change found, a Corefile whose merge reports a
// conflict is not written, the original is saved to the backup once before the first write (unless the
// change deletes the backup), the backup is deleted when the change says so, and the zones meshd then owns
// are recorded in the state.
func (e corefileExecutor) Execute(_ context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	w := e.w
	if ch.Action != plan.Update && ch.Action != plan.Adopt {
		return apply.Outcome{}, fmt.Errorf("%s: cannot %s a Corefile", ch.Address, ch.Action.Verb())
	}
	after := ch.After.(plan.Corefile)
	blocks, err := after.Resolved(known)
	if err != nil {
		return apply.Outcome{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	o, ok := w.DNS[after.Cluster]
	if !ok || o.CoreDNS == nil {
		return apply.Outcome{}, fmt.Errorf("cluster %s: reading ConfigMap %s/%s: not found", after.Cluster, plan.DNSNamespace, plan.CoreDNSConfigMap)
	}
	text, ok := o.CoreDNS.Data[plan.CorefileKey]
	if !ok {
		return apply.Outcome{}, fmt.Errorf("cluster %s: ConfigMap %s/%s has no %s", after.Cluster, plan.DNSNamespace, plan.CoreDNSConfigMap, plan.CorefileKey)
	}
	mergeOwned, err := after.MergeOwned(text, w.Mesh, blocks)
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("cluster %s: %w", after.Cluster, err)
	}
	out, rep, err := corefile.Merge(text, w.Mesh, mergeOwned, blocks)
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("cluster %s: merging meshd's blocks: %w", after.Cluster, err)
	}
	if len(rep.Conflicts) > 0 {
		return apply.Outcome{}, fmt.Errorf("cluster %s: the Corefile changed since the plan: %s; nothing written, plan again", after.Cluster, rep.Conflicts[0])
	}
	if rep.Changed() {
		if !after.DeleteBackup && o.Backup == nil {
			o.Backup = &model.ConfigMap{Labels: plan.OwnerLabels(w.Mesh), Data: map[string]string{plan.CorefileKey: text},
				Managers: []string{model.FieldManager}}
		}
		cm := cloneConfigMap(o.CoreDNS)
		cm.Data[plan.CorefileKey] = out
		if !slices.Contains(cm.Managers, model.FieldManager) {
			cm.Managers = append(cm.Managers, model.FieldManager)
		}
		o.CoreDNS = cm
	}
	if after.DeleteBackup && o.Backup != nil && model.OwnedBy(o.Backup.Labels, w.Mesh) {
		o.Backup = nil
	}
	w.DNS[after.Cluster] = o
	owned := rep.Owned
	return apply.Outcome{Record: func(st *state.State) { st.SetCorefileZones(after.Cluster, owned) }}, nil
}

func cloneDNS(o model.DNSObserved) model.DNSObserved {
	out := model.DNSObserved{CoreDNS: cloneConfigMap(o.CoreDNS), Backup: cloneConfigMap(o.Backup), Site: o.Site,
		Looked: slices.Clone(o.Looked), Custom: cloneConfigMap(o.Custom),
		NodeLocal: cloneConfigMap(o.NodeLocal), NodeLocalBackup: cloneConfigMap(o.NodeLocalBackup)}
	out.Service = cloneService(o.Service)
	if o.LoadBalancer != nil {
		lb := *o.LoadBalancer
		lb.Addresses = slices.Clone(lb.Addresses)
		out.LoadBalancer = &lb
	}
	return out
}

// ExternalNodePort is the node port an external member's DNS Service gets.
const ExternalNodePort = 30053

// SetServiceIPs sets the addresses a cluster's DNS Service's load balancer publishes, as MetalLB does when
// its pool or the requested address changes.
func (w *World) SetServiceIPs(cluster string, ips ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.DNS[cluster]
	if o.Service != nil {
		o.Service.IPs = slices.Sorted(slices.Values(ips))
	}
	w.DNS[cluster] = o
}

func cloneService(s *model.Service) *model.Service {
	if s == nil {
		return nil
	}
	return &model.Service{Spec: cloneSpec(s.Spec), Hostname: s.Hostname, IPs: slices.Clone(s.IPs), NodePort: s.NodePort}
}

func cloneConfigMap(cm *model.ConfigMap) *model.ConfigMap {
	if cm == nil {
		return nil
	}
	return &model.ConfigMap{Labels: maps.Clone(cm.Labels), Data: maps.Clone(cm.Data), Managers: slices.Clone(cm.Managers)}
}

// cloneSpec copies a Service spec; its label and annotation maps are never nil, so that they can be added to.
func cloneSpec(s model.ServiceSpec) model.ServiceSpec {
	out := model.ServiceSpec{Type: s.Type, Annotations: maps.Clone(s.Annotations), Labels: maps.Clone(s.Labels),
		Selector: maps.Clone(s.Selector), Ports: slices.Clone(s.Ports), SourceRanges: slices.Clone(s.SourceRanges)}
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	return out
}

// NodeLocalCorefile is the NodeLocal DNSCache Corefile of a cluster with the given domain, as the upstream
// manifest installs it (corefile.NodeLocalDefault).
func NodeLocalCorefile(domain string) string {
	return corefile.NodeLocalDefault(domain, "169.254.20.10", "172.20.0.10")
}

// PutNodeLocal gives a cluster a NodeLocal DNSCache (kube-system/node-local-dns) with that Corefile.
func (w *World) PutNodeLocal(cluster, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.DNS[cluster]
	o.NodeLocal = &model.ConfigMap{Data: map[string]string{plan.CorefileKey: text}}
	w.DNS[cluster] = o
	if w.originalNodeLocal == nil {
		w.originalNodeLocal = map[string]string{}
	}
	w.originalNodeLocal[cluster] = text
}

// NodeLocal returns a cluster's cache Corefile as it is now ("" without one), and the one it was put with.
func (w *World) NodeLocal(cluster string) (now, original string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cm := w.DNS[cluster].NodeLocal; cm != nil {
		now = cm.Data[plan.CorefileKey]
	}
	return now, w.originalNodeLocal[cluster]
}

// RevertNodeLocal puts a cluster's original cache Corefile back, as re-applying the node-local-dns
// manifest does.
func (w *World) RevertNodeLocal(cluster string) {
	_, original := w.NodeLocal(cluster)
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.DNS[cluster]
	o.NodeLocal = &model.ConfigMap{Data: map[string]string{plan.CorefileKey: original}}
	w.DNS[cluster] = o
}

type nodeLocalExecutor struct{ w *World }

func init() {
	executors.Register(func(w *World) apply.Executor { return nodeLocalExecutor{w} }, plan.KindNodeLocalDNS)
}

// Execute does to the cache's ConfigMap what the kube provider's executor does: merge meshd's blocks,
// routed as the cache routes the cluster's domain, save the original once, delete the backup when told.
func (e nodeLocalExecutor) Execute(_ context.Context, ch plan.Change, _ apply.Known) (apply.Outcome, error) {
	w := e.w
	after := ch.After.(plan.NodeLocalDNS)
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.DNS[after.Cluster]
	if o.NodeLocal == nil {
		return apply.Outcome{}, fmt.Errorf("cluster %s: ConfigMap %s/%s not found", after.Cluster, plan.DNSNamespace, plan.NodeLocalConfigMap)
	}
	text := o.NodeLocal.Data[plan.CorefileKey]
	blocks, err := after.Blocks(text)
	if err != nil {
		return apply.Outcome{}, err
	}
	out, rep, err := corefile.Merge(text, w.Mesh, after.Owned, blocks)
	if err != nil {
		return apply.Outcome{}, err
	}
	if rep.Changed() {
		if !after.DeleteBackup && o.NodeLocalBackup == nil {
			o.NodeLocalBackup = &model.ConfigMap{Labels: plan.OwnerLabels(w.Mesh), Data: map[string]string{plan.CorefileKey: text}}
		}
		cm := cloneConfigMap(o.NodeLocal)
		cm.Data[plan.CorefileKey] = out
		o.NodeLocal = cm
	}
	if after.DeleteBackup {
		o.NodeLocalBackup = nil
	}
	w.DNS[after.Cluster] = o
	owned := rep.Owned
	return apply.Outcome{Record: func(st *state.State) { plan.RecordNodeLocal(st, after, owned) }}, nil
}

package kube

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/kindio"
	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/poll"
	specpkg "github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// ProgressEvery is how often a long wait reports that it is still waiting, by default.
const ProgressEvery = 10 * time.Second

// executors are the built-in Kubernetes kinds' executors, each registered by the file that implements it.
var executors apply.Table[*Provider]

func init() {
	executors.Register(func(p *Provider) apply.Executor { return serviceExecutor{p} }, plan.KindDNSService)
	executors.Register(func(p *Provider) apply.Executor { return corefileExecutor{p} }, plan.KindCorefile)
}

// Executors returns the apply executors for the Kubernetes resource kinds: the built-in ones (executors),
// and those of the kinds whose I/O is registered in kindio (with the client of the change's cluster).
func (p *Provider) Executors() map[plan.Kind]apply.Executor {
	out := executors.Make(p)
	for _, k := range kindio.KubeKinds() {
		io, _ := kindio.KubeOf(k)
		out[k] = kindio.KubeExecutor(io, func(cl kindio.Cluster) (kubeclient.Interface, error) { return p.Client(cl.KubeContext) })
	}
	return out
}

type serviceExecutor struct{ p *Provider }

// Execute creates or updates the DNS Service and waits for its NLB; the change's ID is the NLB's private
// addresses, sorted and comma-separated, which the Corefile changes that wait for it read. Delete removes
// meshd's Service and waits until it is gone (a load balancer controller's finalizer may hold it while
// the NLB is deleted). Adopt labels a Service made by hand (the runbook's) as meshd's and sets the rest of
// meshd's spec in place, so that its NLB stays.
func (e serviceExecutor) Execute(ctx context.Context, ch plan.Change, _ apply.Known) (apply.Outcome, error) {
	return apply.WithID(e.run(ctx, ch))
}

func (e serviceExecutor) run(ctx context.Context, ch plan.Change) (string, error) {
	p := e.p
	switch ch.Action {
	case plan.Create, plan.Update, plan.Adopt:
		want := ch.After.(plan.DNSService)
		c, err := p.clientFor(want.Cluster, want.KubeContext)
		if err != nil {
			return "", err
		}
		if err := p.applyService(ctx, c, want.Spec, want.StaleAnnotations, ch.Action == plan.Adopt); err != nil {
			return "", fmt.Errorf("cluster %s: %w", want.Cluster, err)
		}
		if want.External {
			addrs, err := p.waitReachable(ctx, c, want, ch.Address)
			if err != nil {
				return "", fmt.Errorf("cluster %s: %w", want.Cluster, err)
			}
			return strings.Join(addrs, ","), nil
		}
		host, err := p.waitHostname(ctx, c, ch.Address)
		if err != nil {
			return "", fmt.Errorf("cluster %s: %w", want.Cluster, err)
		}
		if p.opts.LoadBalancers == nil {
			return "", errors.New("no AWS provider to find the load balancer with")
		}
		lb, err := p.opts.LoadBalancers.WaitLoadBalancerIn(ctx, want.Access, want.Region, host, ch.Address)
		if err != nil {
			return "", fmt.Errorf("cluster %s: %w", want.Cluster, err)
		}
		return strings.Join(lb.Addresses, ","), nil

	case plan.Delete:
		before := ch.Before.(plan.DNSService)
		c, err := p.clientFor(before.Cluster, before.KubeContext)
		if err != nil {
			return "", err
		}
		return "", p.deleteService(ctx, c, ch.Address)
	}
	return "", fmt.Errorf("%s: cannot %s a DNS Service", ch.Address, ch.Action.Verb())
}

func (p *Provider) services(c kubeclient.Interface) interface {
	Get(context.Context, string, metav1.GetOptions) (*corev1.Service, error)
	Create(context.Context, *corev1.Service, metav1.CreateOptions) (*corev1.Service, error)
	Update(context.Context, *corev1.Service, metav1.UpdateOptions) (*corev1.Service, error)
	Delete(context.Context, string, metav1.DeleteOptions) error
} {
	return c.CoreV1().Services(plan.DNSNamespace)
}

func servicePorts(spec model.ServiceSpec, existing []corev1.ServicePort) []corev1.ServicePort {
	var out []corev1.ServicePort
	for _, sp := range spec.Ports {
		port := corev1.ServicePort{Name: sp.Name, Protocol: corev1.Protocol(sp.Protocol), Port: sp.Port,
			TargetPort: intstr.Parse(sp.TargetPort)}
		// Keep the node port the server allocated, so that an update does not move it.
		for _, e := range existing {
			if e.Port == sp.Port && e.Protocol == port.Protocol {
				port.NodePort = e.NodePort
			}
		}
		out = append(out, port)
	}
	return out
}

// applyService creates the Service, or updates meshd's fields of the existing one if it is meshd's. A
// Service that is not meshd's is never changed (the plan reports it as a conflict; this is the check at the
// moment of writing), unless adopt is set and it carries no meshd managed-by label (made by hand): then it
// is updated in place, never replaced.
func (p *Provider) applyService(ctx context.Context, c kubeclient.Interface, spec model.ServiceSpec, stale []string, adopt bool) error {
	svcs := p.services(c)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := svcs.Get(ctx, plan.DNSServiceName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: plan.DNSServiceName, Namespace: plan.DNSNamespace,
					Labels: maps.Clone(spec.Labels), Annotations: maps.Clone(spec.Annotations)},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceType(spec.Type), Selector: maps.Clone(spec.Selector),
					Ports: servicePorts(spec, nil), LoadBalancerSourceRanges: slices.Clone(spec.SourceRanges)},
			}
			_, err = svcs.Create(ctx, svc, metav1.CreateOptions{FieldManager: model.FieldManager})
			if apierrors.IsAlreadyExists(err) {
				// Made meanwhile: read it again and treat it as an update (or a conflict).
				return apierrors.NewConflict(corev1.Resource("services"), plan.DNSServiceName, err)
			}
			if err != nil {
				return fmt.Errorf("creating Service %s/%s: %w", plan.DNSNamespace, plan.DNSServiceName, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading Service %s/%s: %w", plan.DNSNamespace, plan.DNSServiceName, err)
		}
		handMade := adopt && cur.Labels[model.LabelManagedBy] != model.ManagedByMeshd
		if !model.OwnedBy(cur.Labels, spec.Labels[model.LabelMesh]) && !handMade {
			return fmt.Errorf("Service %s/%s exists and is not meshd's (no labels %s=%s, %s=%s): left alone; plan again",
				plan.DNSNamespace, plan.DNSServiceName, model.LabelManagedBy, model.ManagedByMeshd, model.LabelMesh, spec.Labels[model.LabelMesh])
		}
		if cur.DeletionTimestamp != nil {
			return fmt.Errorf("Service %s/%s is being deleted: plan again once it is gone", plan.DNSNamespace, plan.DNSServiceName)
		}
		if cur.Labels == nil {
			cur.Labels = map[string]string{}
		}
		maps.Copy(cur.Labels, spec.Labels)
		cur.Annotations = plan.MergeServiceAnnotations(cur.Annotations, spec.Annotations, stale)
		cur.Spec.Type = corev1.ServiceType(spec.Type)
		cur.Spec.Selector = maps.Clone(spec.Selector)
		cur.Spec.Ports = servicePorts(spec, cur.Spec.Ports)
		// meshd owns the whole field on its Service (the plan compares it as a set).
		cur.Spec.LoadBalancerSourceRanges = slices.Clone(spec.SourceRanges)
		_, err = svcs.Update(ctx, cur, metav1.UpdateOptions{FieldManager: model.FieldManager})
		if err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("updating Service %s/%s: %w", plan.DNSNamespace, plan.DNSServiceName, err)
		}
		return err
	})
}

// poll calls check every PollInterval until it reports done, an error, or WaitTimeout passes, and reports
// what it waits for every Options.ProgressEvery.
func (p *Provider) poll(ctx context.Context, address, what string, check func(context.Context) (bool, error)) error {
	err := poll.Until(ctx, poll.Options{Interval: p.opts.PollInterval, Timeout: p.opts.WaitTimeout, ProgressEvery: p.opts.ProgressEvery},
		check, func(waited time.Duration) { p.progress("%s: still waiting for %s [%s elapsed]", address, what, waited) })
	if ended, ok := errors.AsType[*poll.Ended](err); ok {
		return fmt.Errorf("gave up waiting for %s after %s: %w", what, ended.Waited, ended.Err)
	}
	return err
}

// waitReachable waits until an external member's DNS Service can be reached and returns where: the
// addresses its load balancer published (MetalLB), or, for a NodePort Service, the node addresses with the
// node port the API server allocated.
func (p *Provider) waitReachable(ctx context.Context, c kubeclient.Interface, want plan.DNSService, address string) ([]string, error) {
	nodePort := want.Spec.Type == specpkg.ServiceTypeNodePort
	what := "the load balancer to set the Service's status.loadBalancer.ingress[].ip"
	if nodePort {
		what = "the Service's node port"
	}
	var addrs []string
	err := p.poll(ctx, address, what, func(ctx context.Context) (bool, error) {
		svc, err := p.services(c).Get(ctx, plan.DNSServiceName, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("reading Service %s/%s: %w", plan.DNSNamespace, plan.DNSServiceName, err)
		}
		got := ServiceFromAPI(svc)
		if !nodePort {
			if requested := requestedIPs(want.Spec.Annotations); requested != nil && !slices.Equal(requested, got.IPs) {
				return false, nil // MetalLB has not moved the Service to the addresses the spec asks for yet
			}
			if len(got.IPs) == 0 && got.Hostname != "" {
				return false, fmt.Errorf("the load balancer published the hostname %s, not an IP address: CoreDNS forwards to addresses; "+
					"use one that publishes IPs (MetalLB), or dns { node_addresses }", got.Hostname)
			}
		}
		// Where the planner finds them too, from the same Service.
		member := model.Member{External: true, DNS: &model.DNSExposure{ServiceType: want.Spec.Type, NodeAddresses: want.NodeAddresses}}
		lb, waiting := plan.ReachAt(member, model.DNSObserved{Service: &got})
		addrs = lb.Addresses
		return waiting == "", nil
	})
	return addrs, err
}

// MetalLB's annotations that ask for given addresses (v0.14.9 and later, then the older prefix).
var metalLBIPAnnotations = []string{"metallb.io/loadBalancerIPs", "metallb.universe.tf/loadBalancerIPs"}

// requestedIPs are the addresses a Service's annotations ask MetalLB for, sorted; nil when they ask for
// none. A spec that asks for them makes apply wait until the Service has them, so that the other
// Corefiles get the new addresses rather than the ones MetalLB is about to give up.
func requestedIPs(annotations map[string]string) []string {
	for _, k := range metalLBIPAnnotations {
		if v := annotations[k]; v != "" {
			var out []string
			for _, ip := range strings.Split(v, ",") {
				if a, err := netip.ParseAddr(strings.TrimSpace(ip)); err == nil {
					out = append(out, a.String())
				}
			}
			slices.Sort(out)
			return out
		}
	}
	return nil
}

// waitHostname waits until the load balancer controller has set the Service's load balancer hostname.
func (p *Provider) waitHostname(ctx context.Context, c kubeclient.Interface, address string) (string, error) {
	var host string
	err := p.poll(ctx, address, "the load balancer controller to set the Service's status.loadBalancer hostname",
		func(ctx context.Context) (bool, error) {
			svc, err := p.services(c).Get(ctx, plan.DNSServiceName, metav1.GetOptions{})
			if err != nil {
				return false, fmt.Errorf("reading Service %s/%s: %w", plan.DNSNamespace, plan.DNSServiceName, err)
			}
			host = hostname(svc)
			return host != "", nil
		})
	return host, err
}

func (p *Provider) deleteService(ctx context.Context, c kubeclient.Interface, address string) error {
	svcs := p.services(c)
	cur, err := svcs.Get(ctx, plan.DNSServiceName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Service %s/%s: %w", plan.DNSNamespace, plan.DNSServiceName, err)
	}
	if !model.OwnedBy(cur.Labels, p.opts.Mesh) {
		return fmt.Errorf("Service %s/%s is not meshd's (labels changed since the plan): left alone", plan.DNSNamespace, plan.DNSServiceName)
	}
	uid := cur.UID
	err = svcs.Delete(ctx, plan.DNSServiceName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting Service %s/%s: %w", plan.DNSNamespace, plan.DNSServiceName, err)
	}
	return p.poll(ctx, address, "the Service to be deleted (its load balancer goes with it)", func(ctx context.Context) (bool, error) {
		got, err := svcs.Get(ctx, plan.DNSServiceName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && got.UID != uid) {
			return true, nil
		}
		return false, err
	})
}

type corefileExecutor struct{ p *Provider }

// Execute merges meshd's blocks into the Corefile as it is now (with the addresses the plan or
// the dns_service changes it waited for found), checks that the result parses, saves the original
// Corefile once before the first change, and writes it with the resourceVersion it read (reading and
// merging again when someone else wrote in between). The zones meshd then owns go into the state.
func (e corefileExecutor) Execute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	p := e.p
	if ch.Action != plan.Update && ch.Action != plan.Adopt {
		return apply.Outcome{}, fmt.Errorf("%s: cannot %s a Corefile", ch.Address, ch.Action.Verb())
	}
	after := ch.After.(plan.Corefile)
	blocks, err := after.Resolved(known)
	if err != nil {
		return apply.Outcome{}, err
	}
	c, err := p.clientFor(after.Cluster, after.KubeContext)
	if err != nil {
		return apply.Outcome{}, err
	}
	owned, err := p.mergeInto(ctx, c, siteTarget(after.Where()), after.DeleteBackup, func(text string) (string, corefile.Report, error) {
		mergeOwned, err := after.MergeOwned(text, p.opts.Mesh, blocks)
		if err != nil {
			return "", corefile.Report{}, err
		}
		return corefile.Merge(text, p.opts.Mesh, mergeOwned, blocks)
	})
	return mergeOutcome(after.Cluster, owned, err, func(st *state.State) { st.SetCorefileZones(after.Cluster, owned) })
}

// mergeOutcome is what a change merged by mergeInto returns: the record of the zones meshd owns there once
// the write happened (owned is set), also when a step after it failed.
func mergeOutcome(cluster string, owned []string, err error, record func(*state.State)) (apply.Outcome, error) {
	if err == nil {
		return apply.Outcome{Record: record}, nil
	}
	err = fmt.Errorf("cluster %s: %w", cluster, err)
	if owned != nil {
		return apply.Outcome{Record: record}, err
	}
	return apply.Outcome{}, err
}

// mergeTarget is a ConfigMap key that meshd merges its server blocks into.
type mergeTarget struct {
	Namespace, Name, Key string
	// Import: meshd owns Key whole, in a ConfigMap whose files the Corefile imports. No backup is kept;
	// the ConfigMap is created when missing (labelled meshd's), the key is deleted when meshd's blocks
	// are all gone, and the ConfigMap too when meshd made it and nothing else is left in it.
	Import bool
}

func siteTarget(s model.CorefileSite) mergeTarget {
	return mergeTarget{Namespace: s.Namespace, Name: s.Name, Key: s.Key, Import: s.Import}
}

func (t mergeTarget) String() string { return t.Namespace + "/" + t.Name }

// mergeInto merges meshd's blocks into t as it is now, checks that the result parses (merge's job),
// saves the original text once before the first change of an edited Corefile, and writes with the
// resourceVersion it read (reading and merging again when someone else wrote in between). It returns the
// zones meshd then owns there; on an error after the write, owned is still set (the write happened).
func (p *Provider) mergeInto(ctx context.Context, c kubeclient.Interface, t mergeTarget, deleteBackup bool,
	merge func(text string) (string, corefile.Report, error)) (owned []string, err error) {
	cms := c.CoreV1().ConfigMaps(t.Namespace)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := cms.Get(ctx, t.Name, metav1.GetOptions{})
		missing := apierrors.IsNotFound(err) && t.Import
		if err != nil && !missing {
			return fmt.Errorf("reading ConfigMap %s: %w", t, err)
		}
		text, ok := "", true
		if cm != nil && !missing {
			text, ok = cm.Data[t.Key]
		}
		if !ok && !t.Import {
			return fmt.Errorf("ConfigMap %s has no %s", t, t.Key)
		}
		out, rep, err := merge(text)
		if err != nil {
			return fmt.Errorf("merging meshd's blocks: %w", err)
		}
		if len(rep.Conflicts) > 0 {
			return fmt.Errorf("the Corefile changed since the plan: %s; nothing written, plan again", rep.Conflicts[0])
		}
		owned = rep.Owned
		if !rep.Changed() {
			return nil
		}
		if t.Import {
			return p.writeImported(ctx, cms, t, cm, missing, out, len(rep.Owned) == 0)
		}
		// Merge has already parsed its output again and checked its size: a Corefile that would not load
		// never gets here.
		if !deleteBackup {
			if err := p.saveBackup(ctx, c, t, text); err != nil {
				return err
			}
		}
		cm.Data[t.Key] = out
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: model.FieldManager})
		if err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("writing ConfigMap %s: %w", t, err)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if deleteBackup && !t.Import {
		if err := p.deleteBackup(ctx, c, t); err != nil {
			return owned, err
		}
	}
	return owned, nil
}

// writeImported writes meshd's key of an import layout's ConfigMap, creating the ConfigMap when it is
// missing; with none of meshd's blocks left (empty) it deletes the key, and the ConfigMap when meshd made
// it and no other key is left.
func (p *Provider) writeImported(ctx context.Context, cms corev1client.ConfigMapInterface, t mergeTarget, cm *corev1.ConfigMap, missing bool, out string, empty bool) error {
	var err error
	switch {
	case missing && empty:
		return nil
	case missing:
		_, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: t.Namespace, Labels: plan.OwnerLabels(p.opts.Mesh)},
			Data:       map[string]string{t.Key: out},
		}, metav1.CreateOptions{FieldManager: model.FieldManager})
		if apierrors.IsAlreadyExists(err) {
			return apierrors.NewConflict(corev1.Resource("configmaps"), t.Name, err) // made in between: read it again
		}
	case empty && len(cm.Data) == 1 && model.OwnedBy(cm.Labels, p.opts.Mesh):
		uid, rv := cm.UID, cm.ResourceVersion
		err = cms.Delete(ctx, t.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
		if apierrors.IsNotFound(err) {
			return nil
		}
	default:
		if empty {
			delete(cm.Data, t.Key)
		} else {
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
			cm.Data[t.Key] = out
		}
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: model.FieldManager})
	}
	if err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("writing ConfigMap %s key %s: %w", t, t.Key, err)
	}
	return err
}

// saveBackup keeps the text as it was before meshd's first change in <name>-meshd-backup beside it
// (kube-system/coredns-meshd-backup for the EKS Corefile). An existing backup is never overwritten: it
// holds the original.
func (p *Provider) saveBackup(ctx context.Context, c kubeclient.Interface, t mergeTarget, original string) error {
	cms := c.CoreV1().ConfigMaps(t.Namespace)
	name := plan.BackupName(t.Name)
	_, err := cms.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading ConfigMap %s/%s: %w", t.Namespace, name, err)
	}
	backup := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: t.Namespace, Labels: plan.OwnerLabels(p.opts.Mesh),
			Annotations: map[string]string{"meshd.io/backup-of": t.String()}},
		Data: map[string]string{t.Key: original},
	}
	if _, err := cms.Create(ctx, backup, metav1.CreateOptions{FieldManager: model.FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("saving the original Corefile to ConfigMap %s/%s: %w", t.Namespace, name, err)
	}
	return nil
}

// deleteBackup removes the backup if it is meshd's.
func (p *Provider) deleteBackup(ctx context.Context, c kubeclient.Interface, t mergeTarget) error {
	cms := c.CoreV1().ConfigMaps(t.Namespace)
	name := plan.BackupName(t.Name)
	cur, err := cms.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading ConfigMap %s/%s: %w", t.Namespace, name, err)
	}
	if !model.OwnedBy(cur.Labels, p.opts.Mesh) {
		return nil
	}
	uid := cur.UID
	err = cms.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting ConfigMap %s/%s: %w", t.Namespace, name, err)
	}
	return nil
}

package plantest

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
)

// The load_balancer blocks of the world (World.LoadBalancers), observed as the engine observes them and
// changed as the kube provider's executors change them. The Services are the user's (PutService), objects
// of World.Objects like meshd's bindings in the secondaries. Every cluster runs the AWS Load Balancer
// Controller v2.10+, played by a stand-in: for a Service of type LoadBalancer it makes an ip target group
// in the cluster's region, behind a load balancer with one security group, and, as LBC does, a
// TargetGroupBinding named after the target group in the Service's namespace, labelled
// service.k8s.aws/stack-name and stack-namespace, which is multi-cluster while the Service carries the
// multi-cluster annotation (LBC builds the binding's spec from the Service's annotations).

// PutService deploys a user's Service with one TCP port, as kubectl apply does; a LoadBalancer one gets its
// target group and LBC's binding.
func (w *World) PutService(cluster, namespace, name, typ string, port int32, targetPort string, annotations map[string]string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.putObject(cluster, kubeobj.Object{APIVersion: "v1", Kind: "Service", Namespace: namespace, Name: name, Annotations: maps.Clone(annotations),
		Content: map[string]any{"spec": map[string]any{"type": typ, "ports": []any{
			map[string]any{"port": int64(port), "targetPort": targetPort, "protocol": "TCP"}}}}})
	if typ != "LoadBalancer" {
		return
	}
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%s/%s", cluster, namespace, name)
	tg := fmt.Sprintf("k8s-%s-%s-%08x", namespace, name, h.Sum32())
	arn := fmt.Sprintf("arn:aws:elasticloadbalancing:%s:123456789012:targetgroup/%s/%08x", w.regionOf(cluster), tg, h.Sum32())
	w.putObject(cluster, kubeobj.Object{APIVersion: "elbv2.k8s.aws/v1beta1", Kind: "TargetGroupBinding", Namespace: namespace, Name: tg,
		Labels: map[string]string{plan.LabelStackName: name, plan.LabelStackNamespace: namespace},
		Content: map[string]any{"spec": map[string]any{"targetGroupARN": arn, "targetType": "ip",
			"serviceRef": map[string]any{"name": name, "port": int64(port)}}}})
	w.lbcSync(cluster, namespace, name)
}

// Service returns a Service of cluster, or nil.
func (w *World) Service(cluster, namespace, name string) *kubeobj.Object {
	return w.Object(cluster, "Service", namespace, name)
}

// RemoveServiceAnnotation takes an annotation off a Service, as a kubectl apply of a manifest without it
// does.
func (w *World) RemoveServiceAnnotation(cluster, namespace, name, key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if svc := w.object(cluster, "Service", namespace, name); svc != nil {
		ann := maps.Clone(svc.Annotations)
		delete(ann, key)
		w.setAnnotations(cluster, *svc, ann)
	}
}

// setAnnotations writes a Service's annotations, and LBC reconciles its binding.
func (w *World) setAnnotations(cluster string, svc kubeobj.Object, annotations map[string]string) {
	svc.Annotations = annotations
	w.Objects[cluster][objectKey(svc.Kind, svc.Namespace, svc.Name)] = svc
	w.lbcSync(cluster, svc.Namespace, svc.Name)
}

// lbcSync is LBC reconciling a Service: its binding is multi-cluster while the Service says so.
func (w *World) lbcSync(cluster, namespace, service string) {
	svc, tgb := w.object(cluster, "Service", namespace, service), w.lbcBinding(cluster, namespace, service)
	if svc == nil || tgb == nil {
		return
	}
	spec := maps.Clone(tgb.Content["spec"].(map[string]any))
	spec["multiClusterTargetGroup"] = svc.Annotations[plan.AnnotationMultiClusterTargetGroup] == "true"
	tgb.Content = map[string]any{"spec": spec}
	w.Objects[cluster][objectKey(tgb.Kind, tgb.Namespace, tgb.Name)] = *tgb
}

// lbcBinding finds LBC's binding of a Service by its labels.
func (w *World) lbcBinding(cluster, namespace, service string) *kubeobj.Object {
	for _, key := range slices.Sorted(maps.Keys(w.Objects[cluster])) {
		o := w.Objects[cluster][key]
		if o.Kind == "TargetGroupBinding" && o.Namespace == namespace &&
			o.Labels[plan.LabelStackName] == service && o.Labels[plan.LabelStackNamespace] == namespace {
			return &o
		}
	}
	return nil
}

// multiClusterARN is the target group of LBC's binding of a Service once it is multi-cluster, else "".
func (w *World) multiClusterARN(cluster, namespace, service string) string {
	tgb := w.lbcBinding(cluster, namespace, service)
	if tgb == nil {
		return ""
	}
	spec := tgb.Content["spec"].(map[string]any)
	if spec["multiClusterTargetGroup"] != true {
		return ""
	}
	return spec["targetGroupARN"].(string)
}

// targetGroup describes a target group as AWS does, found by LBC's binding of it.
func (w *World) targetGroup(arn string) (model.TargetGroup, bool) {
	for _, cluster := range slices.Sorted(maps.Keys(w.Objects)) {
		for _, o := range w.Objects[cluster] {
			spec, _ := o.Content["spec"].(map[string]any)
			if o.Kind != "TargetGroupBinding" || o.Labels[plan.LabelStackName] == "" || spec["targetGroupARN"] != arn {
				continue
			}
			h := fnv.New32a()
			fmt.Fprint(h, arn)
			return model.TargetGroup{ARN: arn, Region: w.regionOf(cluster), TargetType: "ip", Protocol: "TCP",
				SecurityGroups: []string{fmt.Sprintf("sg-lb%08x", h.Sum32())}, SubnetCIDRs: []string{w.cidrs[cluster]}}, true
		}
	}
	return model.TargetGroup{}, false
}

// regionOf is the region of a member's VPC.
func (w *World) regionOf(cluster string) string {
	for _, vpc := range w.Observed.VPCs {
		if len(vpc.CIDRs) > 0 && vpc.CIDRs[0] == w.cidrs[cluster] {
			return vpc.Region
		}
	}
	return ""
}

// servicePort is a Service's type and its port for the block (lb's port, 0: its only one).
func servicePort(svc kubeobj.Object, want int32) (typ string, port int32, target string, ok bool) {
	spec, _ := svc.Content["spec"].(map[string]any)
	typ, _ = spec["type"].(string)
	ports, _ := spec["ports"].([]any)
	for _, p := range ports {
		p, _ := p.(map[string]any)
		n, _ := p["port"].(int64)
		if want == int32(n) || want == 0 && len(ports) == 1 {
			t, _ := p["targetPort"].(string)
			return typ, int32(n), t, true
		}
	}
	return typ, 0, "", false
}

// LoadBalancerInput observes the load_balancer blocks and the recorded objects no block wants as the
// engine does (destroy: no block is wanted); nil when there is neither a block nor a record. A block whose
// primary Service is missing, not of type LoadBalancer or without the port is skipped, and so is a
// secondary without the Service: the engine diagnoses them and leaves their objects as they are.
func (w *World) LoadBalancerInput(members []model.Member, st *state.State, destroy bool) *plan.LoadBalancerInput {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.LoadBalancers) == 0 && len(st.LoadBalancers) == 0 {
		return nil
	}
	m, ctx := w.specMesh(members), contexts(members)
	in := &plan.LoadBalancerInput{OrphanServices: map[string]*plan.LBServiceObserved{}, OrphanBindings: map[string]*kubeobj.Object{}}
	wanted := map[string]bool{}
	for _, lb := range w.LoadBalancers {
		if destroy {
			break
		}
		b := plan.LoadBalancerBlock{Name: lb.Name, Primary: lb.Primary, PrimaryContext: ctx[lb.Primary], Region: w.regionOf(lb.Primary),
			Namespace: lb.Namespace, Service: lb.Service, DeletionProtection: lb.DeletionProtection, Protocol: "TCP"}
		wanted[plan.LBServiceAddress(lb.Name)] = true
		for _, s := range lb.SecondariesOf(m) {
			wanted[plan.BindingAddress(lb.Name, s)] = true
			b.Secondaries = append(b.Secondaries, plan.LoadBalancerSecondary{Cluster: s, KubeContext: ctx[s],
				Binding: w.object(s, "TargetGroupBinding", lb.Namespace, lb.Name), Skip: w.object(s, "Service", lb.Namespace, lb.Service) == nil})
		}
		var typ string
		var ok bool
		if svc := w.object(lb.Primary, "Service", lb.Namespace, lb.Service); svc != nil {
			b.Observed = plan.LBServiceObserved{Annotations: maps.Clone(svc.Annotations)}
			typ, b.Port, b.TargetPort, ok = servicePort(*svc, lb.Port)
		}
		b.Skip = !ok || typ != "LoadBalancer"
		if b.TargetGroupARN = w.multiClusterARN(lb.Primary, lb.Namespace, lb.Service); b.TargetGroupARN != "" {
			tg, _ := w.targetGroup(b.TargetGroupARN)
			b.TargetGroup = &tg
		}
		in.Blocks = append(in.Blocks, b)
	}
	for addr, rec := range st.LoadBalancers {
		switch {
		case wanted[addr]:
		case rec.Kind == "Service":
			in.OrphanServices[addr] = nil
			if svc := w.object(rec.Cluster, rec.Kind, rec.Namespace, rec.Name); svc != nil {
				in.OrphanServices[addr] = &plan.LBServiceObserved{Annotations: maps.Clone(svc.Annotations)}
			}
		default:
			in.OrphanBindings[addr] = w.object(rec.Cluster, rec.Kind, rec.Namespace, rec.Name)
		}
	}
	return in
}

type lbServiceExecutor struct{ w *World }

func init() {
	executors.Register(func(w *World) apply.Executor { return lbServiceExecutor{w} }, plan.KindLBService)
}

// Execute puts meshd's annotation values on the primary's Service and returns the target group once LBC's
// binding is multi-cluster; a delete takes off only the values meshd added (the change says which). The
// state records which values meshd added, as the kube provider's executor does.
func (e lbServiceExecutor) Execute(_ context.Context, ch plan.Change, _ apply.Known) (apply.Outcome, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	s, _ := ch.After.(plan.LBService)
	if ch.Action == plan.Delete {
		s = ch.Before.(plan.LBService)
	}
	svc := w.object(s.Cluster, "Service", s.Namespace, s.Name)
	if svc == nil {
		if ch.Action == plan.Delete { // a Service that is gone is not an error
			return apply.Outcome{Record: func(st *state.State) { st.RemoveLoadBalancer(ch.Address) }}, nil
		}
		return apply.Outcome{}, fmt.Errorf("cluster %s: reading Service %s/%s: not found", s.Cluster, s.Namespace, s.Name)
	}
	ann := maps.Clone(svc.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	if s.RemoveDeletionProtection {
		if rest := plan.WithoutAttribute(ann[plan.AnnotationLBAttributes], plan.DeletionProtection); rest != "" {
			ann[plan.AnnotationLBAttributes] = rest
		} else {
			delete(ann, plan.AnnotationLBAttributes)
		}
	}
	if ch.Action == plan.Delete {
		if s.RemoveMultiCluster {
			delete(ann, plan.AnnotationMultiClusterTargetGroup)
		}
		w.setAnnotations(s.Cluster, *svc, ann)
		return apply.Outcome{Record: func(st *state.State) { st.RemoveLoadBalancer(ch.Address) }}, nil
	}
	addedMC := ann[plan.AnnotationMultiClusterTargetGroup] != "true"
	ann[plan.AnnotationMultiClusterTargetGroup] = "true"
	addedDP := false
	if v, _ := plan.AttributeValue(ann[plan.AnnotationLBAttributes], plan.DeletionProtection); s.DeletionProtection && v != "true" {
		ann[plan.AnnotationLBAttributes] = plan.WithAttribute(ann[plan.AnnotationLBAttributes], plan.DeletionProtection, "true")
		addedDP = true
	}
	w.setAnnotations(s.Cluster, *svc, ann)
	arn := s.TargetGroupARN
	if arn == "" {
		if arn = w.multiClusterARN(s.Cluster, s.Namespace, s.Name); arn == "" {
			return apply.Outcome{}, fmt.Errorf("cluster %s: gave up waiting for the load balancer controller's TargetGroupBinding of Service %s/%s to be multi-cluster",
				s.Cluster, s.Namespace, s.Name)
		}
	}
	rec := s.Record()
	return apply.Outcome{ID: arn, Record: func(st *state.State) {
		prev := st.LoadBalancers[ch.Address]
		rec.AddedMultiCluster = prev.AddedMultiCluster || addedMC
		rec.AddedDeletionProtection = (prev.AddedDeletionProtection || addedDP) && s.DeletionProtection
		st.SetLoadBalancer(ch.Address, rec)
	}}, nil
}

type bindingExecutor struct{ w *World }

func init() {
	executors.Register(func(w *World) apply.Executor { return bindingExecutor{w} }, plan.KindTargetGroupBinding)
}

// Execute creates, updates, replaces or deletes a secondary's binding as the kube provider's executor
// does: a target group known only after apply comes from the lb_service change, else from the primary's
// binding, and the sources it lets in from describing the target group.
func (e bindingExecutor) Execute(_ context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch.Action == plan.Delete || ch.Action == plan.Replace {
		b := ch.Before.(plan.TargetGroupBinding)
		if err := w.deleteObserved(b.Cluster, "TargetGroupBinding", b.Namespace, b.Name, b.UID); err != nil {
			return apply.Outcome{}, err
		}
		if ch.Action == plan.Delete {
			return apply.Outcome{Record: func(st *state.State) { st.RemoveLoadBalancer(ch.Address) }}, nil
		}
	}
	b := ch.After.(plan.TargetGroupBinding)
	if b.TargetGroupARN == "" {
		if arn, ok := known(b.Pending); ok && b.Pending != "" && arn != "" {
			b.TargetGroupARN = arn
		} else if b.TargetGroupARN = w.multiClusterARN(b.PrimaryCluster, b.Namespace, b.Service); b.TargetGroupARN == "" {
			return apply.Outcome{}, fmt.Errorf("cluster %s: gave up waiting for the load balancer controller's TargetGroupBinding of Service %s/%s to be multi-cluster",
				b.PrimaryCluster, b.Namespace, b.Service)
		}
	}
	if b.IngressFrom == nil {
		tg, ok := w.targetGroup(b.TargetGroupARN)
		if !ok {
			return apply.Outcome{}, fmt.Errorf("TargetGroupNotFound: %s", b.TargetGroupARN)
		}
		b.IngressFrom = plan.IngressFrom(tg, b.Region)
	}
	want := kubeobj.Own(b.Object(), w.Mesh)
	cur := w.object(b.Cluster, want.Kind, want.Namespace, want.Name)
	switch {
	case ch.Action != plan.Update && cur != nil:
		return apply.Outcome{}, fmt.Errorf("cluster %s: creating %s: already exists", b.Cluster, want.Ref())
	case ch.Action == plan.Update && cur == nil:
		return apply.Outcome{}, fmt.Errorf("cluster %s: updating %s: not found", b.Cluster, want.Ref())
	}
	if err := w.writeObject(b.Cluster, want); err != nil {
		return apply.Outcome{}, err
	}
	rec := b.Record()
	return apply.Outcome{ID: b.TargetGroupARN, Record: func(st *state.State) { st.SetLoadBalancer(ch.Address, rec) }}, nil
}

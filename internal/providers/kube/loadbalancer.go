package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
)

// TargetGroupDescriber describes a target group and the load balancer in front of it (the AWS provider
// implements it): a binding whose ARN was known only after apply gets its ingress sources from it.
type TargetGroupDescriber interface {
	TargetGroup(ctx context.Context, region, arn string) (model.TargetGroup, error)
}

var (
	tgbGVR      = schema.GroupVersionResource{Group: "elbv2.k8s.aws", Version: "v1beta1", Resource: "targetgroupbindings"}
	servicesGVR = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	crdGVR      = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// TargetGroupBindingCRD is the name of the AWS Load Balancer Controller's TargetGroupBinding CRD.
const TargetGroupBindingCRD = "targetgroupbindings.elbv2.k8s.aws"

// LBQuery names what observing one load_balancer block reads.
type LBQuery struct {
	Primary, PrimaryContext string
	Namespace, Service      string
	Port                    int32 // the Service port; 0: its only one
	Binding                 string
	Secondaries             []LBSecondaryQuery
}

// LBSecondaryQuery is one secondary of a block.
type LBSecondaryQuery struct{ Cluster, KubeContext string }

// LBResult is what observing a block found. Err is set when the primary could not be read.
type LBResult struct {
	Err            error
	ServiceMissing bool
	ServiceType    string
	Annotations    map[string]string
	// The chosen Service port, or PortProblem saying why none could be chosen.
	Port        int32
	TargetPort  string
	Protocol    string
	PortProblem string
	// TargetGroupARN is the ARN of LBC's binding for the port once it is multi-cluster.
	TargetGroupARN string
	Secondaries    map[string]LBSecondaryResult
}

// LBSecondaryResult is what one secondary has.
type LBSecondaryResult struct {
	Err error
	// CRD: "" installed with multiClusterTargetGroup, "missing" not installed, "old" without the field.
	CRD            string
	ServiceMissing bool
	Binding        *kubeobj.Object
}

// ObserveLoadBalancer reads a block's primary Service and LBC's bindings for it, and in each secondary
// the TargetGroupBinding CRD, the Service and meshd's binding.
func (p *Provider) ObserveLoadBalancer(ctx context.Context, q LBQuery) LBResult {
	res := LBResult{Secondaries: map[string]LBSecondaryResult{}}
	ctx, cancel := context.WithTimeout(ctx, 4*p.opts.RequestTimeout)
	defer cancel()
	c, err := p.clientFor(q.Primary, q.PrimaryContext)
	if err == nil {
		err = p.observePrimary(ctx, c, q, &res)
	}
	if err != nil {
		res.Err = fmt.Errorf("cluster %s: %w", q.Primary, err)
	}
	for _, s := range q.Secondaries {
		res.Secondaries[s.Cluster] = p.observeSecondary(ctx, s, q)
	}
	return res
}

func (p *Provider) observePrimary(ctx context.Context, c kubeclient.Interface, q LBQuery, res *LBResult) error {
	svc, err := c.CoreV1().Services(q.Namespace).Get(ctx, q.Service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		res.ServiceMissing = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Service %s/%s: %w", q.Namespace, q.Service, err)
	}
	res.ServiceType, res.Annotations = string(svc.Spec.Type), svc.Annotations
	var port *corev1.ServicePort
	for i, sp := range svc.Spec.Ports {
		if q.Port == 0 && len(svc.Spec.Ports) == 1 || sp.Port == q.Port {
			port = &svc.Spec.Ports[i]
		}
	}
	switch {
	case port == nil && q.Port == 0:
		res.PortProblem = fmt.Sprintf("it has %d ports: set port in the load_balancer block to the one whose target group the secondaries join", len(svc.Spec.Ports))
	case port == nil:
		res.PortProblem = fmt.Sprintf("it has no port %d", q.Port)
	default:
		res.Port, res.Protocol = port.Port, string(port.Protocol)
		res.TargetPort = port.TargetPort.String()
		if port.TargetPort.IntValue() == 0 && port.TargetPort.StrVal == "" {
			res.TargetPort = strconv.Itoa(int(port.Port))
		}
	}
	arn, err := primaryBinding(ctx, c, q.Namespace, q.Service, res.Port)
	if err != nil {
		return err
	}
	res.TargetGroupARN = arn
	return nil
}

// primaryBinding finds LBC's binding for the Service's port (labels stack-name, stack-namespace) and
// returns its target group ARN once it is multi-cluster.
func primaryBinding(ctx context.Context, c kubeclient.Interface, namespace, service string, port int32) (string, error) {
	sel := labels.SelectorFromSet(labels.Set{plan.LabelStackName: service, plan.LabelStackNamespace: namespace}).String()
	list, err := c.Resource(tgbGVR).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if apierrors.IsNotFound(err) {
		return "", nil // no CRD: no LBC
	}
	if err != nil {
		return "", fmt.Errorf("listing the TargetGroupBindings of Service %s/%s: %w", namespace, service, err)
	}
	for _, it := range list.Items {
		ref, _, _ := unstructured.NestedFieldNoCopy(it.Object, "spec", "serviceRef", "port")
		if len(list.Items) > 1 && fmt.Sprint(ref) != strconv.Itoa(int(port)) {
			continue
		}
		mc, _, _ := unstructured.NestedBool(it.Object, "spec", "multiClusterTargetGroup")
		a, _, _ := unstructured.NestedString(it.Object, "spec", "targetGroupARN")
		if mc && a != "" {
			return a, nil
		}
	}
	return "", nil
}

func (p *Provider) observeSecondary(ctx context.Context, s LBSecondaryQuery, q LBQuery) LBSecondaryResult {
	var res LBSecondaryResult
	c, err := p.clientFor(s.Cluster, s.KubeContext)
	if err != nil {
		res.Err = err
		return res
	}
	crd, err := c.Resource(crdGVR).Get(ctx, TargetGroupBindingCRD, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		res.CRD = "missing"
	case err != nil:
		res.Err = fmt.Errorf("cluster %s: reading CRD %s: %w", s.Cluster, TargetGroupBindingCRD, err)
		return res
	case !hasMultiClusterField(crd):
		res.CRD = "old"
	}
	if _, err := c.CoreV1().Services(q.Namespace).Get(ctx, q.Service, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		res.ServiceMissing = true
	} else if err != nil {
		res.Err = fmt.Errorf("cluster %s: reading Service %s/%s: %w", s.Cluster, q.Namespace, q.Service, err)
		return res
	}
	if res.CRD == "missing" {
		return res
	}
	res.Binding, err = kubeobj.NewClient(c, p.opts.Mesh).Get(ctx, "TargetGroupBinding", q.Namespace, q.Binding)
	if err != nil {
		res.Err = fmt.Errorf("cluster %s: %w", s.Cluster, err)
	}
	return res
}

// hasMultiClusterField reports whether the CRD's v1beta1 schema has spec.multiClusterTargetGroup (LBC
// v2.10 and later).
func hasMultiClusterField(crd *unstructured.Unstructured) bool {
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		v, _ := v.(map[string]any)
		if v["name"] != "v1beta1" {
			continue
		}
		_, ok, _ := unstructured.NestedFieldNoCopy(v, "schema", "openAPIV3Schema", "properties", "spec", "properties", "multiClusterTargetGroup")
		return ok
	}
	return false
}

// LBServiceAnnotations reads the annotations of a recorded Service (nil: it is gone).
func (p *Provider) LBServiceAnnotations(ctx context.Context, rec state.LoadBalancerRecord) (*plan.LBServiceObserved, error) {
	c, err := p.clientFor(rec.Cluster, rec.KubeContext)
	if err != nil {
		return nil, err
	}
	reqCtx, cancel := context.WithTimeout(ctx, p.opts.RequestTimeout)
	defer cancel()
	svc, err := c.CoreV1().Services(rec.Namespace).Get(reqCtx, rec.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster %s: reading Service %s/%s: %w", rec.Cluster, rec.Namespace, rec.Name, err)
	}
	return &plan.LBServiceObserved{Annotations: svc.Annotations}, nil
}

func init() {
	executors.Register(func(p *Provider) apply.Executor { return lbServiceExecutor{p} }, plan.KindLBService)
	executors.Register(func(p *Provider) apply.Executor { return bindingExecutor{p} }, plan.KindTargetGroupBinding)
}

type lbServiceExecutor struct{ p *Provider }

// Execute writes meshd's annotation values on the primary's Service with server-side apply (field manager
// meshd: the apply configuration holds only those annotations, so nothing else of the Service becomes
// meshd's) and waits for LBC's binding to be multi-cluster; the change's ID is its target group ARN. A
// delete takes off only the values meshd added, the multi-cluster annotation first and deletion
// protection last, with merge patches that carry the resourceVersion read.
func (e lbServiceExecutor) Execute(ctx context.Context, ch plan.Change, _ apply.Known) (apply.Outcome, error) {
	p := e.p
	if ch.Action == plan.Delete {
		before := ch.Before.(plan.LBService)
		c, err := p.clientFor(before.Cluster, before.KubeContext)
		if err != nil {
			return apply.Outcome{}, err
		}
		if before.RemoveMultiCluster {
			if err := removeAnnotationValue(ctx, c, before, func(map[string]string) (string, *string) {
				return plan.AnnotationMultiClusterTargetGroup, nil
			}); err != nil {
				return apply.Outcome{}, err
			}
		}
		if before.RemoveDeletionProtection {
			if err := removeAnnotationValue(ctx, c, before, withoutDeletionProtection); err != nil {
				return apply.Outcome{}, err
			}
		}
		return apply.Outcome{Record: func(st *state.State) { st.RemoveLoadBalancer(ch.Address) }}, nil
	}
	after := ch.After.(plan.LBService)
	c, err := p.clientFor(after.Cluster, after.KubeContext)
	if err != nil {
		return apply.Outcome{}, err
	}
	if after.RemoveDeletionProtection {
		if err := removeAnnotationValue(ctx, c, after, withoutDeletionProtection); err != nil {
			return apply.Outcome{}, err
		}
	}
	svc, err := c.CoreV1().Services(after.Namespace).Get(ctx, after.Name, metav1.GetOptions{})
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("cluster %s: reading Service %s/%s: %w", after.Cluster, after.Namespace, after.Name, err)
	}
	cur := svc.Annotations
	addedMC := cur[plan.AnnotationMultiClusterTargetGroup] != "true"
	annotations := map[string]any{plan.AnnotationMultiClusterTargetGroup: "true"}
	attrs, hasAttrs := cur[plan.AnnotationLBAttributes]
	addedDP := false
	if after.DeletionProtection {
		if v, _ := plan.AttributeValue(attrs, plan.DeletionProtection); v != "true" {
			attrs, addedDP = plan.WithAttribute(attrs, plan.DeletionProtection, "true"), true
		}
		hasAttrs = true
	}
	if hasAttrs {
		// Always in meshd's configuration once meshd applied it: an apply that left it out would delete it.
		annotations[plan.AnnotationLBAttributes] = attrs
	}
	cfg := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": after.Name, "namespace": after.Namespace, "annotations": annotations}}}
	if _, err := c.Resource(servicesGVR).Namespace(after.Namespace).Apply(ctx, after.Name, cfg,
		metav1.ApplyOptions{FieldManager: model.FieldManager, Force: true}); err != nil {
		return apply.Outcome{}, fmt.Errorf("cluster %s: applying meshd's annotations to Service %s/%s: %w", after.Cluster, after.Namespace, after.Name, err)
	}
	arn, err := p.waitTargetGroup(ctx, c, ch.Address, after.Namespace, after.Name, after.TargetGroupARN)
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("cluster %s: %w", after.Cluster, err)
	}
	rec := after.Record()
	return apply.Outcome{ID: arn, Record: func(st *state.State) {
		prev := st.LoadBalancers[ch.Address]
		rec.AddedMultiCluster = prev.AddedMultiCluster || addedMC
		rec.AddedDeletionProtection = (prev.AddedDeletionProtection || addedDP) && after.DeletionProtection
		st.SetLoadBalancer(ch.Address, rec)
	}}, nil
}

func withoutDeletionProtection(cur map[string]string) (string, *string) {
	rest := plan.WithoutAttribute(cur[plan.AnnotationLBAttributes], plan.DeletionProtection)
	if rest == "" {
		return plan.AnnotationLBAttributes, nil
	}
	return plan.AnnotationLBAttributes, &rest
}

// removeAnnotationValue sets (or, nil, removes) one annotation of the Service with a merge patch that
// carries the resourceVersion just read, retrying on a conflict. A Service that is gone is not an error.
func removeAnnotationValue(ctx context.Context, c kubeclient.Interface, s plan.LBService, value func(map[string]string) (string, *string)) error {
	svcs := c.CoreV1().Services(s.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := svcs.Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		key, v := value(cur.Annotations)
		if _, has := cur.Annotations[key]; !has && v == nil {
			return nil
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": cur.ResourceVersion,
			"annotations": map[string]any{key: v}}})
		_, err = svcs.Patch(ctx, s.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: model.FieldManager})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster %s: removing meshd's annotation value from Service %s/%s: %w", s.Cluster, s.Namespace, s.Name, err)
	}
	return nil
}

// waitTargetGroup waits for LBC's binding of the Service to be multi-cluster and returns its ARN.
func (p *Provider) waitTargetGroup(ctx context.Context, c kubeclient.Interface, address, namespace, service, known string) (string, error) {
	if known != "" {
		return known, nil
	}
	var arn string
	err := p.poll(ctx, address, fmt.Sprintf("the load balancer controller's TargetGroupBinding of Service %s/%s to be multi-cluster", namespace, service),
		func(ctx context.Context) (bool, error) {
			a, err := primaryBinding(ctx, c, namespace, service, 0)
			arn = a
			return a != "", err
		})
	return arn, err
}

type bindingExecutor struct{ p *Provider }

// Execute creates, updates or deletes a secondary's binding. An ARN known only after apply comes from the
// lb_service change (Pending) or, without one, from the primary's binding; the ingress sources then from
// describing the target group. A delete waits until the binding is gone: LBC's finalizer deregisters the
// cluster's targets first.
func (e bindingExecutor) Execute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	p := e.p
	if ch.Action == plan.Delete {
		before := ch.Before.(plan.TargetGroupBinding)
		if err := p.deleteBinding(ctx, ch.Address, before); err != nil {
			return apply.Outcome{}, err
		}
		return apply.Outcome{Record: func(st *state.State) { st.RemoveLoadBalancer(ch.Address) }}, nil
	}
	b := ch.After.(plan.TargetGroupBinding)
	if b.TargetGroupARN == "" {
		if arn, ok := known(b.Pending); ok && b.Pending != "" && arn != "" {
			b.TargetGroupARN = arn
		} else {
			pc, err := p.clientFor(b.PrimaryCluster, b.PrimaryContext)
			if err != nil {
				return apply.Outcome{}, err
			}
			if b.TargetGroupARN, err = p.waitTargetGroup(ctx, pc, ch.Address, b.Namespace, b.Service, ""); err != nil {
				return apply.Outcome{}, fmt.Errorf("cluster %s: %w", b.PrimaryCluster, err)
			}
		}
	}
	if b.IngressFrom == nil {
		if p.opts.TargetGroups == nil {
			return apply.Outcome{}, errors.New("no AWS provider to describe the target group with")
		}
		tg, err := p.opts.TargetGroups.TargetGroup(ctx, b.PrimaryRegion, b.TargetGroupARN)
		if err != nil {
			return apply.Outcome{}, err
		}
		b.IngressFrom = plan.IngressFrom(tg, b.Region)
	}
	c, err := p.clientFor(b.Cluster, b.KubeContext)
	if err != nil {
		return apply.Outcome{}, err
	}
	objs := kubeobj.NewClient(c, p.opts.Mesh)
	switch ch.Action {
	case plan.Create:
		_, err = objs.Create(ctx, b.Object())
	case plan.Update:
		_, err = objs.Update(ctx, b.Object())
	case plan.Replace:
		if err = p.deleteBinding(ctx, ch.Address, ch.Before.(plan.TargetGroupBinding)); err == nil {
			_, err = objs.Create(ctx, b.Object())
		}
	default:
		err = fmt.Errorf("cannot %s a TargetGroupBinding", ch.Action.Verb())
	}
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("cluster %s: %w", b.Cluster, err)
	}
	rec := b.Record()
	return apply.Outcome{ID: b.TargetGroupARN, Record: func(st *state.State) { st.SetLoadBalancer(ch.Address, rec) }}, nil
}

func (p *Provider) deleteBinding(ctx context.Context, address string, b plan.TargetGroupBinding) error {
	c, err := p.clientFor(b.Cluster, b.KubeContext)
	if err != nil {
		return err
	}
	objs := kubeobj.NewClient(c, p.opts.Mesh)
	observed := kubeobj.Object{APIVersion: tgbGVR.GroupVersion().String(), Kind: "TargetGroupBinding", Namespace: b.Namespace, Name: b.Name, UID: b.UID}
	if err := objs.Delete(ctx, observed); err != nil {
		return fmt.Errorf("cluster %s: %w", b.Cluster, err)
	}
	return p.poll(ctx, address, fmt.Sprintf("TargetGroupBinding %s/%s to go (the load balancer controller deregisters its targets first)", b.Namespace, b.Name),
		func(ctx context.Context) (bool, error) {
			o, err := objs.Get(ctx, "TargetGroupBinding", b.Namespace, b.Name)
			return o == nil || o.UID != b.UID, err
		})
}

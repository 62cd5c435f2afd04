package sandbox

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshd-io/meshd/internal/sandbox/crds"
	"github.com/meshd-io/meshd/internal/testenv"
)

// What the AWS Load Balancer Controller (v2.10+) uses for Services and TargetGroupBindings, which the
// target-group stand-in honours.
const (
	AnnotationNLBTargetType    = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"
	AnnotationMultiClusterTG   = "service.beta.kubernetes.io/aws-load-balancer-multi-cluster-target-group"
	AnnotationLBAttributes     = "service.beta.kubernetes.io/aws-load-balancer-attributes"
	LabelStackName             = "service.k8s.aws/stack-name"
	LabelStackNamespace        = "service.k8s.aws/stack-namespace"
	TGBFinalizer               = "elbv2.k8s.aws/resources"
	TargetsConfigMapPrefix     = "aws-lbc-targets-"
	TargetsConfigMapKey        = "targets"
	deletionProtectionDisabled = "false"
)

var tgbResource = schema.GroupVersionResource{Group: "elbv2.k8s.aws", Version: "v1beta1", Resource: "targetgroupbindings"}

// TGBCluster is one cluster the target-group stand-in serves.
type TGBCluster struct {
	Name      string
	Client    kubernetes.Interface
	Dynamic   dynamic.Interface
	AWS       aws.Config // the cluster's region
	VPCID     string
	SubnetIDs []string
}

// TargetGroupController stands in for what the AWS Load Balancer Controller does with target groups:
//   - for a Service of type LoadBalancer annotated aws-load-balancer-nlb-target-type: ip it creates a
//     network load balancer, an ip target group on the Service's target port and a listener, and the
//     TargetGroupBinding named after the target group, labelled service.k8s.aws/stack-name and
//     stack-namespace, with multiClusterTargetGroup set from the multi-cluster annotation; it sets the
//     load balancer's deletion_protection.enabled from the attributes annotation;
//   - for every TargetGroupBinding of its cluster it registers the Ready endpoints of the serviceRef's
//     EndpointSlices (RegisterTargets), and holds the binding with the finalizer elbv2.k8s.aws/resources.
//     With multiClusterTargetGroup it tracks what it registered in the ConfigMap aws-lbc-targets-<tgb> (key
//     targets, ip:port comma-separated) and deregisters only those; without it, every other target of the
//     group is deregistered, as an LBC older than v2.10 does. On deletion it deregisters what it tracks,
//     deletes the ConfigMap and lets the binding go. The target group and load balancer are kept.
//
// It works by resync (every Interval), which is all a test needs.
type TargetGroupController struct {
	Clusters []TGBCluster
	// AWSConfig gives the SDK configuration of a region (a target group may be in another cluster's).
	AWSConfig func(region string) aws.Config
	Logf      func(format string, args ...any)
	Interval  time.Duration // default 300ms

	pauses
}

// Run serves every cluster until ctx ends.
func (c *TargetGroupController) Run(ctx context.Context) {
	interval := c.Interval
	if interval == 0 {
		interval = 300 * time.Millisecond
	}
	forEach(c.Clusters, func(cl TGBCluster) {
		for {
			if !c.isPaused(cl.Name) {
				if err := c.reconcile(ctx, cl); err != nil && ctx.Err() == nil {
					c.logf("lbc %s: %v (retrying)", cl.Name, err)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	})
}

func (c *TargetGroupController) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

func (c *TargetGroupController) reconcile(ctx context.Context, cl TGBCluster) error {
	svcs, err := cl.Client.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var errs []error
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Annotations[AnnotationNLBTargetType] == "ip" && svc.DeletionTimestamp == nil {
			if err := c.serviceTargetGroup(ctx, cl, svc); err != nil {
				errs = append(errs, fmt.Errorf("Service %s/%s: %w", svc.Namespace, svc.Name, err))
			}
		}
	}
	tgbs, err := cl.Dynamic.Resource(tgbResource).Namespace(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return errors.Join(errs...) // no CRD installed
	}
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for i := range tgbs.Items {
		if err := c.binding(ctx, cl, &tgbs.Items[i]); err != nil {
			errs = append(errs, fmt.Errorf("TargetGroupBinding %s/%s: %w", tgbs.Items[i].GetNamespace(), tgbs.Items[i].GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// TargetGroupName is the name the stand-in gives a Service's target group (and its binding), in LBC's
// pattern k8s-<namespace, 8>-<name, 8>-<10 hex>.
func TargetGroupName(cluster, namespace, name string) string {
	return LBName(cluster, namespace, name+"-tg")
}

func (c *TargetGroupController) serviceTargetGroup(ctx context.Context, cl TGBCluster, svc *corev1.Service) error {
	if len(svc.Spec.Ports) == 0 {
		return nil
	}
	port := svc.Spec.Ports[0]
	targetPort := port.TargetPort.IntValue()
	if targetPort == 0 {
		targetPort = int(port.Port)
	}
	lbs := elbv2.NewFromConfig(cl.AWS)
	lbName := LBName(cl.Name, svc.Namespace, svc.Name)
	lb, err := describeLB(ctx, lbs, lbName)
	if err != nil {
		return err
	}
	if lb == nil {
		out, err := lbs.CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{Name: aws.String(lbName),
			Type: elbtypes.LoadBalancerTypeEnumNetwork, Scheme: elbtypes.LoadBalancerSchemeEnumInternal, Subnets: cl.SubnetIDs,
			Tags: []elbtypes.Tag{{Key: aws.String("service.k8s.aws/stack"), Value: aws.String(svc.Namespace + "/" + svc.Name)}}})
		if Retried(err, "DuplicateLoadBalancerName") {
			lb, err = describeLB(ctx, lbs, lbName)
		} else if err == nil {
			lb = &out.LoadBalancers[0]
		}
		if err != nil || lb == nil {
			return fmt.Errorf("creating NLB %s: %v", lbName, err)
		}
		c.logf("lbc %s: %s/%s: created NLB %s", cl.Name, svc.Namespace, svc.Name, lbName)
	}
	tgName := TargetGroupName(cl.Name, svc.Namespace, svc.Name)
	tg, err := describeTG(ctx, lbs, tgName)
	if err != nil {
		return err
	}
	if tg == nil {
		out, err := lbs.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: aws.String(tgName), Protocol: elbtypes.ProtocolEnumTcp,
			Port: aws.Int32(int32(targetPort)), VpcId: aws.String(cl.VPCID), TargetType: elbtypes.TargetTypeEnumIp})
		if Retried(err, "DuplicateTargetGroupName") {
			tg, err = describeTG(ctx, lbs, tgName)
		} else if err == nil {
			tg = &out.TargetGroups[0]
		}
		if err != nil || tg == nil {
			return fmt.Errorf("creating target group %s: %v", tgName, err)
		}
		if _, err := lbs.CreateListener(ctx, &elbv2.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumTcp,
			Port: aws.Int32(port.Port), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroupArn}}}); err != nil &&
			!Retried(err, "DuplicateListener") {
			return fmt.Errorf("creating listener: %w", err)
		}
		c.logf("lbc %s: %s/%s: created target group %s", cl.Name, svc.Namespace, svc.Name, tgName)
	}
	dp := deletionProtectionDisabled
	for _, e := range strings.Split(svc.Annotations[AnnotationLBAttributes], ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(e), "="); ok && k == "deletion_protection.enabled" {
			dp = strings.TrimSpace(v)
		}
	}
	if _, err := lbs.ModifyLoadBalancerAttributes(ctx, &elbv2.ModifyLoadBalancerAttributesInput{LoadBalancerArn: lb.LoadBalancerArn,
		Attributes: []elbtypes.LoadBalancerAttribute{{Key: aws.String("deletion_protection.enabled"), Value: aws.String(dp)}}}); err != nil {
		c.logf("lbc %s: %s/%s: setting deletion protection: %v", cl.Name, svc.Namespace, svc.Name, err)
	}

	mc := svc.Annotations[AnnotationMultiClusterTG] == "true"
	want := map[string]any{
		"targetGroupARN":          aws.ToString(tg.TargetGroupArn),
		"targetType":              "ip",
		"ipAddressType":           "ipv4",
		"vpcID":                   cl.VPCID,
		"multiClusterTargetGroup": mc,
		"serviceRef":              map[string]any{"name": svc.Name, "port": int64(port.Port)},
	}
	res := cl.Dynamic.Resource(tgbResource).Namespace(svc.Namespace)
	cur, err := res.Get(ctx, tgName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
			"metadata": map[string]any{"name": tgName, "namespace": svc.Namespace,
				"labels": map[string]any{LabelStackName: svc.Name, LabelStackNamespace: svc.Namespace}},
			"spec": want}}
		if _, err := res.Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		c.logf("lbc %s: %s/%s: TargetGroupBinding %s (multiClusterTargetGroup %v)", cl.Name, svc.Namespace, svc.Name, tgName, mc)
	case err != nil:
		return err
	default:
		if got, _, _ := unstructured.NestedBool(cur.Object, "spec", "multiClusterTargetGroup"); got != mc {
			_ = unstructured.SetNestedField(cur.Object, mc, "spec", "multiClusterTargetGroup")
			if _, err := res.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
				return err
			}
			c.logf("lbc %s: %s/%s: TargetGroupBinding %s multiClusterTargetGroup %v", cl.Name, svc.Namespace, svc.Name, tgName, mc)
		}
	}
	return nil
}

func describeTG(ctx context.Context, lbs *elbv2.Client, name string) (*elbtypes.TargetGroup, error) {
	out, err := lbs.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Names: []string{name}})
	var nf *elbtypes.TargetGroupNotFoundException
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(out.TargetGroups) == 0 {
		return nil, nil
	}
	return &out.TargetGroups[0], nil
}

// regionOf is the region of an ARN (arn:aws:elasticloadbalancing:<region>:...).
func regionOf(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) < 4 {
		return ""
	}
	return parts[3]
}

func (c *TargetGroupController) binding(ctx context.Context, cl TGBCluster, tgb *unstructured.Unstructured) error {
	ns, name := tgb.GetNamespace(), tgb.GetName()
	arn, _, _ := unstructured.NestedString(tgb.Object, "spec", "targetGroupARN")
	mc, _, _ := unstructured.NestedBool(tgb.Object, "spec", "multiClusterTargetGroup")
	lbs := elbv2.NewFromConfig(c.AWSConfig(regionOf(arn)))
	cms := cl.Client.CoreV1().ConfigMaps(ns)
	cmName := TargetsConfigMapPrefix + name
	tracked := map[string]bool{}
	cm, err := cms.Get(ctx, cmName, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	cmExists := err == nil
	if cmExists {
		for _, t := range strings.Split(cm.Data[TargetsConfigMapKey], ",") {
			if t != "" {
				tracked[t] = true
			}
		}
	}
	res := cl.Dynamic.Resource(tgbResource).Namespace(ns)

	if tgb.GetDeletionTimestamp() != nil {
		if err := deregister(ctx, lbs, arn, slices.Sorted(maps.Keys(tracked))); err != nil {
			return err
		}
		if err := cms.Delete(ctx, cmName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		tgb.SetFinalizers(slices.DeleteFunc(tgb.GetFinalizers(), func(f string) bool { return f == TGBFinalizer }))
		if _, err := res.Update(ctx, tgb, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		c.logf("lbc %s: TargetGroupBinding %s/%s deleted: deregistered %d target(s)", cl.Name, ns, name, len(tracked))
		return nil
	}
	if !slices.Contains(tgb.GetFinalizers(), TGBFinalizer) {
		tgb.SetFinalizers(append(tgb.GetFinalizers(), TGBFinalizer))
		updated, err := res.Update(ctx, tgb, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		tgb = updated
	}
	desired, err := readyEndpoints(ctx, cl.Client, tgb)
	if err != nil {
		return err
	}
	registered := map[string]bool{}
	health, err := lbs.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
	if err != nil {
		return err
	}
	for _, d := range health.TargetHealthDescriptions {
		registered[fmt.Sprintf("%s:%d", aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port))] = true
	}
	var add, remove []string
	for t := range desired {
		if !registered[t] {
			add = append(add, t)
		}
	}
	stale := tracked
	if !mc {
		stale = registered // an LBC without multi-cluster support owns the whole group
	}
	for t := range stale {
		if !desired[t] && registered[t] {
			remove = append(remove, t)
		}
	}
	slices.Sort(add)
	slices.Sort(remove)
	if len(add) > 0 {
		var targets []elbtypes.TargetDescription
		for _, t := range add {
			ip, port, _ := strings.Cut(t, ":")
			p, _ := strconv.Atoi(port)
			targets = append(targets, elbtypes.TargetDescription{Id: aws.String(ip), Port: aws.Int32(int32(p)), AvailabilityZone: aws.String("all")})
		}
		if _, err := lbs.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: targets}); err != nil {
			return err
		}
		c.logf("lbc %s: TargetGroupBinding %s/%s: registered %s", cl.Name, ns, name, strings.Join(add, ","))
	}
	if err := deregister(ctx, lbs, arn, remove); err != nil {
		return err
	}
	if len(remove) > 0 {
		c.logf("lbc %s: TargetGroupBinding %s/%s: deregistered %s", cl.Name, ns, name, strings.Join(remove, ","))
	}
	if !mc {
		return nil
	}
	value := strings.Join(slices.Sorted(maps.Keys(desired)), ",")
	if !cmExists {
		_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: cmName, Namespace: ns},
			Data: map[string]string{TargetsConfigMapKey: value}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil // the next resync reads it
		}
		return err
	}
	if cm.Data[TargetsConfigMapKey] != value {
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[TargetsConfigMapKey] = value
		_, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	}
	return nil
}

func deregister(ctx context.Context, lbs *elbv2.Client, arn string, targets []string) error {
	if len(targets) == 0 {
		return nil
	}
	var ts []elbtypes.TargetDescription
	for _, t := range targets {
		ip, port, _ := strings.Cut(t, ":")
		p, _ := strconv.Atoi(port)
		ts = append(ts, elbtypes.TargetDescription{Id: aws.String(ip), Port: aws.Int32(int32(p))})
	}
	_, err := lbs.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: ts})
	if Retried(err, "InvalidTarget") {
		return nil // moto: already gone
	}
	return err
}

// readyEndpoints are the ip:port targets of the binding's serviceRef: the Ready endpoints of the Service's
// EndpointSlices, on the slice port named like the Service port.
func readyEndpoints(ctx context.Context, kc kubernetes.Interface, tgb *unstructured.Unstructured) (map[string]bool, error) {
	ns := tgb.GetNamespace()
	svcName, _, _ := unstructured.NestedString(tgb.Object, "spec", "serviceRef", "name")
	ref, _, _ := unstructured.NestedFieldNoCopy(tgb.Object, "spec", "serviceRef", "port")
	out := map[string]bool{}
	svc, err := kc.CoreV1().Services(ns).Get(ctx, svcName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	portName, found := "", false
	for _, p := range svc.Spec.Ports {
		if fmt.Sprint(ref) == strconv.Itoa(int(p.Port)) || fmt.Sprint(ref) == p.Name {
			portName, found = p.Name, true
		}
	}
	if !found {
		return out, nil
	}
	eps, err := kc.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svcName})
	if err != nil {
		return nil, err
	}
	for _, s := range eps.Items {
		var port int32
		for _, p := range s.Ports {
			if p.Port != nil && (p.Name == nil && portName == "" || p.Name != nil && *p.Name == portName) {
				port = *p.Port
			}
		}
		if port == 0 {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				out[fmt.Sprintf("%s:%d", a, port)] = true
			}
		}
	}
	return out, nil
}

// StartTargetGroups installs the TargetGroupBinding CRD (crd: the manifest, by cluster; a cluster not
// listed gets crds.TargetGroupBinding) in the API server of every cluster but the External ones (which run
// no AWS Load Balancer Controller) and runs the target-group stand-in until ctx ends; wait for its end with
// the returned func.
func (s *Sandbox) StartTargetGroups(ctx context.Context, crd map[string][]byte) (*TargetGroupController, func(), error) {
	c := &TargetGroupController{AWSConfig: s.AWSConfig, Logf: s.Logf}
	for _, cl := range s.awsClusters() {
		cfg := s.APIServers[cl.Name].RESTConfig()
		manifest := crd[cl.Name]
		if manifest == nil {
			manifest = crds.TargetGroupBinding
		}
		if err := testenv.InstallCRD(ctx, cfg, manifest); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cl.Name, err)
		}
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, nil, err
		}
		n := s.Networks[cl.Name]
		c.Clusters = append(c.Clusters, TGBCluster{Name: cl.Name, Client: s.Clients[cl.Name], Dynamic: dyn,
			AWS: s.AWSConfig(cl.Region), VPCID: n.VPCID, SubnetIDs: n.SubnetIDs})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	return c, func() { <-done }, nil
}

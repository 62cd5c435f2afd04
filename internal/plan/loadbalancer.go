package plan

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// A load_balancer block (spec.LoadBalancer) is two kinds:
//
//   - lb_service: meshd's annotation values on the primary's Service, which is the user's and is never
//     created or deleted: the multi-cluster annotation, and (deletion_protection) the
//     deletion_protection.enabled=true entry of the attributes annotation. Ownership: the state's record,
//     which also says which values meshd added (only those are removed); written with server-side apply
//     under meshd's field manager, so no other field of the Service becomes meshd's.
//   - target_group_binding: the TargetGroupBinding meshd makes in each secondary for the primary's target
//     group. Ownership: meshd's labels, and the state's record of where it is.
const (
	KindTargetGroupBinding Kind = "target_group_binding"
	KindLBService          Kind = "lb_service"
)

func init() {
	// A binding waits for the primary's target group, which the annotation makes multi-cluster: lb_service
	// is First. Deletes by rank: bindings (8) before the annotations come off (9).
	Register(KindInfo{
		Kind: KindTargetGroupBinding, Address: "target_group_binding[<load_balancer>:<cluster>]", Rank: 8,
		Provider: ProviderKube, Decode: decodeAs[TargetGroupBinding], RepeatHint: hintKube,
		Touches: func(r Resource) ObjectRef {
			b := r.(TargetGroupBinding)
			return ObjectRef{Cluster: b.Cluster, APIVersion: tgbAPIVersion, Kind: "TargetGroupBinding", Namespace: b.Namespace, Name: b.Name}
		},
		Watches: bindingWatches,
		RBAC:    bindingRBAC,
		State:   &Records{List: func(st *state.State) []state.Entry { return lbEntries(KindTargetGroupBinding, st) }},
	})
	Register(KindInfo{
		Kind: KindLBService, Address: "lb_service[<load_balancer>]", Rank: 9, First: true,
		planner:  (*computer).loadBalancers, // and the bindings
		Provider: ProviderKube, Decode: decodeAs[LBService],
		RepeatHint: "the Service's managedFields name who writes its annotations (kubectl get -o yaml --show-managed-fields); " +
			"a kubectl apply of a manifest without them removes them each time: add them to the manifest",
		Touches: func(r Resource) ObjectRef {
			s := r.(LBService)
			return ObjectRef{Cluster: s.Cluster, APIVersion: "v1", Kind: "Service", Namespace: s.Namespace, Name: s.Name}
		},
		Watches: lbServiceWatches,
		RBAC:    lbServiceRBAC,
		State: &Records{
			List: func(st *state.State) []state.Entry { return lbEntries(KindLBService, st) },
			// The load_balancer blocks' records are one map: the Service's kind fixes the bindings' too.
			Fix: func(p *Plan, st *state.State) {
				fixRecords(p.ForgetLoadBalancers, p.RecordLoadBalancers, st.RemoveLoadBalancer, st.SetLoadBalancer)
			},
		},
	})
}

// lbEntries lists the records of kind k (a load_balancer block's Service or bindings).
func lbEntries(k Kind, st *state.State) []state.Entry {
	var out []state.Entry
	for addr, r := range st.LoadBalancers {
		if strings.HasPrefix(addr, string(k)+"[") {
			out = append(out, state.Entry{Address: addr, Attrs: append(locatedAttrs(r.Cluster, r.KubeContext, r.Kind, r.Namespace, r.Name),
				state.Attr{Name: "added_multi_cluster", Value: boolAttr(r.AddedMultiCluster)},
				state.Attr{Name: "added_deletion_protection", Value: boolAttr(r.AddedDeletionProtection)})})
		}
	}
	return out
}

// bindingRBAC: in each secondary, the TargetGroupBinding CRD (read, to tell LBC v2.10+ from older ones),
// the Service (read: it must exist), and meshd's TargetGroupBinding.
func bindingRBAC(m *spec.Mesh) []access.Rule {
	const crds = "customresourcedefinitions"
	var out []access.Rule
	for _, lb := range m.LoadBalancers {
		for _, s := range lb.SecondariesOf(m) {
			out = append(out,
				rbacRule(s, "", "apiextensions.k8s.io", crds, []string{"targetgroupbindings.elbv2.k8s.aws"},
					"The TargetGroupBinding CRD: read, to tell an AWS Load Balancer Controller that supports multiClusterTargetGroup (v2.10+).", "get"),
				rbacRule(s, lb.Namespace, "", "services", []string{lb.Service},
					fmt.Sprintf("load_balancer %q: its Service, read only (the binding refers to it).", lb.Name), "get"),
				rbacRule(s, lb.Namespace, "elbv2.k8s.aws", "targetgroupbindings", []string{lb.Name},
					fmt.Sprintf("load_balancer %q's TargetGroupBinding: read, updated, deleted, never without meshd's labels.", lb.Name),
					"get", "update", "delete"),
				rbacRule(s, lb.Namespace, "elbv2.k8s.aws", "targetgroupbindings", nil,
					whyCreate+fmt.Sprintf(" Here: load_balancer %q's TargetGroupBinding.", lb.Name), "create"))
		}
	}
	return out
}

// lbServiceRBAC: in the primary, the Service (read; meshd's two annotation values written by server-side
// apply and removed by merge patch), and the TargetGroupBindings the AWS Load Balancer Controller made for
// it, found by LBC's labels.
func lbServiceRBAC(m *spec.Mesh) []access.Rule {
	var out []access.Rule
	for _, lb := range m.LoadBalancers {
		out = append(out,
			rbacRule(lb.Primary, lb.Namespace, "", "services", []string{lb.Service},
				fmt.Sprintf("load_balancer %q's Service: read, and patched with meshd's annotation values only.", lb.Name), "get", "patch"),
			rbacRule(lb.Primary, lb.Namespace, "elbv2.k8s.aws", "targetgroupbindings", nil,
				"The AWS Load Balancer Controller's TargetGroupBindings for the Service: listed by LBC's labels, whose names LBC makes up, so the list cannot be named.", "list"))
	}
	return out
}

const tgbAPIVersion = "elbv2.k8s.aws/v1beta1"

// What the AWS Load Balancer Controller reads and writes, which meshd sets or looks for.
const (
	AnnotationMultiClusterTargetGroup = "service.beta.kubernetes.io/aws-load-balancer-multi-cluster-target-group"
	AnnotationLBAttributes            = "service.beta.kubernetes.io/aws-load-balancer-attributes"
	// DeletionProtection is the load balancer attribute meshd merges into AnnotationLBAttributes.
	DeletionProtection = "deletion_protection.enabled"
	// The labels LBC puts on the TargetGroupBindings it makes for a Service.
	LabelStackName      = "service.k8s.aws/stack-name"
	LabelStackNamespace = "service.k8s.aws/stack-namespace"
)

// bindingWatches are the secondaries' TargetGroupBindings, so that one deleted or edited is restored at once.
func bindingWatches(m *spec.Mesh) []Watch {
	var out []Watch
	for _, lb := range m.LoadBalancers {
		for _, s := range lb.SecondariesOf(m) {
			out = append(out, Watch{Cluster: s, APIVersion: tgbAPIVersion, Resource: "targetgroupbindings",
				Namespace: lb.Namespace, Name: lb.Name})
		}
	}
	return out
}

// lbServiceWatches are the primaries' Services, so that an annotation removed is restored at once.
func lbServiceWatches(m *spec.Mesh) []Watch {
	var out []Watch
	for _, lb := range m.LoadBalancers {
		out = append(out, Watch{Cluster: lb.Primary, APIVersion: "v1", Resource: "services", Namespace: lb.Namespace, Name: lb.Service})
	}
	return out
}

// LBServiceAddress is the address of a load_balancer block's annotations on its primary's Service.
func LBServiceAddress(lb string) string { return fmt.Sprintf("%s[%s]", KindLBService, lb) }

// BindingAddress is the address of a load_balancer block's TargetGroupBinding in a secondary.
func BindingAddress(lb, cluster string) string {
	return fmt.Sprintf("%s[%s:%s]", KindTargetGroupBinding, lb, cluster)
}

// LBService is meshd's part of the primary's Service: its annotation values, never the Service.
type LBService struct {
	LoadBalancer string `json:"load_balancer"`
	Cluster      string `json:"cluster"`
	KubeContext  string `json:"kube_context"`
	Namespace    string `json:"namespace"`
	Name         string `json:"name"`
	// MultiCluster and DeletionProtection: the values meshd wants there (After) or finds there (Before).
	MultiCluster       bool `json:"multi_cluster"`
	DeletionProtection bool `json:"deletion_protection"`
	// Attributes is the whole attributes annotation as it will be (After) or is (Before): the user's
	// entries are kept as they are.
	Attributes string `json:"attributes,omitempty"`
	// TargetGroupARN is the primary's target group, "" when known only after apply.
	TargetGroupARN string `json:"target_group_arn,omitempty"`
	// RemoveMultiCluster and RemoveDeletionProtection (on a change's After, or a delete's Before): the
	// values meshd added and now takes away.
	RemoveMultiCluster       bool `json:"remove_multi_cluster,omitempty"`
	RemoveDeletionProtection bool `json:"remove_deletion_protection,omitempty"`
}

func (LBService) Kind() Kind { return KindLBService }

func (s LBService) Attrs() []Attr {
	attrs := []Attr{{Name: "service", Value: s.Cluster + "/" + s.Namespace + "/" + s.Name + " (the user's: only these annotations are meshd's)"}}
	mc := "(absent)"
	if s.MultiCluster {
		mc = "true"
	}
	attrs = append(attrs, Attr{Name: "multi_cluster_target_group", Value: mc})
	attrs = append(attrs, Attr{Name: "load_balancer_attributes", Value: s.Attributes})
	attrs = append(attrs, Attr{Name: "target_group", Value: s.TargetGroupARN, Unknown: s.TargetGroupARN == ""})
	return attrs
}

// Record is how the state remembers the Service.
func (s LBService) Record() state.LoadBalancerRecord {
	return state.LoadBalancerRecord{Cluster: s.Cluster, KubeContext: s.KubeContext, Kind: "Service", Namespace: s.Namespace, Name: s.Name}
}

// TargetGroupBinding is the binding meshd makes in a secondary for the primary's target group.
type TargetGroupBinding struct {
	LoadBalancer string `json:"load_balancer"`
	Cluster      string `json:"cluster"`
	KubeContext  string `json:"kube_context"`
	Namespace    string `json:"namespace"`
	Name         string `json:"name"`

	// TargetGroupARN is "" when known only after apply: Pending then names the lb_service change whose
	// outcome is the ARN, or is empty when the executor waits for the primary's binding itself.
	TargetGroupARN string `json:"target_group_arn,omitempty"`
	Pending        string `json:"pending,omitempty"`
	// Where the ARN and the load balancer's network come from: the primary and its region (its Service is
	// Namespace/Service, the same as here).
	PrimaryCluster string `json:"primary_cluster"`
	PrimaryContext string `json:"primary_context"`
	PrimaryRegion  string `json:"primary_region"`

	Region   string `json:"region"` // the secondary's
	VPCID    string `json:"vpc_id"` // the secondary's: no webhook fills it for a binding meshd writes
	Service  string `json:"service"`
	Port     int32  `json:"port"`        // serviceRef.port
	Target   string `json:"target_port"` // the Pods' port (a number or a port name), for networking
	Protocol string `json:"protocol"`    // TCP
	// IngressFrom are the sources of networking.ingress: the load balancer's security groups (sg-…), else
	// its subnets' CIDR blocks; nil with an unknown ARN (known after apply).
	IngressFrom []string `json:"ingress_from,omitempty"`

	UID string `json:"uid,omitempty"` // the observed binding's (Before)
}

func (TargetGroupBinding) Kind() Kind { return KindTargetGroupBinding }

func (b TargetGroupBinding) Attrs() []Attr {
	unknown := b.TargetGroupARN == ""
	target := Attr{Name: "target_group", Value: b.TargetGroupARN}
	if unknown {
		target = Attr{Name: "target_group", Value: b.Pending, Unknown: true} // the lb_service change's outcome
	}
	ingress := Attr{Name: "ingress_from", Value: strings.Join(b.IngressFrom, ", "), Unknown: b.IngressFrom == nil}
	return []Attr{
		{Name: "object", Value: "TargetGroupBinding " + b.Namespace + "/" + b.Name},
		target,
		{Name: "service_ref", Value: fmt.Sprintf("%s:%d", b.Service, b.Port)},
		{Name: "target_type", Value: "ip (ipv4, multiClusterTargetGroup)"},
		{Name: "vpc_id", Value: b.VPCID},
		ingress,
		{Name: "ingress_ports", Value: b.Protocol + "/" + b.Target},
	}
}

// Record is how the state remembers the binding.
func (b TargetGroupBinding) Record() state.LoadBalancerRecord {
	return state.LoadBalancerRecord{Cluster: b.Cluster, KubeContext: b.KubeContext, Kind: "TargetGroupBinding", Namespace: b.Namespace, Name: b.Name}
}

// Object is the binding as meshd writes it (ownership labels are added by kubeobj.Own). The ARN and
// IngressFrom must be known.
func (b TargetGroupBinding) Object() kubeobj.Object {
	var from []any
	for _, f := range b.IngressFrom {
		if strings.HasPrefix(f, "sg-") {
			from = append(from, map[string]any{"securityGroup": map[string]any{"groupID": f}})
		} else {
			from = append(from, map[string]any{"ipBlock": map[string]any{"cidr": f}})
		}
	}
	var target any = b.Target
	if n, err := strconv.Atoi(b.Target); err == nil {
		target = int64(n)
	}
	spec := map[string]any{
		"targetGroupARN":          b.TargetGroupARN,
		"targetType":              "ip",
		"ipAddressType":           "ipv4",
		"multiClusterTargetGroup": true,
		"vpcID":                   b.VPCID,
		"serviceRef":              map[string]any{"name": b.Service, "port": int64(b.Port)},
	}
	if len(from) > 0 {
		spec["networking"] = map[string]any{"ingress": []any{map[string]any{
			"from":  from,
			"ports": []any{map[string]any{"protocol": b.Protocol, "port": target}},
		}}}
	}
	return kubeobj.Object{APIVersion: tgbAPIVersion, Kind: "TargetGroupBinding", Namespace: b.Namespace, Name: b.Name,
		Content: map[string]any{"spec": spec}}
}

// IngressFrom are the sources a secondary's binding lets in: the load balancer's security groups when it
// has some and the secondary is in its region (a security group cannot be referenced across regions),
// else the CIDR blocks of the load balancer's subnets.
func IngressFrom(tg model.TargetGroup, secondaryRegion string) []string {
	if len(tg.SecurityGroups) > 0 && tg.Region == secondaryRegion {
		return slices.Sorted(slices.Values(tg.SecurityGroups))
	}
	return slices.Sorted(slices.Values(tg.SubnetCIDRs))
}

// Attribute helpers: the attributes annotation is "k1=v1,k2=v2" (LBC splits on commas and trims spaces).

func attributeEntries(attrs string) []string {
	var out []string
	for _, e := range strings.Split(attrs, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// AttributeValue returns the value of key in an attributes annotation.
func AttributeValue(attrs, key string) (string, bool) {
	for _, e := range attributeEntries(attrs) {
		if k, v, _ := strings.Cut(e, "="); strings.TrimSpace(k) == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// WithAttribute sets key=value in an attributes annotation, keeping every other entry and their order.
func WithAttribute(attrs, key, value string) string {
	entries := attributeEntries(attrs)
	for i, e := range entries {
		if k, _, _ := strings.Cut(e, "="); strings.TrimSpace(k) == key {
			entries[i] = key + "=" + value
			return strings.Join(entries, ",")
		}
	}
	return strings.Join(append(entries, key+"="+value), ",")
}

// WithoutAttribute removes key from an attributes annotation, keeping every other entry.
func WithoutAttribute(attrs, key string) string {
	entries := slices.DeleteFunc(attributeEntries(attrs), func(e string) bool {
		k, _, _ := strings.Cut(e, "=")
		return strings.TrimSpace(k) == key
	})
	return strings.Join(entries, ",")
}

// LoadBalancerInput is what the load_balancer part of Compute needs: every block as observed, and the
// recorded objects no block wants any more.
type LoadBalancerInput struct {
	Blocks []LoadBalancerBlock
	// OrphanServices and OrphanBindings are the observed recorded objects no block wants (by address; nil:
	// gone). An object that could not be observed has no entry and is left alone.
	OrphanServices map[string]*LBServiceObserved
	OrphanBindings map[string]*kubeobj.Object
}

// LoadBalancerBlock is one load_balancer block as observed.
type LoadBalancerBlock struct {
	Name string
	// Skip: observing the block found a problem (reported as a diagnostic): its objects are left as they are.
	Skip               bool
	Primary            string
	PrimaryContext     string
	Region             string
	Namespace          string
	Service            string
	DeletionProtection bool
	// Observed is the primary's Service.
	Observed LBServiceObserved
	// TargetGroupARN is the ARN of the primary's multi-cluster binding; "" until LBC made it one.
	TargetGroupARN string
	// TargetGroup is the target group as AWS describes it, when the ARN is known.
	TargetGroup *model.TargetGroup
	Port        int32  // the Service port
	TargetPort  string // its targetPort (the Pods' port, number or name)
	Protocol    string
	Secondaries []LoadBalancerSecondary
}

// LBServiceObserved is what meshd reads of the primary's Service: its annotations.
type LBServiceObserved struct {
	Annotations map[string]string `json:"annotations,omitempty"`
}

// LoadBalancerSecondary is one secondary of a block: its binding as observed (nil: none).
type LoadBalancerSecondary struct {
	Cluster     string
	KubeContext string
	Binding     *kubeobj.Object
	// Skip: a problem there was diagnosed (old LBC, Service missing): its binding is left as it is.
	Skip bool
}

// TargetGroupStatus is what the plan shows of a block's target group: its ARN and, per cluster, the
// targets registered in it (DescribeTargetHealth), so that a user sees every cluster contribute.
type TargetGroupStatus struct {
	LoadBalancer string           `json:"load_balancer"`
	ARN          string           `json:"arn,omitempty"` // "": known after apply
	Clusters     []ClusterTargets `json:"clusters,omitempty"`
}

// ClusterTargets are the targets of one cluster (by VPC CIDR); Cluster "" holds those of no member.
type ClusterTargets struct {
	Cluster string   `json:"cluster"`
	Targets []string `json:"targets"` // ip:port (state)
}

// loadBalancers plans every load_balancer block:
//
//	object                         | plan
//	-------------------------------+--------------------------------------------------------------------
//	Service annotations not as set | + (first time: recorded) or ~ (drift): server-side apply of meshd's
//	                               |   two values only
//	secondary binding: none        | + create (after the annotation, with the ARN known after apply)
//	  meshd's, other spec          | ~ update (-/+ when the ARN, VPC or target type change)
//	  not meshd's                  | conflict
//	recorded, no longer wanted     | - binding deleted; then - the annotation values meshd added removed
//	                               |   (the Service, NLB and target group are never deleted)
func (c *computer) loadBalancers() {
	in := c.in.LoadBalancers
	if in == nil {
		return
	}
	wanted := map[string]bool{}
	if !c.in.Destroy {
		for _, b := range in.Blocks {
			wanted[LBServiceAddress(b.Name)] = true
			for _, s := range b.Secondaries {
				wanted[BindingAddress(b.Name, s.Cluster)] = true
			}
			if !b.Skip {
				c.loadBalancer(b)
			}
		}
	}
	// Orphans: bindings first, then the annotations of their block, which wait for them.
	bindingDeletes := map[string][]string{} // by lb_service address
	for _, addr := range slices.Sorted(maps.Keys(c.in.State.LoadBalancers)) {
		rec := c.in.State.LoadBalancers[addr]
		if wanted[addr] || rec.Kind != "TargetGroupBinding" {
			continue
		}
		obs, observed := in.OrphanBindings[addr]
		switch {
		case !observed:
		case obs == nil || !model.OwnedBy(obs.Labels, c.in.Mesh):
			c.plan.ForgetLoadBalancers = append(c.plan.ForgetLoadBalancers, addr)
		default:
			lb, cluster := addressArgs(KindTargetGroupBinding, addr)
			b := TargetGroupBinding{LoadBalancer: lb, Cluster: cluster, KubeContext: rec.KubeContext,
				Namespace: rec.Namespace, Name: rec.Name, UID: obs.UID}
			c.add(Change{Action: Delete, Address: addr, Kind: KindTargetGroupBinding, Reason: c.goneReason(), Before: b})
			svc := LBServiceAddress(lb)
			bindingDeletes[svc] = append(bindingDeletes[svc], addr)
		}
	}
	for _, addr := range slices.Sorted(maps.Keys(c.in.State.LoadBalancers)) {
		rec := c.in.State.LoadBalancers[addr]
		if wanted[addr] || rec.Kind != "Service" {
			continue
		}
		obs, observed := in.OrphanServices[addr]
		switch {
		case !observed:
		case obs == nil:
			c.plan.ForgetLoadBalancers = append(c.plan.ForgetLoadBalancers, addr)
		default:
			before := observedLBService(addr, rec, *obs)
			before.RemoveMultiCluster = rec.AddedMultiCluster && before.MultiCluster
			before.RemoveDeletionProtection = rec.AddedDeletionProtection && before.DeletionProtection
			if !before.RemoveMultiCluster && !before.RemoveDeletionProtection {
				// Nothing of meshd's is left there (the user took them off, or had set them before meshd).
				c.plan.ForgetLoadBalancers = append(c.plan.ForgetLoadBalancers, addr)
				continue
			}
			c.add(Change{Action: Delete, Address: addr, Kind: KindLBService, Before: before, DependsOn: bindingDeletes[addr],
				Reason: c.goneReason() + ": the annotation values meshd added are removed (the Service, its NLB and target group stay)"})
		}
	}
}

func (c *computer) goneReason() string {
	if c.in.Destroy {
		return "destroy"
	}
	return "no longer in the spec"
}

func observedLBService(addr string, rec state.LoadBalancerRecord, obs LBServiceObserved) LBService {
	lb, _ := addressArgs(KindLBService, addr)
	attrs := obs.Annotations[AnnotationLBAttributes]
	dp, _ := AttributeValue(attrs, DeletionProtection)
	return LBService{LoadBalancer: lb, Cluster: rec.Cluster, KubeContext: rec.KubeContext, Namespace: rec.Namespace, Name: rec.Name,
		MultiCluster: obs.Annotations[AnnotationMultiClusterTargetGroup] == "true", DeletionProtection: dp == "true", Attributes: attrs}
}

func (c *computer) loadBalancer(b LoadBalancerBlock) {
	addr := LBServiceAddress(b.Name)
	rec, recorded := c.in.State.LoadBalancers[addr]
	if !recorded {
		rec = state.LoadBalancerRecord{Cluster: b.Primary, KubeContext: b.PrimaryContext, Kind: "Service", Namespace: b.Namespace, Name: b.Service}
	}
	before := observedLBService(addr, rec, b.Observed)
	before.TargetGroupARN = b.TargetGroupARN
	after := before
	after.KubeContext = b.PrimaryContext
	after.MultiCluster = true
	switch {
	case b.DeletionProtection:
		after.DeletionProtection = true
		after.Attributes = WithAttribute(before.Attributes, DeletionProtection, "true")
		if v, ok := AttributeValue(before.Attributes, DeletionProtection); ok && v == "true" {
			after.Attributes = before.Attributes // the user's spelling is kept
		}
	case rec.AddedDeletionProtection && before.DeletionProtection:
		after.DeletionProtection = false
		after.RemoveDeletionProtection = true
		after.Attributes = WithoutAttribute(before.Attributes, DeletionProtection)
	}
	var reasons []string
	if !before.MultiCluster {
		reasons = append(reasons, "the multi-cluster target group annotation is missing")
	}
	if after.Attributes != before.Attributes {
		if after.RemoveDeletionProtection {
			reasons = append(reasons, "deletion_protection = false: the deletion protection entry meshd added goes")
		} else {
			reasons = append(reasons, "the deletion protection entry is missing from the load balancer attributes")
		}
	}
	serviceChange := ""
	switch {
	case !recorded:
		reason := "annotate the Service for a multi-cluster target group"
		if len(reasons) == 0 {
			reason = "the Service already carries the annotations: recorded, so that meshd keeps them"
		}
		c.add(Change{Action: Create, Address: addr, Kind: KindLBService, Reason: reason, After: after})
		serviceChange = addr
	case len(reasons) > 0:
		c.add(Change{Action: Update, Address: addr, Kind: KindLBService, Reason: strings.Join(reasons, "; "), Before: before, After: after})
		serviceChange = addr
	}

	status := TargetGroupStatus{LoadBalancer: b.Name, ARN: b.TargetGroupARN}
	if b.TargetGroup != nil {
		status.Clusters = c.targetsByCluster(b.TargetGroup.Targets)
	}
	c.plan.TargetGroups = append(c.plan.TargetGroups, status)

	for _, s := range b.Secondaries {
		if !s.Skip {
			c.binding(b, s, serviceChange)
		}
	}
}

// targetsByCluster sorts a target group's targets by the member whose VPC CIDR holds them.
func (c *computer) targetsByCluster(targets []model.Target) []ClusterTargets {
	type block struct {
		cluster string
		prefix  netip.Prefix
	}
	var blocks []block // every member's CIDR blocks, in member order, parsed once
	for _, m := range c.in.Members {
		for _, cidr := range m.CIDRs {
			if p, err := netip.ParsePrefix(cidr); err == nil {
				blocks = append(blocks, block{m.Name, p})
			}
		}
	}
	by := map[string][]string{}
	for _, t := range targets {
		cluster := ""
		if ip, err := netip.ParseAddr(t.ID); err == nil {
			for _, b := range blocks {
				if b.prefix.Contains(ip) {
					cluster = b.cluster
					break
				}
			}
		}
		by[cluster] = append(by[cluster], fmt.Sprintf("%s:%d (%s)", t.ID, t.Port, t.State))
	}
	var out []ClusterTargets
	for _, cl := range slices.Sorted(maps.Keys(by)) {
		ts := by[cl]
		slices.Sort(ts)
		out = append(out, ClusterTargets{Cluster: cl, Targets: ts})
	}
	return out
}

func (c *computer) binding(b LoadBalancerBlock, s LoadBalancerSecondary, serviceChange string) {
	addr := BindingAddress(b.Name, s.Cluster)
	mem := c.plan.Members[s.Cluster]
	after := TargetGroupBinding{LoadBalancer: b.Name, Cluster: s.Cluster, KubeContext: s.KubeContext, Namespace: b.Namespace, Name: b.Name,
		TargetGroupARN: b.TargetGroupARN, PrimaryCluster: b.Primary, PrimaryContext: b.PrimaryContext, PrimaryRegion: b.Region,
		Region: mem.Region, VPCID: mem.VPCID,
		Service: b.Service, Port: b.Port, Target: b.TargetPort, Protocol: b.Protocol}
	if b.TargetGroup != nil {
		after.IngressFrom = IngressFrom(*b.TargetGroup, mem.Region)
	}
	var deps []string
	if serviceChange != "" {
		deps = []string{serviceChange}
	}
	if after.TargetGroupARN == "" {
		after.Pending = serviceChange
	}
	if after.TargetGroupARN != "" && b.TargetGroup == nil {
		// The ARN is known but AWS could not describe the group: the binding is made at apply, when the
		// executor describes it again.
		after.TargetGroupARN = ""
	}
	if s.Binding == nil {
		reason := "missing: LBC in " + s.Cluster + " registers its Pods in the primary's target group through it"
		if rec, ok := c.in.State.LoadBalancers[addr]; ok && rec == after.Record() {
			reason = "was deleted outside meshd"
		}
		c.add(Change{Action: Create, Address: addr, Kind: KindTargetGroupBinding, Reason: reason, After: after, DependsOn: deps})
		return
	}
	if !model.OwnedBy(s.Binding.Labels, c.in.Mesh) {
		c.plan.Conflicts = append(c.plan.Conflicts, Conflict{Address: addr,
			Summary: fmt.Sprintf("Cluster %s already has a TargetGroupBinding %s/%s that meshd did not create", s.Cluster, b.Namespace, b.Name),
			Detail: fmt.Sprintf("meshd wants to bind it to load_balancer %q's target group, but the object there does not carry meshd's labels (%s=%s, %s=%s), so it is left alone. Delete it yourself, or rename the load_balancer block.",
				b.Name, model.LabelManagedBy, model.ManagedByMeshd, model.LabelMesh, c.in.Mesh)})
		return
	}
	if rec, ok := c.in.State.LoadBalancers[addr]; !ok || rec != after.Record() {
		if c.plan.RecordLoadBalancers == nil {
			c.plan.RecordLoadBalancers = map[string]state.LoadBalancerRecord{}
		}
		c.plan.RecordLoadBalancers[addr] = after.Record()
	}
	after.UID = s.Binding.UID
	if after.TargetGroupARN == "" {
		// The primary's target group is being made (again): the binding is compared once it is known.
		return
	}
	want := kubeobj.Own(after.Object(), c.in.Mesh)
	diff := kubeobj.Diff(want, *s.Binding)
	if len(diff) == 0 {
		return
	}
	before := after
	before.TargetGroupARN, _ = nestedString(s.Binding.Content, "spec", "targetGroupARN")
	action, reason := Update, "the binding's "+strings.Join(diff, ", ")+" differ from the spec"
	if kubeobj.NeedsReplace(want, *s.Binding) {
		action, reason = Replace, "the binding's "+strings.Join(diff, ", ")+" cannot change in place (LBC's webhook refuses it)"
	}
	c.add(Change{Action: action, Address: addr, Kind: KindTargetGroupBinding, Reason: reason, Before: before, After: after, DependsOn: deps})
}

func nestedString(m map[string]any, path ...string) (string, bool) {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		cur = mm[p]
	}
	s, ok := cur.(string)
	return s, ok
}

package engine

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/providers/kube"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// lbKube is what load_balancer blocks need of the Kubernetes side (the kube provider).
type lbKube interface {
	ObserveLoadBalancer(ctx context.Context, q kube.LBQuery) kube.LBResult
	LBServiceAnnotations(ctx context.Context, rec state.LoadBalancerRecord) (*plan.LBServiceObserved, error)
}

// lbAWS is what they need of the AWS side (the AWS provider): the target group and its targets.
type lbAWS interface {
	TargetGroup(ctx context.Context, region, arn string) (model.TargetGroup, error)
}

// What AWS documents for IP targets outside the load balancer's VPC ("Target type" and "Register targets"
// in the Network Load Balancer guide), which the diagnostics quote.
const (
	awsIPTargetRanges = `"When the target type is ip, you can specify IP addresses from one of the following CIDR blocks: ` +
		`the subnets of the VPC for the target group, 10.0.0.0/8 (RFC 1918), 100.64.0.0/10 (RFC 6598), 172.16.0.0/12 (RFC 1918), ` +
		`192.168.0.0/16 (RFC 1918). You can't specify publicly routable IP addresses."`
	awsPeeredTargets = `"You can't register instances by instance ID if they are in a VPC that is peered to the load balancer VPC ` +
		`(same Region or different Region). You can register these instances by IP address."`
	awsUDPTargets = `"For UDP and TCP_UDP target groups, do not register instances by IP address if they reside outside of the ` +
		`load balancer VPC ... Targets that reside outside the load balancer VPC ... might be able to receive traffic from the ` +
		`load balancer but then be unable to respond."`
)

var ipTargetRanges = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16")}

// The load_balancer blocks are read in resolve: they need the members AWS resolved.
func init() {
	registerObserver(observer{name: "load balancers", order: 60, kinds: []plan.Kind{plan.KindLBService, plan.KindTargetGroupBinding},
		on: func(o *observation) bool { return o.e.loadBalancersOn(o.m, o.st) },
		resolve: func(o *observation, ctx context.Context) (diags hcl.Diagnostics, err error) {
			o.in.LoadBalancers, diags, err = o.e.observeLoadBalancerBlocks(ctx, o.v, o.m, o.st, o.in.Members, o.destroy)
			return diags, err
		}})
}

// loadBalancersOn reports whether the plan needs the load_balancer part.
func (e *Engine) loadBalancersOn(m *spec.Mesh, st *state.State) bool {
	return e.Kube != nil && (len(m.LoadBalancers) > 0 || len(st.LoadBalancers) > 0)
}

// observeLoadBalancerBlocks reads every load_balancer block (the primary's Service and LBC's binding, the
// target group in AWS, each secondary's CRD, Service and binding) and the recorded objects no block wants,
// blocks at the same time. Problems are diagnostics at the block; the block (or secondary) concerned is
// then left as it is. Errors stop meshctl; with PartialDNS (meshd) they are warnings. Only the orphan
// bindings go through the observation cache (kubeParts); the rest is read on every plan, scoped or not.
func (e *Engine) observeLoadBalancerBlocks(ctx context.Context, v *passView, m *spec.Mesh, st *state.State, members []model.Member, destroy bool) (*plan.LoadBalancerInput, hcl.Diagnostics, error) {
	lk, ok := e.Kube.(lbKube)
	if !ok {
		return nil, nil, fmt.Errorf("this engine's Kubernetes side cannot observe load balancers")
	}
	la, _ := e.AWS.(lbAWS)
	member := map[string]model.Member{}
	for _, mem := range members {
		member[mem.Name] = mem
	}
	sev := hcl.DiagError
	if e.PartialDNS {
		sev = hcl.DiagWarning
	}
	in := &plan.LoadBalancerInput{OrphanServices: map[string]*plan.LBServiceObserved{}, OrphanBindings: map[string]*kubeobj.Object{}}
	var diags hcl.Diagnostics
	var mu sync.Mutex
	var wg sync.WaitGroup
	wanted := map[string]bool{}
	if !destroy {
		blocks := make([]plan.LoadBalancerBlock, len(m.LoadBalancers))
		for i, lb := range m.LoadBalancers {
			wanted[plan.LBServiceAddress(lb.Name)] = true
			for _, s := range lb.SecondariesOf(m) {
				wanted[plan.BindingAddress(lb.Name, s)] = true
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				b, d := e.observeLoadBalancer(ctx, v, lk, la, m, lb, member, sev)
				mu.Lock()
				blocks[i] = b
				diags = append(diags, d...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		in.Blocks = blocks
	}
	var queries []kube.ObjectQuery
	bindingQuery := map[string]kube.ObjectQuery{}
	for _, addr := range slices.Sorted(maps.Keys(st.LoadBalancers)) {
		rec := st.LoadBalancers[addr]
		if wanted[addr] {
			continue
		}
		switch rec.Kind {
		case "Service":
			obs, err := lk.LBServiceAnnotations(ctx, rec)
			if err == nil {
				in.OrphanServices[addr] = obs // a Service that cannot be read is left alone
			}
		case "TargetGroupBinding":
			q := kube.ObjectQuery{Cluster: rec.Cluster, KubeContext: rec.KubeContext, Kind: rec.Kind, Namespace: rec.Namespace, Name: rec.Name}
			bindingQuery[addr] = q
			queries = append(queries, q)
		}
	}
	if len(queries) > 0 {
		results := e.observeObjects(ctx, v, queries)
		for addr, q := range bindingQuery {
			if res := results[q]; res.Err == nil {
				in.OrphanBindings[addr] = res.Object
			}
		}
	}
	return in, diags, nil
}

func (e *Engine) observeLoadBalancer(ctx context.Context, v *passView, lk lbKube, la lbAWS, m *spec.Mesh, lb *spec.LoadBalancer,
	member map[string]model.Member, sev hcl.DiagnosticSeverity) (plan.LoadBalancerBlock, hcl.Diagnostics) {
	primary := member[lb.Primary]
	b := plan.LoadBalancerBlock{Name: lb.Name, Primary: lb.Primary, Region: primary.Region, Namespace: lb.Namespace,
		Service: lb.Service, DeletionProtection: lb.DeletionProtection, PrimaryContext: kubeContextOf(m, lb.Primary)}
	q := kube.LBQuery{Primary: lb.Primary, PrimaryContext: b.PrimaryContext, Namespace: lb.Namespace, Service: lb.Service,
		Port: lb.Port, Binding: lb.Name}
	for _, s := range lb.SecondariesOf(m) {
		sq := kube.LBSecondaryQuery{Cluster: s, KubeContext: kubeContextOf(m, s)}
		q.Secondaries = append(q.Secondaries, sq)
		b.Secondaries = append(b.Secondaries, plan.LoadBalancerSecondary{Cluster: s, KubeContext: sq.KubeContext})
	}
	var diags hcl.Diagnostics
	report := func(rg hcl.Range, summary, format string, args ...any) {
		diags = append(diags, &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rg.Ptr()})
	}
	res := lk.ObserveLoadBalancer(ctx, q)
	svcName := lb.Namespace + "/" + lb.Service
	switch {
	case res.Err != nil:
		report(lb.AttrRange("primary"), "Cannot read a load balancer's Service", "load_balancer %q: %v. Its objects are left as they are.", lb.Name, res.Err)
	case res.ServiceMissing:
		report(lb.AttrRange("service"), "Load balancer Service missing",
			"load_balancer %q: cluster %q has no Service %s. meshd never creates it: deploy your Service of type LoadBalancer there, and the AWS Load Balancer Controller makes its NLB.",
			lb.Name, lb.Primary, svcName)
	case res.ServiceType != "LoadBalancer":
		report(lb.AttrRange("service"), "Not a LoadBalancer Service",
			"load_balancer %q: Service %s in cluster %q is of type %s; the AWS Load Balancer Controller makes a target group only for type LoadBalancer.",
			lb.Name, svcName, lb.Primary, res.ServiceType)
	case res.PortProblem != "":
		report(lb.AttrRange("port"), "Cannot choose the Service port", "load_balancer %q: Service %s in cluster %q: %s.", lb.Name, svcName, lb.Primary, res.PortProblem)
	case res.Protocol != "TCP":
		report(lb.AttrRange("service"), "IP targets outside the load balancer's VPC need TCP",
			"load_balancer %q: Service %s's port %d is %s. The secondaries' Pods are IP targets outside the load balancer's VPC, and AWS says: %s",
			lb.Name, svcName, res.Port, res.Protocol, awsUDPTargets)
	}
	if len(diags) > 0 {
		b.Skip = true
		return b, diags
	}
	b.Observed = plan.LBServiceObserved{Annotations: res.Annotations}
	b.Port, b.TargetPort, b.Protocol, b.TargetGroupARN = res.Port, res.TargetPort, res.Protocol, res.TargetGroupARN
	if b.TargetGroupARN != "" && la != nil {
		// AWS, so reused with the rest of AWS by a watch-triggered pass (obsCache); a new ARN is a new key.
		tg, err := awsPart(v, "tg/"+b.Region+"/"+b.TargetGroupARN, func() (model.TargetGroup, error) {
			return la.TargetGroup(ctx, b.Region, b.TargetGroupARN)
		})
		if err != nil {
			report(lb.DeclRange, "Cannot describe the target group", "load_balancer %q: %v. Its objects are left as they are.", lb.Name, err)
			b.Skip = true
			return b, diags
		}
		if tg.TargetType != "" && tg.TargetType != "ip" {
			report(lb.AttrRange("service"), "Target group registers instances",
				"load_balancer %q: target group %s is of type %s. Pods of other clusters can join only an ip target group: AWS says %s Set service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip on the Service.",
				lb.Name, tg.ARN, tg.TargetType, awsPeeredTargets)
			b.Skip = true
			return b, diags
		}
		b.TargetGroup = &tg
	}
	for i, s := range b.Secondaries {
		sr := res.Secondaries[s.Cluster]
		rg := lb.AttrRange("secondaries")
		if j := slices.Index(lb.Secondaries, s.Cluster); j >= 0 {
			rg = lb.ElemRange("secondaries", j)
		}
		mem, isMember := member[s.Cluster]
		switch {
		case !isMember:
			report(rg, "Secondary not a peered member",
				"load_balancer %q: %q is not a member meshd resolved, so its VPC is not peered with the primary's. AWS registers Pods of a peered VPC only by IP address: %s",
				lb.Name, s.Cluster, awsPeeredTargets)
		case sr.Err != nil:
			report(rg, "Cannot read a load balancer secondary", "load_balancer %q: %v. Its binding there is left as it is.", lb.Name, sr.Err)
		case sr.CRD == "missing":
			report(rg, "AWS Load Balancer Controller missing",
				"load_balancer %q: cluster %q has no TargetGroupBinding CRD (%s). Install the AWS Load Balancer Controller v2.10 or later there: its controller registers that cluster's Pods.",
				lb.Name, s.Cluster, kube.TargetGroupBindingCRD)
		case sr.CRD == "old":
			report(rg, "AWS Load Balancer Controller too old",
				"load_balancer %q: the TargetGroupBinding CRD in cluster %q has no multiClusterTargetGroup field, so its AWS Load Balancer Controller is older than v2.10 and would deregister the other clusters' targets. Upgrade it (and its CRDs) to v2.10 or later.",
				lb.Name, s.Cluster)
		case sr.ServiceMissing:
			report(rg, "Secondary Service missing",
				"load_balancer %q: cluster %q has no Service %s. Deploy it there (type ClusterIP is enough) with the selector of the Pods to register: the binding names it, and LBC registers its Ready endpoints.",
				lb.Name, s.Cluster, svcName)
		case mem.VPCID != primary.VPCID && !privateCIDRs(mem.CIDRs):
			report(rg, "Secondary's Pods cannot be IP targets",
				"load_balancer %q: cluster %q's VPC CIDR blocks %v are outside the private ranges AWS allows for IP targets outside the load balancer's VPC: %s",
				lb.Name, s.Cluster, mem.CIDRs, awsIPTargetRanges)
		default:
			b.Secondaries[i].Binding = sr.Binding
			continue
		}
		b.Secondaries[i].Skip = true
	}
	return b, diags
}

// privateCIDRs reports whether every block is within the ranges AWS allows for IP targets outside the load
// balancer's VPC.
func privateCIDRs(cidrs []string) bool {
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil || !slices.ContainsFunc(ipTargetRanges, func(r netip.Prefix) bool { return r.Bits() <= p.Bits() && r.Contains(p.Addr()) }) {
			return false
		}
	}
	return true
}

package plan_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/planview"
	"github.com/meshd-io/meshd/internal/state"
)

const lbARN = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/k8s-default-nginx-0a1b2c3d4e/50dc6c495c0c9188"

var lbMembers = []model.Member{
	{Name: "pri", Region: "us-west-2", VPCID: "vpc-0a", CIDRs: []string{"10.1.0.0/16"}},
	{Name: "sec", Region: "us-west-2", VPCID: "vpc-0b", CIDRs: []string{"10.2.0.0/16"}},
}

// lbBlock is load_balancer "nginx" with primary pri and secondary sec, observed with the given Service
// annotations and secondary binding; arn "" is a primary binding that is not multi-cluster yet.
func lbBlock(annotations map[string]string, arn string, binding *kubeobj.Object) plan.LoadBalancerBlock {
	b := plan.LoadBalancerBlock{Name: "nginx", Primary: "pri", PrimaryContext: "ctx-pri", Region: "us-west-2",
		Namespace: "default", Service: "nginx", DeletionProtection: true,
		Observed: plan.LBServiceObserved{Annotations: annotations}, TargetGroupARN: arn,
		Port: 80, TargetPort: "8080", Protocol: "TCP",
		Secondaries: []plan.LoadBalancerSecondary{{Cluster: "sec", KubeContext: "ctx-sec", Binding: binding}}}
	if arn != "" {
		b.TargetGroup = &model.TargetGroup{ARN: arn, Region: "us-west-2", SecurityGroups: []string{"sg-0lb"},
			Targets: []model.Target{{ID: "10.1.1.5", Port: 8080, State: "healthy"}, {ID: "10.2.1.5", Port: 8080, State: "healthy"}}}
	}
	return b
}

func lbState(added bool) *state.State {
	st := state.New("m")
	st.SetLoadBalancer(plan.LBServiceAddress("nginx"), state.LoadBalancerRecord{Cluster: "pri", KubeContext: "ctx-pri", Kind: "Service",
		Namespace: "default", Name: "nginx", AddedMultiCluster: added, AddedDeletionProtection: added})
	st.SetLoadBalancer(plan.BindingAddress("nginx", "sec"), state.LoadBalancerRecord{Cluster: "sec", KubeContext: "ctx-sec",
		Kind: "TargetGroupBinding", Namespace: "default", Name: "nginx"})
	return st
}

// ownedBinding is the binding meshd writes for the converged block.
func ownedBinding(t *testing.T) *kubeobj.Object {
	t.Helper()
	p := plan.Compute(plan.Input{Mesh: "m", Members: lbMembers, Observed: model.NewObserved(), State: state.New("m"),
		LoadBalancers: &plan.LoadBalancerInput{Blocks: []plan.LoadBalancerBlock{lbBlock(nil, lbARN, nil)}}})
	ch := p.Find(plan.BindingAddress("nginx", "sec"))
	if ch == nil {
		t.Fatal("no binding created")
	}
	o := kubeobj.Own(ch.After.(plan.TargetGroupBinding).Object(), "m")
	o.UID = "uid-1"
	return &o
}

func summary(p *plan.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		if c.Kind != plan.KindLBService && c.Kind != plan.KindTargetGroupBinding {
			continue // the mesh's own peering and rules
		}
		out = append(out, string(c.Action)+" "+c.Address+" <- "+strings.Join(c.DependsOn, ","))
	}
	for _, c := range p.Conflicts {
		out = append(out, "conflict "+c.Address)
	}
	return out
}

func TestLoadBalancerPlans(t *testing.T) {
	converged := map[string]string{plan.AnnotationMultiClusterTargetGroup: "true",
		plan.AnnotationLBAttributes: "load_balancing.cross_zone.enabled=true,deletion_protection.enabled=true"}
	foreign := ownedBinding(t)
	foreign.Labels = map[string]string{"app": "mine"}
	edited := ownedBinding(t)
	edited.Content["spec"].(map[string]any)["serviceRef"] = map[string]any{"name": "nginx", "port": int64(81)}
	svc, tgb := plan.LBServiceAddress("nginx"), plan.BindingAddress("nginx", "sec")

	cases := map[string]struct {
		reason string
		st     *state.State
		in     plan.LoadBalancerInput
		want   []string
	}{
		"first plan": {
			reason: "the Service is annotated first; the binding waits for it, its ARN known after apply",
			st:     state.New("m"),
			in: plan.LoadBalancerInput{Blocks: []plan.LoadBalancerBlock{lbBlock(
				map[string]string{plan.AnnotationLBAttributes: "load_balancing.cross_zone.enabled=true"}, "", nil)}},
			want: []string{"+ " + svc + " <- ", "+ " + tgb + " <- " + svc},
		},
		"converged": {
			reason: "a second plan is empty",
			st:     lbState(true),
			in:     plan.LoadBalancerInput{Blocks: []plan.LoadBalancerBlock{lbBlock(converged, lbARN, ownedBinding(t))}},
		},
		"annotation removed": {
			reason: "the annotation removed from the primary is restored",
			st:     lbState(true),
			in: plan.LoadBalancerInput{Blocks: []plan.LoadBalancerBlock{lbBlock(
				map[string]string{plan.AnnotationLBAttributes: converged[plan.AnnotationLBAttributes]}, lbARN, ownedBinding(t))}},
			want: []string{"~ " + svc + " <- "},
		},
		"binding deleted": {
			reason: "a secondary's binding deleted is made again",
			st:     lbState(true),
			in:     plan.LoadBalancerInput{Blocks: []plan.LoadBalancerBlock{lbBlock(converged, lbARN, nil)}},
			want:   []string{"+ " + tgb + " <- "},
		},
		"binding edited": {
			reason: "a secondary's binding edited is set back",
			st:     lbState(true),
			in:     plan.LoadBalancerInput{Blocks: []plan.LoadBalancerBlock{lbBlock(converged, lbARN, edited)}},
			want:   []string{"~ " + tgb + " <- "},
		},
		"foreign binding": {
			reason: "a binding of that name meshd did not make is a conflict, left alone",
			st:     state.New("m"),
			in:     plan.LoadBalancerInput{Blocks: []plan.LoadBalancerBlock{lbBlock(converged, lbARN, foreign)}},
			want:   []string{"+ " + svc + " <- ", "conflict " + tgb},
		},
		"block removed": {
			reason: "the binding goes first, then the annotation values meshd added",
			st:     lbState(true),
			in: plan.LoadBalancerInput{OrphanServices: map[string]*plan.LBServiceObserved{svc: {Annotations: converged}},
				OrphanBindings: map[string]*kubeobj.Object{tgb: ownedBinding(t)}},
			want: []string{"- " + tgb + " <- ", "- " + svc + " <- " + tgb},
		},
		"block removed, annotations the user's": {
			reason: "annotations meshd found there are not meshd's to remove: only the binding goes",
			st:     lbState(false),
			in: plan.LoadBalancerInput{OrphanServices: map[string]*plan.LBServiceObserved{svc: {Annotations: converged}},
				OrphanBindings: map[string]*kubeobj.Object{tgb: ownedBinding(t)}},
			want: []string{"- " + tgb + " <- "},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := tc.in
			p := plan.Compute(plan.Input{Mesh: "m", Members: lbMembers, Observed: model.NewObserved(), State: tc.st, LoadBalancers: &in})
			if diff := cmp.Diff(tc.want, summary(p)); diff != "" {
				t.Errorf("%s\nplan (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// TestLoadBalancerFirstPlanShows: the Service keeps the user's attributes; the binding names the
// secondary's VPC and shows what is known after apply; the target group section says it is not known yet.
func TestLoadBalancerFirstPlanShows(t *testing.T) {
	in := plan.LoadBalancerInput{Blocks: []plan.LoadBalancerBlock{lbBlock(
		map[string]string{plan.AnnotationLBAttributes: "load_balancing.cross_zone.enabled=true"}, "", nil)}}
	p := plan.Compute(plan.Input{Mesh: "m", Members: lbMembers, Observed: model.NewObserved(), State: state.New("m"), LoadBalancers: &in})
	svc := p.Find(plan.LBServiceAddress("nginx")).After.(plan.LBService)
	if want := "load_balancing.cross_zone.enabled=true,deletion_protection.enabled=true"; svc.Attributes != want {
		t.Errorf("attributes %q, want %q", svc.Attributes, want)
	}
	var out bytes.Buffer
	if err := planview.RenderHuman(&out, p); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"vpc_id", "vpc-0b", "(known after apply)", `Target group of load_balancer "nginx": (known after apply`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, out.String())
		}
	}
}

// TestLoadBalancerTargetsByCluster: the plan shows each cluster's registered targets.
func TestLoadBalancerTargetsByCluster(t *testing.T) {
	in := plan.LoadBalancerInput{Blocks: []plan.LoadBalancerBlock{lbBlock(nil, lbARN, nil)}}
	p := plan.Compute(plan.Input{Mesh: "m", Members: lbMembers, Observed: model.NewObserved(), State: state.New("m"), LoadBalancers: &in})
	want := []plan.TargetGroupStatus{{LoadBalancer: "nginx", ARN: lbARN, Clusters: []plan.ClusterTargets{
		{Cluster: "pri", Targets: []string{"10.1.1.5:8080 (healthy)"}},
		{Cluster: "sec", Targets: []string{"10.2.1.5:8080 (healthy)"}},
	}}}
	if diff := cmp.Diff(want, p.TargetGroups); diff != "" {
		t.Errorf("target groups (-want +got):\n%s", diff)
	}
	b := p.Find(plan.BindingAddress("nginx", "sec")).After.(plan.TargetGroupBinding)
	if diff := cmp.Diff([]string{"sg-0lb"}, b.IngressFrom); diff != "" {
		t.Errorf("ingress from the load balancer's security group (-want +got):\n%s", diff)
	}
}

func TestAttributes(t *testing.T) {
	for _, tc := range []struct{ in, with, without string }{
		{"", "deletion_protection.enabled=true", ""},
		{"a=1", "a=1,deletion_protection.enabled=true", "a=1"},
		{"a=1, deletion_protection.enabled=false ,b=2", "a=1,deletion_protection.enabled=true,b=2", "a=1,b=2"},
	} {
		if got := plan.WithAttribute(tc.in, plan.DeletionProtection, "true"); got != tc.with {
			t.Errorf("WithAttribute(%q) = %q, want %q", tc.in, got, tc.with)
		}
		if got := plan.WithoutAttribute(tc.in, plan.DeletionProtection); got != tc.without {
			t.Errorf("WithoutAttribute(%q) = %q, want %q", tc.in, got, tc.without)
		}
	}
}

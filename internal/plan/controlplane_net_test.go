package plan_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/planview"
	"github.com/meshd-io/meshd/internal/state"
)

// Members for the control-plane network tests: control plane a (two CIDR blocks), data plane b whose EKS
// cluster security group sg-cb is not its node group sg-b, data plane c whose node group is the cluster
// security group.
func cpNetMembers() []model.Member {
	return []model.Member{
		{Name: "a", Region: "eu-west-1", VPCID: "vpc-a", CIDRs: []string{"10.0.0.0/16", "10.100.0.0/16"}, SecurityGroupID: "sg-a"},
		{Name: "b", Region: "eu-west-1", VPCID: "vpc-b", CIDRs: []string{"10.1.0.0/16"}, SecurityGroupID: "sg-b", ClusterSecurityGroupID: "sg-cb"},
		{Name: "c", Region: "eu-west-1", VPCID: "vpc-c", CIDRs: []string{"10.2.0.0/16"}, SecurityGroupID: "sg-c"},
	}
}

// computeNet plans control plane kb (in a) with data planes b and c, of which those named in private are
// reached privately.
func computeNet(t *testing.T, obs *model.Observed, destroy bool, private ...string) *plan.Plan {
	in := cpInput(t0, appliedSecret(t, "b", "c"), dataPlane("b", account("b")), dataPlane("c", account("c")))
	for _, dp := range private {
		in.PrivateAPIs = append(in.PrivateAPIs, plan.PrivateAPI{ControlPlane: "kb", Cluster: "a", DataPlane: dp})
	}
	return plan.Compute(plan.Input{Mesh: "tidb", Members: cpNetMembers(), Observed: obs, State: state.New("tidb"), Destroy: destroy,
		ControlPlanes: in})
}

// apiRuleChanges are the plan's sg_rule changes on sg-cb, by address.
func apiRuleChanges(p *plan.Plan) map[string]plan.Change {
	out := map[string]plan.Change{}
	for _, ch := range p.Changes {
		if ch.Kind == plan.KindSGRule && strings.Contains(ch.Address, ":sg-cb:") {
			out[ch.Address] = ch
		}
	}
	return out
}

func TestControlPlaneOpensPrivateAPIEndpoint(t *testing.T) {
	p := computeNet(t, model.NewObserved(), false, "b", "c")
	got := apiRuleChanges(p)
	if len(got) != 2 {
		t.Fatalf("want a rule on sg-cb from each of a's 2 CIDR blocks, got %v", got)
	}
	for _, cidr := range []string{"10.0.0.0/16", "10.100.0.0/16"} {
		ch, ok := got[plan.RuleAddress("b", "sg-cb", cidr)]
		if !ok || ch.Action != plan.Create {
			t.Fatalf("no create of the 443 rule from %s: %v", cidr, got)
		}
		r := ch.After.(plan.SGRule)
		if r.Protocol != "tcp" || r.FromPort != 443 || r.ToPort != 443 || !strings.Contains(r.Description, "control_plane kb") {
			t.Errorf("rule from %s: %+v", cidr, r)
		}
		var text bytes.Buffer
		if err := planview.RenderHuman(&text, p); err != nil || !strings.Contains(text.String(), "tcp/443") {
			t.Errorf("the plan does not show the port (%v):\n%s", err, text.String())
		}
	}
	// c's node group is its cluster security group: the mesh's all-protocols rules from a already cover it.
	for _, ch := range p.Changes {
		if ch.Kind == plan.KindSGRule && strings.Contains(ch.Address, ":sg-c:") && ch.After.(plan.SGRule).Protocol != "-1" {
			t.Errorf("a second rule on c's group: %s", ch.Address)
		}
	}
}

func TestControlPlaneAPIRuleLifecycle(t *testing.T) {
	tags := map[string]string{model.TagMesh: "tidb"}
	obs := model.NewObserved()
	for i, cidr := range []string{"10.0.0.0/16", "10.100.0.0/16"} {
		obs.Rules["sg-cb"] = append(obs.Rules["sg-cb"], model.SecurityGroupRule{ID: "sgr-" + string(rune('0'+i)), GroupID: "sg-cb",
			Protocol: "tcp", FromPort: 443, ToPort: 443, CIDR: cidr, Tags: tags})
	}
	if got := apiRuleChanges(computeNet(t, obs, false, "b")); len(got) != 0 {
		t.Errorf("rules in place, yet: %v", got)
	}
	// The endpoint no longer private (or b no longer a data plane): meshd's rules go.
	for name, p := range map[string]*plan.Plan{
		"not private": computeNet(t, obs, false),
		"destroy":     computeNet(t, obs, true, "b"),
	} {
		got := apiRuleChanges(p)
		if len(got) != 2 {
			t.Fatalf("%s: want both rules deleted, got %v", name, got)
		}
		for addr, ch := range got {
			if ch.Action != plan.Delete || ch.Before.(plan.SGRule).FromPort != 443 {
				t.Errorf("%s: %s: %s %+v", name, addr, ch.Action, ch.Before)
			}
		}
	}
}

func TestControlPlaneAPIRuleLeavesOthersAlone(t *testing.T) {
	obs := model.NewObserved()
	// Someone's rule opens every TCP port from a's primary block; a rule from a's second block on port 80
	// allows nothing meshd needs.
	obs.Rules["sg-cb"] = []model.SecurityGroupRule{
		{ID: "sgr-wide", GroupID: "sg-cb", Protocol: "tcp", FromPort: 0, ToPort: 65535, CIDR: "10.0.0.0/16"},
		{ID: "sgr-80", GroupID: "sg-cb", Protocol: "tcp", FromPort: 80, ToPort: 80, CIDR: "10.100.0.0/16"},
	}
	got := apiRuleChanges(computeNet(t, obs, false, "b"))
	if ch := got[plan.RuleAddress("b", "sg-cb", "10.0.0.0/16")]; ch.Action != plan.Keep || !strings.Contains(ch.Reason, "sgr-wide") {
		t.Errorf("10.0.0.0/16: want kept as allowed by sgr-wide, got %s %q", ch.Action, ch.Reason)
	}
	if ch := got[plan.RuleAddress("b", "sg-cb", "10.100.0.0/16")]; ch.Action != plan.Create {
		t.Errorf("10.100.0.0/16: port 80 is not 443, want create, got %s %q", ch.Action, ch.Reason)
	}
	for _, ch := range got {
		if ch.Action == plan.Delete {
			t.Errorf("deletes a rule it did not create: %s", ch.Address)
		}
	}
}

// A block left alone this time (an object of it unreadable in meshd) keeps its network: the engine still
// reports its private endpoints, and the rule in place stays.
func TestControlPlaneLeftAloneKeepsAPIRule(t *testing.T) {
	obs := model.NewObserved()
	obs.Rules["sg-cb"] = []model.SecurityGroupRule{{ID: "sgr-1", GroupID: "sg-cb", Protocol: "tcp", FromPort: 443, ToPort: 443,
		CIDR: "10.0.0.0/16", Tags: map[string]string{model.TagMesh: "tidb"}}}
	in := &plan.ControlPlaneInput{Now: t0, LeftAlone: map[string]bool{plan.KubeconfigAddress("kb"): true},
		PrivateAPIs: []plan.PrivateAPI{{ControlPlane: "kb", Cluster: "a", DataPlane: "b"}}}
	p := plan.Compute(plan.Input{Mesh: "tidb", Members: cpNetMembers(), Observed: obs, State: state.New("tidb"), ControlPlanes: in})
	got := apiRuleChanges(p)
	if ch, ok := got[plan.RuleAddress("b", "sg-cb", "10.0.0.0/16")]; ok {
		t.Errorf("the rule in place changes: %s %q", ch.Action, ch.Reason)
	}
	if ch := got[plan.RuleAddress("b", "sg-cb", "10.100.0.0/16")]; ch.Action != plan.Create {
		t.Errorf("the missing rule from a's second block: %s", ch.Action)
	}
}

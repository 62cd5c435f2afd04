package aws_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
)

// TestDeleteRefusesWhatIsNoLongerMeshds: deleting a peering or revoking a security-group rule checks
// meshd's tag at apply time, as a route delete checks its target. A peering or rule untagged since the
// plan, tagged for another mesh, or named by an edited saved plan (someone else's object) is left alone
// and the change fails with ErrConflict and "plan again"; one still tagged is deleted, and one already
// gone is no error.
func TestDeleteRefusesWhatIsNoLongerMeshds(t *testing.T) {
	moto := testenv.StartMoto(t)
	moto.SetEnv(t)
	ctx := context.Background()
	const region = "us-west-1"
	cfg := moto.AWSConfig(region)
	raw := ec2.NewFromConfig(cfg)
	a, err := sandbox.CreateNetwork(ctx, cfg, sandbox.ClusterNet{Name: "a", Region: region, CIDR: "10.1.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := sandbox.CreateNetwork(ctx, cfg, sandbox.ClusterNet{Name: "b", Region: region, CIDR: "10.2.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := awsprovider.New(ctx, awsprovider.Options{Mesh: "m", PollInterval: 20 * time.Millisecond, WaitTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	exec := p.Executors()

	// What meshd creates: a peering and a rule, through the executors (tagged in the create call).
	peering := plan.Peering{Requester: plan.Endpoint{Cluster: "a", VPCID: a.VPCID, Region: region},
		Accepter: plan.Endpoint{Cluster: "b", VPCID: b.VPCID, Region: region}}
	peeringAddr := plan.PeeringAddress("a", "b")
	out, err := exec[plan.KindPeering].Execute(ctx, plan.Change{Kind: plan.KindPeering, Action: plan.Create, Address: peeringAddr, After: peering}, nil)
	if err != nil {
		t.Fatalf("creating the peering: %v", err)
	}
	peering.ID = out.ID
	rule := plan.SGRule{Cluster: "a", Region: region, GroupID: a.SecurityGroupID, CIDR: "10.2.0.0/16", Protocol: "-1", Description: "meshd test"}
	ruleAddr := "sg_rule[a:" + a.SecurityGroupID + ":10.2.0.0/16]"
	out, err = exec[plan.KindSGRule].Execute(ctx, plan.Change{Kind: plan.KindSGRule, Action: plan.Create, Address: ruleAddr, After: rule}, nil)
	if err != nil || out.ID == "" {
		t.Fatalf("creating the rule: id %q, %v", out.ID, err)
	}
	rule.RuleID = out.ID

	// What someone else made by hand: an untagged rule on the same group (the peering is the one above,
	// its tag removed for that case).
	foreign, err := raw.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(a.SecurityGroupID),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("192.168.0.0/16")}}}}})
	if err != nil || len(foreign.SecurityGroupRules) == 0 {
		t.Fatalf("creating a foreign rule: %v", err)
	}
	foreignRule := rule
	foreignRule.RuleID = aws.ToString(foreign.SecurityGroupRules[0].SecurityGroupRuleId)

	setMesh := func(id, mesh string) {
		t.Helper()
		if mesh == "" {
			_, err = raw.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String(model.TagMesh)}}})
		} else {
			_, err = raw.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String(model.TagMesh), Value: aws.String(mesh)}}})
		}
		if err != nil {
			t.Fatalf("retagging %s: %v", id, err)
		}
	}
	peeringExists := func() bool {
		t.Helper()
		res, err := raw.DescribeVpcPeeringConnections(ctx, &ec2.DescribeVpcPeeringConnectionsInput{VpcPeeringConnectionIds: []string{peering.ID}})
		if err != nil {
			t.Fatal(err)
		}
		for _, pc := range res.VpcPeeringConnections {
			if aws.ToString(pc.VpcPeeringConnectionId) == peering.ID && pc.Status != nil &&
				!(model.ObservedPeering{Status: string(pc.Status.Code)}).Gone() {
				return true
			}
		}
		return false
	}
	ruleExists := func(id string) bool {
		t.Helper()
		res, err := raw.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
			Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{a.SecurityGroupID}}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.SecurityGroupRules {
			if aws.ToString(r.SecurityGroupRuleId) == id {
				return true
			}
		}
		return false
	}
	deletePeering := func() error {
		_, err := exec[plan.KindPeering].Execute(ctx, plan.Change{Kind: plan.KindPeering, Action: plan.Delete, Address: peeringAddr, Before: peering}, nil)
		return err
	}
	deleteRule := func(r plan.SGRule) error {
		_, err := exec[plan.KindSGRule].Execute(ctx, plan.Change{Kind: plan.KindSGRule, Action: plan.Delete, Address: ruleAddr, Before: r}, nil)
		return err
	}
	refused := func(what string, err error, exists bool) {
		t.Helper()
		if err == nil || !errors.Is(err, awsprovider.ErrConflict) || !strings.Contains(err.Error(), "plan again") {
			t.Errorf("%s: err %v, want a conflict saying to plan again", what, err)
		}
		if !exists {
			t.Errorf("%s: deleted anyway", what)
		}
	}

	cases := []struct {
		name  string
		setup func()
		run   func() error
		check func() bool
	}{
		{"peering untagged since the plan", func() { setMesh(peering.ID, "") }, deletePeering, peeringExists},
		{"peering tagged for another mesh", func() { setMesh(peering.ID, "other") }, deletePeering, peeringExists},
		{"rule untagged since the plan", func() { setMesh(rule.RuleID, "") }, func() error { return deleteRule(rule) }, func() bool { return ruleExists(rule.RuleID) }},
		{"rule tagged for another mesh", func() { setMesh(rule.RuleID, "other") }, func() error { return deleteRule(rule) }, func() bool { return ruleExists(rule.RuleID) }},
		{"edited saved plan naming a foreign rule", func() {}, func() error { return deleteRule(foreignRule) }, func() bool { return ruleExists(foreignRule.RuleID) }},
	}
	for _, tc := range cases {
		tc.setup()
		refused(tc.name, tc.run(), tc.check())
	}

	// Tagged as this mesh's again: deleted; deleted again: nothing to do.
	setMesh(peering.ID, "m")
	setMesh(rule.RuleID, "m")
	if err := deleteRule(rule); err != nil {
		t.Fatalf("revoking meshd's rule: %v", err)
	}
	if ruleExists(rule.RuleID) {
		t.Error("meshd's rule is still there after its delete")
	}
	if err := deleteRule(rule); err != nil {
		t.Errorf("revoking a rule that is gone: %v", err)
	}
	if err := deletePeering(); err != nil {
		t.Fatalf("deleting meshd's peering: %v", err)
	}
	if peeringExists() {
		t.Error("meshd's peering is still there after its delete")
	}
	if err := deletePeering(); err != nil {
		t.Errorf("deleting a peering that is gone: %v", err)
	}
}

package aws_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/plan"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/state"
	"github.com/meshd-io/meshd/internal/testenv"
)

// racingEC2 is moto's EC2 with someone else deleting first: while race is set, each delete meshd sends is
// preceded by the same delete made by another client, so that the object meshd's check just saw is gone
// when meshd's own call arrives (the window between the check at apply time and the delete).
//
// For peerings it answers as AWS does where moto does not: moto lists every peering whatever IDs are asked
// for and deletes a deleted peering again without complaint, where AWS answers
// InvalidVpcPeeringConnectionID.NotFound for an ID it does not know and for a peering that is gone.
type racingEC2 struct {
	awsprovider.EC2API
	other *ec2.Client
	race  atomic.Bool
}

var errPeeringNotFound = &smithy.GenericAPIError{Code: "InvalidVpcPeeringConnectionID.NotFound", Message: "The vpcPeeringConnection ID does not exist"}

func (c *racingEC2) DescribeVpcPeeringConnections(ctx context.Context, in *ec2.DescribeVpcPeeringConnectionsInput, opts ...func(*ec2.Options)) (*ec2.DescribeVpcPeeringConnectionsOutput, error) {
	out, err := c.EC2API.DescribeVpcPeeringConnections(ctx, in, opts...)
	if err != nil || len(in.VpcPeeringConnectionIds) == 0 {
		return out, err
	}
	for _, pc := range out.VpcPeeringConnections {
		if slices.Contains(in.VpcPeeringConnectionIds, aws.ToString(pc.VpcPeeringConnectionId)) {
			return out, nil
		}
	}
	return nil, errPeeringNotFound
}

func (c *racingEC2) DeleteRoute(ctx context.Context, in *ec2.DeleteRouteInput, opts ...func(*ec2.Options)) (*ec2.DeleteRouteOutput, error) {
	if c.race.Load() {
		if _, err := c.other.DeleteRoute(ctx, in); err != nil {
			return nil, err
		}
	}
	return c.EC2API.DeleteRoute(ctx, in, opts...)
}

func (c *racingEC2) DeleteVpcPeeringConnection(ctx context.Context, in *ec2.DeleteVpcPeeringConnectionInput, opts ...func(*ec2.Options)) (*ec2.DeleteVpcPeeringConnectionOutput, error) {
	if c.race.Load() {
		if _, err := c.other.DeleteVpcPeeringConnection(ctx, in); err != nil {
			return nil, err
		}
		return nil, errPeeringNotFound
	}
	return c.EC2API.DeleteVpcPeeringConnection(ctx, in, opts...)
}

func (c *racingEC2) RevokeSecurityGroupIngress(ctx context.Context, in *ec2.RevokeSecurityGroupIngressInput, opts ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error) {
	if c.race.Load() {
		if _, err := c.other.RevokeSecurityGroupIngress(ctx, in); err != nil {
			return nil, err
		}
	}
	return c.EC2API.RevokeSecurityGroupIngress(ctx, in, opts...)
}

// deleteEnv is two networks in one region of a fresh moto, meshd's executors on a racingEC2 over it, and a
// peering between the two made by the executor.
type deleteEnv struct {
	t       *testing.T
	ctx     context.Context
	raw     *ec2.Client
	ec2     *racingEC2
	exec    map[plan.Kind]apply.Executor
	a, b    sandbox.Network
	peering plan.Peering
}

const deleteRegion = "us-west-1"

func newDeleteEnv(t *testing.T) *deleteEnv {
	t.Helper()
	moto := testenv.StartMoto(t)
	moto.SetEnv(t)
	ctx := context.Background()
	cfg := moto.AWSConfig(deleteRegion)
	e := &deleteEnv{t: t, ctx: ctx, raw: ec2.NewFromConfig(cfg)}
	e.ec2 = &racingEC2{EC2API: ec2.NewFromConfig(cfg), other: ec2.NewFromConfig(cfg)}
	var err error
	if e.a, err = sandbox.CreateNetwork(ctx, cfg, sandbox.ClusterNet{Name: "a", Region: deleteRegion, CIDR: "10.1.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	if e.b, err = sandbox.CreateNetwork(ctx, cfg, sandbox.ClusterNet{Name: "b", Region: deleteRegion, CIDR: "10.2.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	p, err := awsprovider.New(ctx, awsprovider.Options{Mesh: "m", PollInterval: 20 * time.Millisecond, WaitTimeout: time.Minute,
		Clients: func(string) (awsprovider.EC2API, awsprovider.EKSAPI) { return e.ec2, nil }})
	if err != nil {
		t.Fatal(err)
	}
	e.exec = p.Executors()
	e.peering = plan.Peering{Requester: plan.Endpoint{Cluster: "a", VPCID: e.a.VPCID, Region: deleteRegion},
		Accepter: plan.Endpoint{Cluster: "b", VPCID: e.b.VPCID, Region: deleteRegion}}
	out, err := e.run(plan.KindPeering, plan.Create, plan.PeeringAddress("a", "b"), nil, e.peering)
	if err != nil {
		t.Fatalf("creating the peering: %v", err)
	}
	e.peering.ID = out.ID
	return e
}

func (e *deleteEnv) run(kind plan.Kind, action plan.Action, address string, before, after plan.Resource) (apply.Outcome, error) {
	return e.exec[kind].Execute(e.ctx, plan.Change{Kind: kind, Action: action, Address: address, Before: before, After: after}, nil)
}

// route is meshd's route in a's private table to b's block through the peering.
func (e *deleteEnv) route() plan.Route {
	return plan.Route{Cluster: "a", Region: deleteRegion, VPCID: e.a.VPCID, RouteTableID: e.a.PrivateTable,
		DestinationCIDR: e.b.CIDR, PeeringID: e.peering.ID}
}

func routeAddress(r plan.Route) string {
	return "route[" + r.Cluster + ":" + r.RouteTableID + ":" + r.DestinationCIDR + "]"
}

// target is where a's private table sends cidr ("" when it has no such route).
func (e *deleteEnv) target(cidr string) string {
	e.t.Helper()
	out, err := e.raw.DescribeRouteTables(e.ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{e.a.PrivateTable}})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, t := range out.RouteTables {
		for _, r := range t.Routes {
			if aws.ToString(r.DestinationCidrBlock) == cidr {
				return aws.ToString(r.VpcPeeringConnectionId) + aws.ToString(r.GatewayId)
			}
		}
	}
	return ""
}

// createRoute makes meshd's route through its executor and checks it is there.
func (e *deleteEnv) createRoute(r plan.Route) apply.Outcome {
	e.t.Helper()
	out, err := e.run(plan.KindRoute, plan.Create, routeAddress(r), nil, r)
	if err != nil {
		e.t.Fatalf("creating %s: %v", routeAddress(r), err)
	}
	if got := e.target(r.DestinationCIDR); got != r.PeeringID {
		e.t.Fatalf("after creating it, %s goes to %q, want %q", r.DestinationCIDR, got, r.PeeringID)
	}
	return out
}

// recorded applies an outcome's state record to a state that records the route r, and says whether the
// route is still recorded after.
func recorded(out apply.Outcome, r plan.Route) bool {
	st := state.New("m")
	st.AddRoute(state.RouteRecord{Region: r.Region, VPCID: r.VPCID, RouteTableID: r.RouteTableID, DestinationCIDR: r.DestinationCIDR, PeeringID: r.PeeringID})
	if out.Record != nil {
		out.Record(st)
	}
	for _, rec := range st.Routes {
		if rec.RouteTableID == r.RouteTableID && rec.DestinationCIDR == r.DestinationCIDR {
			return true
		}
	}
	return false
}

// TestRouteRetargetedSincePlanIsRefused: a route meshd planned to delete or replace that someone pointed
// elsewhere since the plan (here, at the internet gateway) is theirs now: the delete and the replace fail
// with ErrConflict and the route keeps its new target. Pointed back through meshd's peering, the delete goes
// through.
func TestRouteRetargetedSincePlanIsRefused(t *testing.T) {
	e := newDeleteEnv(t)
	r := e.route()
	e.createRoute(r)
	if _, err := e.raw.ReplaceRoute(e.ctx, &ec2.ReplaceRouteInput{RouteTableId: aws.String(r.RouteTableID),
		DestinationCidrBlock: aws.String(r.DestinationCIDR), GatewayId: aws.String(e.a.InternetGateway)}); err != nil {
		t.Fatal(err)
	}
	for _, action := range []plan.Action{plan.Delete, plan.Update} {
		var after plan.Resource
		if action == plan.Update {
			after = r
		}
		_, err := e.run(plan.KindRoute, action, routeAddress(r), r, after)
		if !errors.Is(err, awsprovider.ErrConflict) {
			t.Errorf("%s of a route retargeted since the plan: err %v, want ErrConflict", action.Verb(), err)
		}
		if got := e.target(r.DestinationCIDR); got != e.a.InternetGateway {
			t.Errorf("after the refused %s, %s goes to %q, want the internet gateway %s left alone", action.Verb(), r.DestinationCIDR, got, e.a.InternetGateway)
		}
	}

	if _, err := e.raw.ReplaceRoute(e.ctx, &ec2.ReplaceRouteInput{RouteTableId: aws.String(r.RouteTableID),
		DestinationCidrBlock: aws.String(r.DestinationCIDR), VpcPeeringConnectionId: aws.String(r.PeeringID)}); err != nil {
		t.Fatal(err)
	}
	out, err := e.run(plan.KindRoute, plan.Delete, routeAddress(r), r, nil)
	if err != nil {
		t.Fatalf("deleting meshd's route: %v", err)
	}
	if got := e.target(r.DestinationCIDR); got != "" {
		t.Errorf("meshd's route still goes to %q after its delete", got)
	}
	if recorded(out, r) {
		t.Error("the state still records the deleted route")
	}
}

// TestRouteAlreadyGoneIsDone: deleting a route that is no longer there, whether it was gone before the
// check at apply time or went between that check and the delete (InvalidRoute.NotFound), succeeds and drops
// the route from the state.
func TestRouteAlreadyGoneIsDone(t *testing.T) {
	e := newDeleteEnv(t)
	r := e.route()

	e.createRoute(r)
	if _, err := e.raw.DeleteRoute(e.ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(r.RouteTableID),
		DestinationCidrBlock: aws.String(r.DestinationCIDR)}); err != nil {
		t.Fatal(err)
	}
	out, err := e.run(plan.KindRoute, plan.Delete, routeAddress(r), r, nil)
	if err != nil {
		t.Errorf("deleting a route gone before the apply: %v", err)
	}
	if recorded(out, r) {
		t.Error("a route gone before the apply stays recorded after its delete")
	}

	e.createRoute(r)
	e.ec2.race.Store(true)
	out, err = e.run(plan.KindRoute, plan.Delete, routeAddress(r), r, nil)
	e.ec2.race.Store(false)
	if err != nil {
		t.Errorf("deleting a route that went between the check and the delete: %v", err)
	}
	if recorded(out, r) {
		t.Error("a route that went during its delete stays recorded")
	}
	if got := e.target(r.DestinationCIDR); got != "" {
		t.Errorf("the route goes to %q after both deletes", got)
	}
}

// TestRouteAlreadyExistsOnCreate: CreateRoute answering RouteAlreadyExists is what the executor documents
// (checkExistingRoute): the route meshd wanted, through the planned peering (made by an earlier apply that
// was interrupted before writing the state), is success and recorded; a route to that block through another
// target is someone else's, refused with ErrConflict and never overwritten.
func TestRouteAlreadyExistsOnCreate(t *testing.T) {
	e := newDeleteEnv(t)
	r := e.route()
	e.createRoute(r)
	out, err := e.run(plan.KindRoute, plan.Create, routeAddress(r), nil, r)
	if err != nil {
		t.Errorf("creating a route that exists through the planned peering: %v", err)
	}
	st := state.New("m")
	if out.Record != nil {
		out.Record(st)
	}
	if len(st.Routes) != 1 || st.Routes[0].PeeringID != r.PeeringID || st.Routes[0].DestinationCIDR != r.DestinationCIDR {
		t.Errorf("state after creating an existing route: %+v, want it recorded through %s", st.Routes, r.PeeringID)
	}

	// Someone routes another block through the internet gateway before meshd's create of it.
	foreign := r
	foreign.DestinationCIDR = "10.3.0.0/16"
	if _, err := e.raw.CreateRoute(e.ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(foreign.RouteTableID),
		DestinationCidrBlock: aws.String(foreign.DestinationCIDR), GatewayId: aws.String(e.a.InternetGateway)}); err != nil && !sandbox.Retried(err, "RouteAlreadyExists") {
		t.Fatal(err)
	}
	_, err = e.run(plan.KindRoute, plan.Create, routeAddress(foreign), nil, foreign)
	if !errors.Is(err, awsprovider.ErrConflict) {
		t.Errorf("creating a route whose block another target has: err %v, want ErrConflict", err)
	}
	if got := e.target(foreign.DestinationCIDR); got != e.a.InternetGateway {
		t.Errorf("after the refused create, %s goes to %q, want the internet gateway %s", foreign.DestinationCIDR, got, e.a.InternetGateway)
	}
}

// TestPeeringAndRuleDeletesTolerateNotFound: deleting a peering or revoking a rule that does not exist (an
// ID AWS does not know: the object went long ago) or that went between the check at apply time and the
// delete (the delete answers NotFound) is done, not an error. (One deleted before the apply, still listed
// as deleted, is TestDeleteRefusesWhatIsNoLongerMeshds's last case.)
func TestPeeringAndRuleDeletesTolerateNotFound(t *testing.T) {
	e := newDeleteEnv(t)
	peeringAddr := plan.PeeringAddress("a", "b")
	rule := plan.SGRule{Cluster: "a", Region: deleteRegion, GroupID: e.a.SecurityGroupID, CIDR: e.b.CIDR, Protocol: "-1", Description: "meshd test"}
	ruleAddr := "sg_rule[a:" + e.a.SecurityGroupID + ":" + e.b.CIDR + "]"

	unknownPeering := e.peering
	unknownPeering.ID = "pcx-0123456789abcdef0"
	if _, err := e.run(plan.KindPeering, plan.Delete, peeringAddr, unknownPeering, nil); err != nil {
		t.Errorf("deleting a peering AWS does not know: %v", err)
	}
	unknownRule := rule
	unknownRule.RuleID = "sgr-0123456789abcdef0"
	if _, err := e.run(plan.KindSGRule, plan.Delete, ruleAddr, unknownRule, nil); err != nil {
		t.Errorf("revoking a rule AWS does not know: %v", err)
	}

	out, err := e.run(plan.KindSGRule, plan.Create, ruleAddr, nil, rule)
	if err != nil || out.ID == "" {
		t.Fatalf("creating the rule: id %q, %v", out.ID, err)
	}
	rule.RuleID = out.ID
	e.ec2.race.Store(true)
	defer e.ec2.race.Store(false)
	if _, err := e.run(plan.KindSGRule, plan.Delete, ruleAddr, rule, nil); err != nil {
		t.Errorf("revoking a rule revoked between the check and the revoke: %v", err)
	}
	if _, err := e.run(plan.KindPeering, plan.Delete, peeringAddr, e.peering, nil); err != nil {
		t.Errorf("deleting a peering deleted between the check and the delete: %v", err)
	}
}

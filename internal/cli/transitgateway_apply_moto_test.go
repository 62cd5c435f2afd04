package cli_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/meshd-io/meshd/internal/sandbox"
)

// tgwAccount is what the account holds of gateways and routes, in a form that compares well.
type tgwAccount struct {
	Gateways    []string            // live gateways
	Attachments []string            // attachment: gateway vpc
	Routes      map[string][]string // VPC route table -> "cidr target"
	Peerings    int
}

func (h *harness) tgwAccount(region string) tgwAccount { return tgwAccountOf(h.t, h.ec2(region)) }

// tgwAccountOf is what the client's account and region hold.
func tgwAccountOf(t *testing.T, c *ec2.Client) tgwAccount {
	t.Helper()
	ctx := context.Background()
	a := tgwAccount{Routes: map[string][]string{}}
	gws, err := c.DescribeTransitGateways(ctx, &ec2.DescribeTransitGatewaysInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gws.TransitGateways {
		if g.State != ec2types.TransitGatewayStateDeleted {
			a.Gateways = append(a.Gateways, aws.ToString(g.TransitGatewayId))
		}
	}
	atts, err := c.DescribeTransitGatewayAttachments(ctx, &ec2.DescribeTransitGatewayAttachmentsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range atts.TransitGatewayAttachments {
		if at.State != ec2types.TransitGatewayAttachmentStateDeleted { // a deleted peering attachment stays listed
			a.Attachments = append(a.Attachments, aws.ToString(at.TransitGatewayId)+" "+aws.ToString(at.ResourceId))
		}
	}
	rts, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, t := range rts.RouteTables {
		for _, r := range t.Routes {
			target := aws.ToString(r.TransitGatewayId) + aws.ToString(r.VpcPeeringConnectionId) + aws.ToString(r.GatewayId)
			a.Routes[aws.ToString(t.RouteTableId)] = append(a.Routes[aws.ToString(t.RouteTableId)], aws.ToString(r.DestinationCidrBlock)+" "+target)
		}
	}
	for k := range a.Routes {
		slices.Sort(a.Routes[k])
	}
	slices.Sort(a.Gateways)
	slices.Sort(a.Attachments)
	pcx, err := c.DescribeVpcPeeringConnections(ctx, &ec2.DescribeVpcPeeringConnectionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pcx.VpcPeeringConnections {
		if p.Status != nil && p.Status.Code == ec2types.VpcPeeringConnectionStateReasonCodeActive {
			a.Peerings++
		}
	}
	return a
}

// newTGWHarness lays out three clusters in one region, named by VPC and security group.
func newTGWHarness(t *testing.T, region string) *harness {
	t.Helper()
	m := startMoto(t)
	m.Reset(t)
	m.SetEnv(t)
	h := &harness{t: t, moto: m, dir: t.TempDir()}
	h.spec = filepath.Join(h.dir, "mesh.hcl")
	h.state = filepath.Join(h.dir, "meshd.state.json")
	for i := range 3 {
		n, err := sandbox.CreateNetwork(context.Background(), m.AWSConfig(region), sandbox.ClusterNet{
			Name: fmt.Sprintf("tidb-%d", i+1), Region: region, CIDR: fmt.Sprintf("10.%d.0.0/16", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		h.nets = append(h.nets, n)
	}
	return h
}

// TestTransitGatewayMeshOnMoto: a three-cluster mesh in one region built through a gateway meshd creates
// (apply, then an empty plan), a deleted VPC route to the gateway repaired, destroy leaving the account as
// it was; then the same through an existing gateway (id) with a foreign attachment and a foreign route, which
// meshd leaves alone, and which destroy leaves in place.
func TestTransitGatewayMeshOnMoto(t *testing.T) {
	const region = "us-west-2"
	h := newTGWHarness(t, region)
	ctx, c := context.Background(), h.ec2(region)
	before := h.tgwAccount(region)

	h.writeSpec("  topology = \"transit_gateway\"\n")
	h.mustRun(0, "apply", "--auto-approve")
	h.mustRun(0, "plan", "--detailed-exitcode")
	built := h.tgwAccount(region)
	if len(built.Gateways) != 1 || len(built.Attachments) != 3 || built.Peerings != 0 {
		t.Fatalf("after apply: %+v, want one gateway, three attachments, no peering", built)
	}
	gw := built.Gateways[0]
	for _, n := range h.nets {
		for _, rt := range []string{n.MainRouteTable, n.PrivateTable} {
			for _, o := range h.nets {
				if o.Name != n.Name && !slices.Contains(built.Routes[rt], o.CIDR+" "+gw) {
					t.Errorf("%s's route table %s has no route to %s through %s: %v", n.Name, rt, o.CIDR, gw, built.Routes[rt])
				}
			}
		}
	}

	// A route to the gateway deleted by hand is repaired.
	if _, err := c.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(h.nets[0].PrivateTable), DestinationCidrBlock: aws.String(h.nets[1].CIDR)}); err != nil {
		t.Fatal(err)
	}
	h.mustRun(2, "plan", "--detailed-exitcode")
	h.mustRun(0, "apply", "--auto-approve")
	h.mustRun(0, "plan", "--detailed-exitcode")
	if got := h.tgwAccount(region); fmt.Sprint(got) != fmt.Sprint(built) {
		t.Errorf("after the repair:\n%+v\nwant\n%+v", got, built)
	}

	h.mustRun(0, "destroy", "--auto-approve")
	if got := h.tgwAccount(region); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("after destroy:\n%+v\nwant as before meshd\n%+v", got, before)
	}

	// The network team's gateway, with an attachment of its own (a fourth VPC) and a route of its own in a
	// member's route table.
	team, err := c.CreateTransitGateway(ctx, &ec2.CreateTransitGatewayInput{})
	if err != nil {
		t.Fatal(err)
	}
	teamID := aws.ToString(team.TransitGateway.TransitGatewayId)
	other, err := sandbox.CreateNetwork(ctx, h.moto.AWSConfig(region), sandbox.ClusterNet{Name: "other", Region: region, CIDR: "10.9.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTransitGatewayVpcAttachment(ctx, &ec2.CreateTransitGatewayVpcAttachmentInput{TransitGatewayId: aws.String(teamID),
		VpcId: aws.String(other.VPCID), SubnetIds: other.SubnetIDs}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(h.nets[0].PrivateTable),
		DestinationCidrBlock: aws.String("192.168.0.0/16"), TransitGatewayId: aws.String(teamID)}); err != nil {
		t.Fatal(err)
	}
	foreign := h.tgwAccount(region)
	h.writeSpec(fmt.Sprintf("  topology = \"transit_gateway\"\n  transit_gateway %q {\n    id = %q\n  }\n", region, teamID))
	h.mustRun(0, "apply", "--auto-approve")
	h.mustRun(0, "plan", "--detailed-exitcode")
	named := h.tgwAccount(region)
	if !slices.Equal(named.Gateways, foreign.Gateways) {
		t.Errorf("with the named gateway, gateways %v, want %v (none created)", named.Gateways, foreign.Gateways)
	}
	if !slices.Contains(named.Attachments, teamID+" "+other.VPCID) || len(named.Attachments) != len(foreign.Attachments)+3 {
		t.Errorf("attachments %v, want the team's and one per member", named.Attachments)
	}
	if !slices.Contains(named.Routes[h.nets[0].PrivateTable], "192.168.0.0/16 "+teamID) ||
		!slices.Contains(named.Routes[h.nets[0].PrivateTable], h.nets[1].CIDR+" "+teamID) {
		t.Errorf("tidb-1's route table %v, want the team's route and meshd's", named.Routes[h.nets[0].PrivateTable])
	}
	h.mustRun(0, "destroy", "--auto-approve")
	if got := h.tgwAccount(region); fmt.Sprint(got) != fmt.Sprint(foreign) {
		t.Errorf("after destroy with the named gateway:\n%+v\nwant as before meshd\n%+v", got, foreign)
	}
}

package cli_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/middleware"

	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/spec"
)

// TestObserveTransitGatewaysCallsAreConstant: with topology = "transit_gateway" the observation reads, per
// region, the mesh's gateway, its route table (routes, propagations and associations), its attachments and peering
// attachments — seven calls more per region whether the mesh has 3 or 24 clusters — and nothing of a gateway
// that is neither the mesh's nor the spec's. With topology = "peering" it reads none of it.
func TestObserveTransitGatewaysCallsAreConstant(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.growTo(24)
	tagged := func(rt ec2types.ResourceType, id string) []ec2types.TagSpecification {
		return []ec2types.TagSpecification{{ResourceType: rt, Tags: []ec2types.Tag{
			{Key: aws.String("meshd.io/mesh"), Value: aws.String("tidb")}, {Key: aws.String("meshd.io/id"), Value: aws.String(id)}}}}
	}
	// In each region: the mesh's gateway and route table, the first member's VPC attached, associated and
	// propagating, a static route; and a foreign gateway with an attachment of its own.
	gateways, tables, attachments := map[string]string{}, map[string]string{}, map[string]string{}
	for i, region := range regions {
		c := h.ec2(region)
		gw, err := c.CreateTransitGateway(ctx, &ec2.CreateTransitGatewayInput{
			TagSpecifications: tagged(ec2types.ResourceTypeTransitGateway, "transit_gateway["+region+"]")})
		if err != nil {
			t.Fatal(err)
		}
		gateways[region] = aws.ToString(gw.TransitGateway.TransitGatewayId)
		rt, err := c.CreateTransitGatewayRouteTable(ctx, &ec2.CreateTransitGatewayRouteTableInput{TransitGatewayId: aws.String(gateways[region]),
			TagSpecifications: tagged(ec2types.ResourceTypeTransitGatewayRouteTable, "transit_gateway["+region+"]")})
		if err != nil {
			t.Fatal(err)
		}
		tables[region] = aws.ToString(rt.TransitGatewayRouteTable.TransitGatewayRouteTableId)
		att, err := c.CreateTransitGatewayVpcAttachment(ctx, &ec2.CreateTransitGatewayVpcAttachmentInput{TransitGatewayId: aws.String(gateways[region]),
			VpcId: aws.String(h.nets[i].VPCID), SubnetIds: h.nets[i].SubnetIDs[1:],
			TagSpecifications: tagged(ec2types.ResourceTypeTransitGatewayAttachment, "tgw_attachment["+h.nets[i].Name+"]")})
		if err != nil {
			t.Fatal(err)
		}
		attachments[region] = aws.ToString(att.TransitGatewayVpcAttachment.TransitGatewayAttachmentId)
		if _, err := c.AssociateTransitGatewayRouteTable(ctx, &ec2.AssociateTransitGatewayRouteTableInput{
			TransitGatewayAttachmentId: aws.String(attachments[region]), TransitGatewayRouteTableId: aws.String(tables[region])}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.EnableTransitGatewayRouteTablePropagation(ctx, &ec2.EnableTransitGatewayRouteTablePropagationInput{
			TransitGatewayAttachmentId: aws.String(attachments[region]), TransitGatewayRouteTableId: aws.String(tables[region])}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateTransitGatewayRoute(ctx, &ec2.CreateTransitGatewayRouteInput{TransitGatewayRouteTableId: aws.String(tables[region]),
			DestinationCidrBlock: aws.String("10.200.0.0/16"), TransitGatewayAttachmentId: aws.String(attachments[region])}); err != nil {
			t.Fatal(err)
		}
		foreign, err := c.CreateTransitGateway(ctx, &ec2.CreateTransitGatewayInput{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateTransitGatewayVpcAttachment(ctx, &ec2.CreateTransitGatewayVpcAttachmentInput{TransitGatewayId: foreign.TransitGateway.TransitGatewayId,
			VpcId: aws.String(h.nets[i+3].VPCID), SubnetIds: h.nets[i+3].SubnetIDs[1:]}); err != nil {
			t.Fatal(err)
		}
	}

	count := func(clusters int, topology string) map[string]int {
		all := h.nets
		h.nets = all[:clusters]
		h.writeSpec(fmt.Sprintf("  topology = %q\n", topology))
		h.nets = all
		c := &callCounter{calls: map[string]int{}}
		h.awsOptions = []func(*middleware.Stack) error{c.middleware}
		// The VPC attachments made above are foreign to meshd (moto drops their tags): a conflict, exit 1,
		// once the plan is computed, which is all that is counted here.
		if r := h.run("plan", "--detailed-exitcode"); r.code == 0 || !strings.Contains(r.stdout, "Plan: ") {
			t.Fatalf("plan of %d clusters (%s): exit %d\n%s\n%s", clusters, topology, r.code, r.stdout, r.stderr)
		}
		return c.calls
	}
	tgwCalls := []string{"DescribeTransitGateways", "DescribeTransitGatewayRouteTables", "DescribeTransitGatewayAttachments",
		"DescribeTransitGatewayPeeringAttachments", "SearchTransitGatewayRoutes", "GetTransitGatewayRouteTablePropagations",
		"GetTransitGatewayRouteTableAssociations"}
	totals := map[string]int{}
	for _, topology := range []string{spec.TopologyPeering, spec.TopologyTransitGateway} {
		three, many := count(3, topology), count(24, topology)
		if fmt.Sprint(three) != fmt.Sprint(many) {
			t.Errorf("%s: EC2 calls per observe differ:\n 3 clusters: %v\n24 clusters: %v", topology, three, many)
		}
		for _, op := range tgwCalls {
			want := 0
			if topology == spec.TopologyTransitGateway {
				want = len(regions)
			}
			if three[op] != want {
				t.Errorf("%s: %d %s calls per observe, want %d", topology, three[op], op, want)
			}
		}
		totals[topology] = (&callCounter{calls: three}).total()
		t.Logf("EC2 calls per observe, %s: 3 clusters %d, 24 clusters %d", topology, totals[topology], (&callCounter{calls: many}).total())
	}
	if got, want := totals[spec.TopologyTransitGateway]-totals[spec.TopologyPeering], len(tgwCalls)*len(regions); got != want {
		t.Errorf("the gateway topology costs %d more calls per observe, want %d (seven per region)", got, want)
	}

	// What the observation holds: the mesh's gateways, route tables with their route and propagation, and
	// every attachment of those gateways; the foreign gateways are not read.
	h.writeSpec("  topology = \"transit_gateway\"\n")
	m, diags := spec.Load(h.spec)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	p, err := awsprovider.New(ctx, awsprovider.Options{Mesh: "tidb"})
	if err != nil {
		t.Fatal(err)
	}
	obs, diags, err := p.Observe(ctx, m, awsprovider.Former{})
	if err != nil || diags.HasErrors() {
		t.Fatal(err, diags)
	}
	if len(obs.Observed.TransitGateways) != len(regions) {
		t.Errorf("observed gateways %v, want the mesh's three", obs.Observed.TransitGateways)
	}
	for _, region := range regions {
		if g := obs.Observed.TransitGateways[gateways[region]]; g.Region != region {
			t.Errorf("gateway %s: %+v", gateways[region], g)
		}
		rt := obs.Observed.TGWRouteTables[tables[region]]
		// A moto 5.2 gap, worked around here: DescribeTransitGatewayAttachments reports the gateway's default
		// route table as the association even after AssociateTransitGatewayRouteTable. (Its answer to
		// SearchTransitGatewayRoutes is put in AWS's shape by the test environment, moto_serial.py.)
		static := false
		for _, r := range rt.Routes {
			static = static || (r.DestinationCIDR == "10.200.0.0/16" && r.Type == "static" && r.State == "active" && r.AttachmentID == attachments[region])
		}
		if !static || !slices.Contains(rt.Propagations, attachments[region]) {
			t.Errorf("route table %s in %s: %+v, want the static route and the propagation of %s", tables[region], region, rt, attachments[region])
		}
		if a := obs.Observed.TGWAttachments[attachments[region]]; a.Type != "vpc" || a.ResourceID != h.nets[slices.Index(regions, region)].VPCID || a.RouteTableID == "" {
			t.Errorf("attachment %s: %+v, want the VPC attachment of %s, associated", attachments[region], a, h.nets[slices.Index(regions, region)].Name)
		}
	}
	for id, a := range obs.Observed.TGWAttachments {
		if _, ok := obs.Observed.TransitGateways[a.GatewayID]; !ok {
			t.Errorf("attachment %s of a gateway that is not the mesh's was read: %+v", id, a)
		}
	}
}

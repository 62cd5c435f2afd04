package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/meshd-io/meshd/internal/verify"
)

// verifyJSON runs meshctl verify --json, wants exit code want, and returns its document.
func (h *harness) verifyJSON(want int) (doc struct {
	Layers   []verify.Layer
	Verdicts []verify.Verdict
	Failures []string
}) {
	h.t.Helper()
	r := h.mustRun(want, "verify", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		h.t.Fatalf("verify --json: %v\n%s", err, r.stdout)
	}
	return doc
}

// wantVerifyFailures runs meshctl verify and wants it to fail with exactly these lines.
func (h *harness) wantVerifyFailures(what string, want ...string) {
	h.t.Helper()
	if got := h.verifyJSON(2).Failures; !slices.Equal(got, want) {
		h.t.Errorf("%s: verify failures:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestTransitGatewayVerifyOnMoto: after meshd builds a one-region mesh through a gateway, meshctl verify
// passes the network layers of every pair (DNS is off in this harness: skipped); then, one at a time, a
// VPC route to the gateway deleted by hand, the attachment's association with the gateway route table
// removed, a blackhole route in the gateway route table and a deleted attachment each make verify fail
// naming the object to fix, and (but for the blackhole, which is not meshd's route) meshctl apply repairs
// what verify named.
func TestTransitGatewayVerifyOnMoto(t *testing.T) {
	const region = "us-west-2"
	h := newTGWHarness(t, region)
	ctx, c := context.Background(), h.ec2(region)
	h.writeSpec("  topology = \"transit_gateway\"\n")
	h.mustRun(0, "apply", "--auto-approve")

	r := h.mustRun(0, "verify")
	if !strings.HasPrefix(r.stdout, "FROM     TO       TRANSIT_GATEWAY   ROUTES") || !strings.Contains(r.stdout, "Every pair of the 3 clusters passes.") {
		t.Errorf("verify after apply:\n%s", r.stdout)
	}
	doc := h.verifyJSON(0)
	if !slices.Equal(doc.Layers, verify.GatewayLayers) || len(doc.Verdicts) != 6*len(verify.GatewayLayers) {
		t.Fatalf("verify --json: layers %v, %d verdicts", doc.Layers, len(doc.Verdicts))
	}
	for _, v := range doc.Verdicts {
		network := v.Layer != verify.LayerDNS && v.Layer != verify.LayerProbe
		if network && v.Status != verify.OK || !network && v.Status != verify.Skipped {
			t.Errorf("%s -> %s %s: %s %v", v.From, v.To, v.Layer, v.Status, v.Causes)
		}
	}

	// What meshd made: the gateway, its route table and the attachments, by VPC.
	gws, err := c.DescribeTransitGateways(ctx, &ec2.DescribeTransitGatewaysInput{})
	if err != nil || len(gws.TransitGateways) != 1 {
		t.Fatalf("gateways: %v %v", gws, err)
	}
	gw := aws.ToString(gws.TransitGateways[0].TransitGatewayId)
	rts, err := c.DescribeTransitGatewayRouteTables(ctx, &ec2.DescribeTransitGatewayRouteTablesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var table string // meshd's (moto also makes the gateway a default table)
	for _, rt := range rts.TransitGatewayRouteTables {
		if tag(rt.Tags, "meshd.io/mesh") == "tidb" {
			table = aws.ToString(rt.TransitGatewayRouteTableId)
		}
	}
	if table == "" {
		t.Fatal("no gateway route table of the mesh")
	}
	attachmentOf := func(vpc string) string {
		t.Helper()
		atts, err := c.DescribeTransitGatewayAttachments(ctx, &ec2.DescribeTransitGatewayAttachmentsInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range atts.TransitGatewayAttachments {
			if aws.ToString(a.ResourceId) == vpc && a.State == ec2types.TransitGatewayAttachmentStateAvailable {
				return aws.ToString(a.TransitGatewayAttachmentId)
			}
		}
		t.Fatalf("no available attachment of %s", vpc)
		return ""
	}
	n1, n2, n3 := h.nets[0], h.nets[1], h.nets[2]
	repaired := func(what string) {
		t.Helper()
		h.mustRun(0, "apply", "--auto-approve")
		if got := h.verifyJSON(0).Failures; len(got) != 0 {
			t.Errorf("after %s was repaired: %v", what, got)
		}
	}

	// A member route table's route to the gateway, deleted by hand.
	if _, err := c.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(n1.PrivateTable), DestinationCidrBlock: aws.String(n2.CIDR)}); err != nil {
		t.Fatal(err)
	}
	h.wantVerifyFailures("deleted VPC route", fmt.Sprintf("tidb-1 -> tidb-2 routes: %s has no route to %s (want %s)", n1.PrivateTable, n2.CIDR, gw))
	repaired("the VPC route")

	// tidb-1's attachment disassociated from the mesh's gateway route table: nothing leaves tidb-1's VPC.
	att1 := attachmentOf(n1.VPCID)
	if _, err := c.DisassociateTransitGatewayRouteTable(ctx, &ec2.DisassociateTransitGatewayRouteTableInput{
		TransitGatewayAttachmentId: aws.String(att1), TransitGatewayRouteTableId: aws.String(table)}); err != nil {
		t.Fatal(err)
	}
	// moto associates every VPC attachment with the gateway's default table as well, and goes on reporting
	// that association (AWS would report none, and verify would say "associated with no route table").
	dflt := aws.ToString(gws.TransitGateways[0].Options.AssociationDefaultRouteTableId)
	unassociated := fmt.Sprintf("transit_gateway: %s (tidb-1's VPC attachment) is associated with %s, not the mesh's route table of %s (want %s)", att1, dflt, gw, table)
	h.wantVerifyFailures("disassociated attachment", "tidb-1 -> tidb-2 "+unassociated, "tidb-1 -> tidb-3 "+unassociated)
	repaired("the association")

	// A blackhole route for tidb-2's block in the gateway route table (someone else's static route, which
	// takes the place of the propagated one): every pair towards tidb-2 fails, naming the table and block.
	att2 := attachmentOf(n2.VPCID)
	if _, err := c.CreateTransitGatewayRoute(ctx, &ec2.CreateTransitGatewayRouteInput{TransitGatewayRouteTableId: aws.String(table),
		DestinationCidrBlock: aws.String(n2.CIDR), Blackhole: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	blackhole := fmt.Sprintf("transit_gateway: %s's route to %s is a blackhole (want %s, tidb-2's VPC attachment, active)", table, n2.CIDR, att2)
	h.wantVerifyFailures("blackhole gateway route", "tidb-1 -> tidb-2 "+blackhole, "tidb-3 -> tidb-2 "+blackhole)
	if _, err := c.DeleteTransitGatewayRoute(ctx, &ec2.DeleteTransitGatewayRouteInput{TransitGatewayRouteTableId: aws.String(table),
		DestinationCidrBlock: aws.String(n2.CIDR)}); err != nil {
		t.Fatal(err)
	}
	if got := h.verifyJSON(0).Failures; len(got) != 0 {
		t.Errorf("after the blackhole route was deleted: %v", got)
	}

	// tidb-3's attachment deleted: every pair to or from tidb-3 names its VPC.
	if _, err := c.DeleteTransitGatewayVpcAttachment(ctx, &ec2.DeleteTransitGatewayVpcAttachmentInput{
		TransitGatewayAttachmentId: aws.String(attachmentOf(n3.VPCID))}); err != nil {
		t.Fatal(err)
	}
	detached := fmt.Sprintf("transit_gateway: VPC %s (tidb-3) has no attachment to %s", n3.VPCID, gw)
	h.wantVerifyFailures("deleted attachment", "tidb-1 -> tidb-3 "+detached, "tidb-2 -> tidb-3 "+detached,
		"tidb-3 -> tidb-1 "+detached, "tidb-3 -> tidb-2 "+detached)
	repaired("the attachment")

	h.mustRun(0, "destroy", "--auto-approve")
}

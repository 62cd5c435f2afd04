package cli_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/middleware"
)

// tgwRegionView is what a region holds of gateways, their peering attachments and static routes, on top of
// tgwAccount, in a form that compares well.
type tgwRegionView struct {
	tgwAccount
	GatewayPeerings []string            // live gateway peering attachments: "requester accepter state"
	StaticRoutes    map[string][]string // gateway route table -> "cidr attachment state"
}

func (h *harness) tgwRegion(region string) tgwRegionView { return tgwRegionOf(h.t, h.ec2(region)) }

// tgwRegionOf is what the client's account and region hold.
func tgwRegionOf(t *testing.T, c *ec2.Client) tgwRegionView {
	t.Helper()
	ctx := context.Background()
	v := tgwRegionView{tgwAccount: tgwAccountOf(t, c), StaticRoutes: map[string][]string{}}
	peers, err := c.DescribeTransitGatewayPeeringAttachments(ctx, &ec2.DescribeTransitGatewayPeeringAttachmentsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers.TransitGatewayPeeringAttachments {
		// moto lists every attachment here, VPC attachments too (without the peering's two sides).
		if p.RequesterTgwInfo != nil && p.AccepterTgwInfo != nil && p.State != ec2types.TransitGatewayAttachmentStateDeleted {
			v.GatewayPeerings = append(v.GatewayPeerings, fmt.Sprintf("%s %s %s", aws.ToString(p.RequesterTgwInfo.TransitGatewayId), aws.ToString(p.AccepterTgwInfo.TransitGatewayId), p.State))
		}
	}
	slices.Sort(v.GatewayPeerings)
	tables, err := c.DescribeTransitGatewayRouteTables(ctx, &ec2.DescribeTransitGatewayRouteTablesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range tables.TransitGatewayRouteTables {
		id := aws.ToString(rt.TransitGatewayRouteTableId)
		if rt.State == ec2types.TransitGatewayRouteTableStateDeleted {
			continue
		}
		routes, err := c.SearchTransitGatewayRoutes(ctx, &ec2.SearchTransitGatewayRoutesInput{TransitGatewayRouteTableId: aws.String(id),
			Filters: []ec2types.Filter{{Name: aws.String("type"), Values: []string{"static"}}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes.Routes {
			att := "blackhole"
			if len(r.TransitGatewayAttachments) > 0 {
				att = aws.ToString(r.TransitGatewayAttachments[0].TransitGatewayAttachmentId)
			}
			v.StaticRoutes[id] = append(v.StaticRoutes[id], fmt.Sprintf("%s %s %s", aws.ToString(r.DestinationCidrBlock), att, r.State))
		}
		slices.Sort(v.StaticRoutes[id])
	}
	return v
}

// pathWatch checks that every member route table routes every other member's block somewhere that leads
// there (pathProblems) right after each of meshctl's EC2 writes that replaces or removes something (a
// create only adds a path): every moment a path could break is looked at, however slow a loaded machine
// makes the checks, and nothing depends on timing. It counts the checks and the failures, with the first
// few failures.
type pathWatch struct {
	mu     sync.Mutex
	checks int
	failed int
	first  []string
}

// removes reports whether an EC2 operation replaces or removes something.
func removes(op string) bool {
	for _, verb := range []string{"Replace", "Delete", "Disassociate", "Disable", "Reject", "Revoke"} {
		if strings.HasPrefix(op, verb) {
			return true
		}
	}
	return false
}

// watchPaths puts a pathWatch behind meshctl's EC2 writes until the returned stop is called.
func (h *harness) watchPaths() (*pathWatch, func()) {
	w := &pathWatch{}
	h.awsOptions = []func(*middleware.Stack) error{func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("check paths", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			if op := awsmiddleware.GetOperationName(ctx); awsmiddleware.GetServiceID(ctx) == "EC2" && removes(op) {
				w.mu.Lock() // one check at a time, while this call waits
				if problems, ok := h.pathProblems(context.WithoutCancel(ctx)); ok {
					w.checks++
					if len(problems) > 0 {
						w.failed++
						if len(w.first) < 5 {
							w.first = append(w.first, "after "+op+": "+strings.Join(problems, "; "))
						}
					}
				}
				w.mu.Unlock()
			}
			return out, md, err
		}), middleware.Before)
	}}
	return w, func() { h.awsOptions = nil }
}

// pathProblems is one check of pathWatch; ok is false when a read failed (the check is not counted).
func (h *harness) pathProblems(ctx context.Context) (problems []string, ok bool) {
	type region struct {
		routes   map[string]map[string]ec2types.Route // VPC route table -> destination -> route
		peerings map[string]bool                      // active VPC peerings
		gateway  map[string]bool                      // blocks the region's gateway routes (any of its route tables)
	}
	regionsSeen := map[string]*region{}
	for _, n := range h.nets {
		if regionsSeen[n.Region] != nil {
			continue
		}
		r := &region{routes: map[string]map[string]ec2types.Route{}, peerings: map[string]bool{}, gateway: map[string]bool{}}
		c := h.ec2(n.Region)
		rts, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{})
		if err != nil {
			return nil, false
		}
		for _, t := range rts.RouteTables {
			m := map[string]ec2types.Route{}
			for _, rt := range t.Routes {
				m[aws.ToString(rt.DestinationCidrBlock)] = rt
			}
			r.routes[aws.ToString(t.RouteTableId)] = m
		}
		pcx, err := c.DescribeVpcPeeringConnections(ctx, &ec2.DescribeVpcPeeringConnectionsInput{})
		if err != nil {
			return nil, false
		}
		for _, p := range pcx.VpcPeeringConnections {
			if p.Status != nil && p.Status.Code == ec2types.VpcPeeringConnectionStateReasonCodeActive {
				r.peerings[aws.ToString(p.VpcPeeringConnectionId)] = true
			}
		}
		tables, err := c.DescribeTransitGatewayRouteTables(ctx, &ec2.DescribeTransitGatewayRouteTablesInput{})
		if err != nil {
			return nil, false
		}
		for _, t := range tables.TransitGatewayRouteTables {
			routes, err := c.SearchTransitGatewayRoutes(ctx, &ec2.SearchTransitGatewayRoutesInput{TransitGatewayRouteTableId: t.TransitGatewayRouteTableId,
				Filters: []ec2types.Filter{{Name: aws.String("state"), Values: []string{"active"}}}})
			if err != nil {
				return nil, false
			}
			for _, rt := range routes.Routes {
				r.gateway[aws.ToString(t.TransitGatewayId)+" "+aws.ToString(rt.DestinationCidrBlock)] = true
			}
			// A VPC attachment propagating to the table routes its VPC's block there: AWS lists that route,
			// moto lists none, so the propagation stands for it.
			props, err := c.GetTransitGatewayRouteTablePropagations(ctx, &ec2.GetTransitGatewayRouteTablePropagationsInput{TransitGatewayRouteTableId: t.TransitGatewayRouteTableId})
			if err != nil {
				return nil, false
			}
			for _, p := range props.TransitGatewayRouteTablePropagations {
				for _, n := range h.nets {
					if n.VPCID == aws.ToString(p.ResourceId) && p.State == ec2types.TransitGatewayPropagationStateEnabled {
						r.gateway[aws.ToString(t.TransitGatewayId)+" "+n.CIDR] = true
					}
				}
			}
		}
		regionsSeen[n.Region] = r
	}
	for _, a := range h.nets {
		r := regionsSeen[a.Region]
		for _, table := range []string{a.MainRouteTable, a.PrivateTable} {
			for _, b := range h.nets {
				if b.Name == a.Name {
					continue
				}
				route, found := r.routes[table][b.CIDR]
				switch {
				case !found:
					problems = append(problems, fmt.Sprintf("%s has no route to %s", table, b.CIDR))
				case route.State == ec2types.RouteStateBlackhole:
					problems = append(problems, fmt.Sprintf("%s's route to %s is a blackhole", table, b.CIDR))
				case route.VpcPeeringConnectionId != nil && !r.peerings[aws.ToString(route.VpcPeeringConnectionId)]:
					problems = append(problems, fmt.Sprintf("%s routes %s to %s, not active", table, b.CIDR, aws.ToString(route.VpcPeeringConnectionId)))
				case route.TransitGatewayId != nil && !r.gateway[aws.ToString(route.TransitGatewayId)+" "+b.CIDR]:
					problems = append(problems, fmt.Sprintf("%s routes %s to %s, which has no route there", table, b.CIDR, aws.ToString(route.TransitGatewayId)))
				}
			}
		}
	}
	return problems, true
}

// TestTransitGatewayAcrossRegionsOnMoto: six clusters in three regions, meshed with VPC peerings, switched
// to a gateway per region while the paths are checked in a loop (no check may fail: every route table
// routes every other member's block to a live peering or to a gateway that routes it on); the gateways are
// peered pairwise with a static route per remote block; the next plan is empty; a deleted gateway route and
// a deleted VPC route are repaired; destroy leaves every region as it was.
func TestTransitGatewayAcrossRegionsOnMoto(t *testing.T) {
	h := newHarness(t)
	h.growTo(6)
	ctx := context.Background()
	view := func() map[string]tgwRegionView {
		out := map[string]tgwRegionView{}
		for _, region := range regions {
			out[region] = h.tgwRegion(region)
		}
		return out
	}
	before := view()

	h.writeSpec("")
	h.mustRun(0, "apply", "--auto-approve")
	if problems, _ := h.pathProblems(ctx); len(problems) > 0 {
		t.Fatalf("the peering mesh is not complete: %v", problems)
	}

	h.writeSpec("  topology = \"transit_gateway\"\n")
	w, stop := h.watchPaths()
	h.mustRun(0, "apply", "--auto-approve")
	stop()
	t.Logf("paths checked %d times during the switch, %d failed", w.checks, w.failed)
	if w.checks < 20 {
		t.Errorf("the paths were checked only %d times during the switch (once before each write): the watch proves nothing", w.checks)
	}
	if w.failed > 0 {
		t.Errorf("%d of %d checks failed during the switch, first: %v", w.failed, w.checks, w.first)
	}
	h.mustRun(0, "plan", "--detailed-exitcode")

	built := view()
	for _, region := range regions {
		v := built[region]
		if len(v.Gateways) != 1 || v.Peerings != 0 {
			t.Errorf("%s after the switch: %+v, want one gateway and no VPC peering", region, v)
		}
		var static []string
		for _, routes := range v.StaticRoutes {
			static = append(static, routes...)
		}
		// Four blocks in the two other regions, each through the peering attachment to its region.
		if len(static) != 4 || slices.ContainsFunc(static, func(s string) bool { return !strings.HasSuffix(s, " active") }) {
			t.Errorf("%s's gateway routes %v, want the 4 blocks of the other regions, active", region, static)
		}
	}
	var peerings []string
	for _, region := range regions {
		peerings = append(peerings, built[region].GatewayPeerings...)
	}
	slices.Sort(peerings)
	if peerings = slices.Compact(peerings); len(peerings) != 3 || slices.ContainsFunc(peerings, func(s string) bool { return !strings.HasSuffix(s, " available") }) {
		t.Errorf("gateway peering attachments %v, want one per pair of the three regions, available", peerings)
	}
	if problems, _ := h.pathProblems(ctx); len(problems) > 0 {
		t.Errorf("after the switch: %v", problems)
	}
	// verify follows every pair's path through the gateways, across regions through their peering.
	if r := h.mustRun(0, "verify"); !strings.Contains(r.stdout, "Every pair of the 6 clusters passes.") {
		t.Errorf("verify after the switch:\n%s", r.stdout)
	}

	// A gateway route and a VPC route deleted by hand are repaired.
	east := h.ec2("us-east-1")
	for table, routes := range built["us-east-1"].StaticRoutes {
		cidr, _, _ := strings.Cut(routes[0], " ")
		if _, err := east.DeleteTransitGatewayRoute(ctx, &ec2.DeleteTransitGatewayRouteInput{TransitGatewayRouteTableId: aws.String(table),
			DestinationCidrBlock: aws.String(cidr)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.ec2(h.nets[1].Region).DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(h.nets[1].PrivateTable),
		DestinationCidrBlock: aws.String(h.nets[2].CIDR)}); err != nil {
		t.Fatal(err)
	}
	if problems, _ := h.pathProblems(ctx); len(problems) == 0 {
		t.Error("with a gateway route and a VPC route deleted, the path check finds nothing: it proves nothing")
	}
	failures := strings.Join(h.verifyJSON(2).Failures, "\n")
	t.Logf("verify with a gateway route and a VPC route deleted:\n%s", failures)
	if !strings.Contains(failures, h.nets[1].PrivateTable+" has no route to "+h.nets[2].CIDR) || !strings.Contains(failures, ", the peering attachment to tgw-") {
		t.Errorf("verify with a gateway route and a VPC route deleted:\n%s", failures)
	}
	r := h.mustRun(2, "plan", "--detailed-exitcode")
	for _, want := range []string{"tgw_route[us-east-1:", "tgw_vpc_route[" + h.nets[1].Name + ":" + h.nets[1].PrivateTable + ":" + h.nets[2].CIDR + "]"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the plan does not repair %s:\n%s", want, r.stdout)
		}
	}
	h.mustRun(0, "apply", "--auto-approve")
	h.mustRun(0, "plan", "--detailed-exitcode")
	if got := view(); fmt.Sprint(got) != fmt.Sprint(built) {
		t.Errorf("after the repair:\n%+v\nwant\n%+v", got, built)
	}

	// Back to peerings, and again to the gateways, with the paths checked in a loop each time; then destroy
	// from the gateway topology.
	for _, to := range []string{"", "  topology = \"transit_gateway\"\n"} {
		h.writeSpec(to)
		w, stop := h.watchPaths()
		h.mustRun(0, "apply", "--auto-approve")
		stop()
		t.Logf("switch to %q: paths checked %d times, %d failed", strings.TrimSpace(to), w.checks, w.failed)
		if w.failed > 0 || w.checks < 20 {
			t.Errorf("switch to %q: %d of %d checks failed, first: %v", strings.TrimSpace(to), w.failed, w.checks, w.first)
		}
		if problems, _ := h.pathProblems(ctx); len(problems) > 0 {
			t.Errorf("after the switch to %q: %v", strings.TrimSpace(to), problems)
		}
		h.mustRun(0, "plan", "--detailed-exitcode")
	}
	back := view()
	for _, region := range regions {
		if len(back[region].Gateways) != 1 || len(back[region].GatewayPeerings) != 2 || back[region].Peerings != 0 {
			t.Errorf("%s after peering and back to the gateways: %+v", region, back[region])
		}
	}

	h.mustRun(0, "destroy", "--auto-approve")
	if got := view(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("after destroy:\n%+v\nwant as before meshd\n%+v", got, before)
	}
}

// TestTransitGatewayAcrossTwoAccountsOnMoto: three regions, tidb-1's in the default account, tidb-2's and
// tidb-3's in account B behind an assumed role. Each region's gateway is made in its members' account; the
// gateway peering attachments between the accounts are requested with one account's credentials and accepted
// with the other's; the next plan is empty, verify passes every pair, and destroy leaves both accounts as
// they were.
func TestTransitGatewayAcrossTwoAccountsOnMoto(t *testing.T) {
	h := newAccountsHarness(t)
	h.meshExtra = "  topology = \"transit_gateway\"\n"
	h.writeSpec()
	view := func() []tgwRegionView {
		var out []tgwRegionView
		for i := range h.nets {
			out = append(out, tgwRegionOf(t, h.ec2(i)))
		}
		return out
	}
	before := view()
	h.calls.reset()
	h.mustRun(0, "apply", "--auto-approve")
	h.mustRun(0, "plan", "--detailed-exitcode")
	if r := h.mustRun(0, "verify"); !strings.Contains(r.stdout, "Every pair of the 3 clusters passes.") {
		t.Errorf("verify:\n%s", r.stdout)
	}
	built := view()
	for i, v := range built {
		if len(v.Gateways) != 1 || len(v.Attachments) < 1 {
			t.Errorf("%s's account and region after apply: %+v, want its own gateway and attachment", h.nets[i].Name, v)
		}
	}
	// Each of the three peering attachments is seen by both its accounts; two of them join the accounts.
	if len(built[0].GatewayPeerings) != 2 {
		t.Errorf("the default account's gateway peering attachments %v, want two (to each of account B's regions)", built[0].GatewayPeerings)
	}
	// The regions sort us-east-1 (B), us-west-1 (A), us-west-2 (B): B requests from us-east-1 to both others,
	// A from us-west-1 to us-west-2; us-west-1 (A) accepts one, us-west-2 (B) two.
	for _, op := range []string{"CreateTransitGatewayPeeringAttachment", "AcceptTransitGatewayPeeringAttachment"} {
		if keys := h.calls.keysOf(op); len(keys) != 2 || !slices.Contains(keys, "testing") || h.calls.calls(op) != 3 {
			t.Errorf("%s called %d times, signed with %v, want 3 calls with the default key and account B's", op, h.calls.calls(op), keys)
		}
	}
	h.mustRun(0, "destroy", "--auto-approve")
	if got := view(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("after destroy:\n%+v\nwant both accounts as before meshd\n%+v", got, before)
	}
}

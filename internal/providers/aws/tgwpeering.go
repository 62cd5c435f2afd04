package aws

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
)

// The executors of the kinds that join the regions' gateways (plan/tgwpeering.go): the peering attachment
// of two regions and the static routes through it. Like sdkTGWWrite they keep method values of the
// operations they call only (see sdk.go).
type sdkTGWPeering struct {
	createTransitGatewayPeeringAttachment op[ec2.CreateTransitGatewayPeeringAttachmentInput, ec2.CreateTransitGatewayPeeringAttachmentOutput, ec2.Options]
	acceptTransitGatewayPeeringAttachment op[ec2.AcceptTransitGatewayPeeringAttachmentInput, ec2.AcceptTransitGatewayPeeringAttachmentOutput, ec2.Options]
	deleteTransitGatewayPeeringAttachment op[ec2.DeleteTransitGatewayPeeringAttachmentInput, ec2.DeleteTransitGatewayPeeringAttachmentOutput, ec2.Options]
	createTransitGatewayRoute             op[ec2.CreateTransitGatewayRouteInput, ec2.CreateTransitGatewayRouteOutput, ec2.Options]
	replaceTransitGatewayRoute            op[ec2.ReplaceTransitGatewayRouteInput, ec2.ReplaceTransitGatewayRouteOutput, ec2.Options]
	deleteTransitGatewayRoute             op[ec2.DeleteTransitGatewayRouteInput, ec2.DeleteTransitGatewayRouteOutput, ec2.Options]
	sdkTGWWrite
}

func (p *Provider) tgwPeeringWriter(a model.Access, region string) sdkTGWPeering {
	c := ec2.NewFromConfig(p.ConfigFor(a, region))
	return sdkTGWPeering{c.CreateTransitGatewayPeeringAttachment, c.AcceptTransitGatewayPeeringAttachment, c.DeleteTransitGatewayPeeringAttachment,
		c.CreateTransitGatewayRoute, c.ReplaceTransitGatewayRoute, c.DeleteTransitGatewayRoute, tgwWrites(c)}
}

type tgwPeeringExecutor struct{ p *Provider }

func (e tgwPeeringExecutor) Execute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	switch ch.Kind {
	case plan.KindTGWPeering:
		return e.peering(ctx, ch, known)
	case plan.KindTGWRoute:
		return e.route(ctx, ch, known)
	}
	return apply.Outcome{}, fmt.Errorf("unsupported kind %s", ch.Kind)
}

// peeringState is a peering attachment's state as the region's side reports it ("" while not visible).
func peeringState(ctx context.Context, c sdkTGWPeering, id string) (string, error) {
	got, err := c.read.DescribeTransitGatewayPeeringAttachments(ctx, &ec2.DescribeTransitGatewayPeeringAttachmentsInput{TransitGatewayAttachmentIds: []string{id}})
	if HasCode(err, codeTGWAttachNotFound) {
		return "deleted", nil
	}
	if err != nil || len(got.TransitGatewayPeeringAttachments) == 0 {
		return "", err
	}
	return string(got.TransitGatewayPeeringAttachments[0].State), nil
}

// peering requests the peering attachment from the first region's gateway, accepts it in the other,
// associates it on both sides and records it; or deletes meshd's.
func (e tgwPeeringExecutor) peering(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	p := e.p
	if ch.Action == plan.Delete {
		a := ch.Before.(plan.TGWPeering)
		c := p.tgwPeeringWriter(a.Access, a.Region)
		forget := apply.Outcome{Record: func(st *state.State) { plan.DropTGWRecord(st, ch.Kind, ch.Address) }}
		got, err := c.read.DescribeTransitGatewayPeeringAttachments(ctx, &ec2.DescribeTransitGatewayPeeringAttachmentsInput{TransitGatewayAttachmentIds: []string{a.ID}})
		if HasCode(err, codeTGWAttachNotFound) || (err == nil && (len(got.TransitGatewayPeeringAttachments) == 0 ||
			(model.TGWAttachment{State: string(got.TransitGatewayPeeringAttachments[0].State)}).Gone())) {
			return forget, nil
		}
		if err != nil {
			return apply.Outcome{}, fmt.Errorf("describing %s: %w", a.ID, err)
		}
		if now := got.TransitGatewayPeeringAttachments[0]; now.RequesterTgwInfo == nil || now.AccepterTgwInfo == nil ||
			!samePair(aws.ToString(now.RequesterTgwInfo.TransitGatewayId), aws.ToString(now.AccepterTgwInfo.TransitGatewayId), a.GatewayID, a.PeerGatewayID) {
			return apply.Outcome{}, fmt.Errorf("%w: peering attachment %s no longer joins %s and %s; left alone", ErrConflict, a.ID, a.GatewayID, a.PeerGatewayID)
		}
		if _, err := c.deleteTransitGatewayPeeringAttachment(ctx, &ec2.DeleteTransitGatewayPeeringAttachmentInput{TransitGatewayAttachmentId: aws.String(a.ID)}); err != nil && !HasCode(err, codeTGWAttachNotFound) {
			return apply.Outcome{}, fmt.Errorf("deleting %s: %w", a.ID, err)
		}
		return forget, nil
	}
	want := ch.After.(plan.TGWPeering)
	var ids [4]string
	for i, ref := range [][2]string{{want.GatewayID, want.GatewayAddress}, {want.PeerGatewayID, want.PeerGatewayAddress},
		{want.RouteTableID, want.RouteTableAddress}, {want.PeerRouteTableID, want.PeerRouteTableAddress}} {
		var err error
		if ids[i], err = idOf(ref[0], ref[1], known); err != nil {
			return apply.Outcome{}, err
		}
	}
	gw, peerGW, table, peerTable := ids[0], ids[1], ids[2], ids[3]
	// meshd requests from the region that sorts first (want.Region) and accepts in the other.
	here, there := p.tgwPeeringWriter(want.Access, want.Region), p.tgwPeeringWriter(want.PeerAccess, want.PeerRegion)
	var before plan.TGWPeering
	if ch.Action == plan.Update {
		before = ch.Before.(plan.TGWPeering)
	}
	id := want.ID
	if id == "" {
		// The API wants the peer gateway's account, which a gateway made in this apply only says when read.
		peer, err := there.read.DescribeTransitGateways(ctx, &ec2.DescribeTransitGatewaysInput{TransitGatewayIds: []string{peerGW}})
		if err != nil || len(peer.TransitGateways) == 0 {
			return apply.Outcome{}, fmt.Errorf("reading the account of %s (%s): %v", peerGW, want.PeerRegion, err)
		}
		out, err := here.createTransitGatewayPeeringAttachment(ctx, &ec2.CreateTransitGatewayPeeringAttachmentInput{
			TransitGatewayId: aws.String(gw), PeerTransitGatewayId: aws.String(peerGW), PeerRegion: aws.String(want.PeerRegion),
			PeerAccountId: peer.TransitGateways[0].OwnerId,
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeTransitGatewayAttachment,
				Tags: p.tags(ch.Address, "meshd-"+p.opts.Mesh+"-"+want.Region+"-"+want.PeerRegion)}}})
		if err != nil {
			return apply.Outcome{}, fmt.Errorf("peering %s with %s: %w", gw, peerGW, err)
		}
		id = aws.ToString(out.TransitGatewayPeeringAttachment.TransitGatewayAttachmentId)
	}
	rec := plan.TGWRecord{Region: want.Region, GatewayID: gw, ID: id}
	// Recorded from here on, also when what follows fails: the attachment is meshd's.
	out := apply.Outcome{ID: id, Record: func(st *state.State) { plan.SetTGWRecord(st, ch.Kind, ch.Address, rec) }}
	if err := e.accept(ctx, ch.Address, id, there); err != nil {
		return out, err
	}
	for _, side := range []struct {
		c           sdkTGWPeering
		gateway, rt string
		already     bool
	}{{here, gw, table, before.Associated}, {there, peerGW, peerTable, before.PeerAssociated}} {
		if side.already {
			continue
		}
		_, err := side.c.associateTransitGatewayRouteTable(ctx, &ec2.AssociateTransitGatewayRouteTableInput{
			TransitGatewayAttachmentId: aws.String(id), TransitGatewayRouteTableId: aws.String(side.rt)})
		if HasCode(err, codeAlreadyAssociated) {
			err = alreadyAssociatedWith(ctx, side.c.sdkTGWWrite, id, side.gateway, side.rt)
		}
		if err != nil {
			return out, fmt.Errorf("associating %s with %s: %w", id, side.rt, err)
		}
	}
	return out, nil
}

// accept accepts the peering attachment in the accepter's region once it waits for acceptance there, and
// waits until it is available.
func (e tgwPeeringExecutor) accept(ctx context.Context, address, id string, accepter sdkTGWPeering) error {
	accepted := false
	return e.p.waitTGW(ctx, address, func(ctx context.Context) (string, error) {
		s, err := peeringState(ctx, accepter, id)
		if err != nil || s != string(ec2types.TransitGatewayAttachmentStatePendingAcceptance) || accepted {
			return s, err
		}
		if _, err := accepter.acceptTransitGatewayPeeringAttachment(ctx, &ec2.AcceptTransitGatewayPeeringAttachmentInput{TransitGatewayAttachmentId: aws.String(id)}); err != nil {
			return s, fmt.Errorf("accepting %s: %w", id, err)
		}
		accepted = true
		return peeringState(ctx, accepter, id)
	})
}

func samePair(a, b, x, y string) bool { return (a == x && b == y) || (a == y && b == x) }

// route makes, replaces or deletes a static route of a gateway route table and records it.
func (e tgwPeeringExecutor) route(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	p := e.p
	if ch.Action == plan.Delete {
		r := ch.Before.(plan.TGWRoute)
		c := p.tgwPeeringWriter(r.Access, r.Region)
		forget := apply.Outcome{Record: func(st *state.State) { plan.DropTGWRecord(st, ch.Kind, ch.Address) }}
		now, found, err := staticRoute(ctx, c, r.RouteTableID, r.DestinationCIDR)
		switch {
		case err != nil:
			return apply.Outcome{}, err
		case !found:
			return forget, nil
		case now != r.AttachmentID:
			return apply.Outcome{}, fmt.Errorf("%w: gateway route table %s now routes %s to %s, not %s as planned; left alone",
				ErrConflict, r.RouteTableID, r.DestinationCIDR, orDash(now), orDash(r.AttachmentID))
		}
		if _, err := c.deleteTransitGatewayRoute(ctx, &ec2.DeleteTransitGatewayRouteInput{TransitGatewayRouteTableId: aws.String(r.RouteTableID),
			DestinationCidrBlock: aws.String(r.DestinationCIDR)}); err != nil && !HasCode(err, codeRouteNotFound) {
			return apply.Outcome{}, fmt.Errorf("deleting the route to %s in %s: %w", r.DestinationCIDR, r.RouteTableID, err)
		}
		return forget, nil
	}
	r := ch.After.(plan.TGWRoute)
	table, err := idOf(r.RouteTableID, r.RouteTableAddress, known)
	if err != nil {
		return apply.Outcome{}, err
	}
	att, err := idOf(r.AttachmentID, r.AttachmentAddress, known)
	if err != nil {
		return apply.Outcome{}, err
	}
	c := p.tgwPeeringWriter(r.Access, r.Region)
	if ch.Action == plan.Create {
		_, err = c.createTransitGatewayRoute(ctx, &ec2.CreateTransitGatewayRouteInput{TransitGatewayRouteTableId: aws.String(table),
			DestinationCidrBlock: aws.String(r.DestinationCIDR), TransitGatewayAttachmentId: aws.String(att)})
		if err != nil {
			if now, found, serr := staticRoute(ctx, c, table, r.DestinationCIDR); serr == nil && found && now == att {
				err = nil // made by an earlier attempt of this call
			}
		}
	} else {
		before := ch.Before.(plan.TGWRoute)
		now, found, serr := staticRoute(ctx, c, table, r.DestinationCIDR)
		switch {
		case serr != nil:
			err = serr
		case found && now != before.AttachmentID && now != att:
			err = fmt.Errorf("%w: gateway route table %s now routes %s to %s, not %s as planned; left alone", ErrConflict, table, r.DestinationCIDR, orDash(now), orDash(before.AttachmentID))
		case !found:
			_, err = c.createTransitGatewayRoute(ctx, &ec2.CreateTransitGatewayRouteInput{TransitGatewayRouteTableId: aws.String(table),
				DestinationCidrBlock: aws.String(r.DestinationCIDR), TransitGatewayAttachmentId: aws.String(att)})
		default:
			_, err = c.replaceTransitGatewayRoute(ctx, &ec2.ReplaceTransitGatewayRouteInput{TransitGatewayRouteTableId: aws.String(table),
				DestinationCidrBlock: aws.String(r.DestinationCIDR), TransitGatewayAttachmentId: aws.String(att)})
		}
	}
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("route to %s in %s: %w", r.DestinationCIDR, table, err)
	}
	rec := plan.TGWRecord{Region: r.Region, ID: att, RouteTableID: table, DestinationCIDR: r.DestinationCIDR}
	return apply.Outcome{Record: func(st *state.State) { plan.SetTGWRecord(st, ch.Kind, ch.Address, rec) }}, nil
}

// staticRoute is the attachment a gateway route table's static route to cidr goes to ("" for a
// blackhole), and whether there is one.
func staticRoute(ctx context.Context, c sdkTGWPeering, table, cidr string) (string, bool, error) {
	out, err := c.read.SearchTransitGatewayRoutes(ctx, &ec2.SearchTransitGatewayRoutesInput{TransitGatewayRouteTableId: aws.String(table),
		Filters: []ec2types.Filter{filter("route-search.exact-match", []string{cidr}), filter("type", []string{"static"})}})
	if HasCode(err, codeTGWRTNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("searching %s for the route to %s: %w", table, cidr, err)
	}
	for _, r := range out.Routes {
		if aws.ToString(r.DestinationCidrBlock) != cidr || r.State == ec2types.TransitGatewayRouteStateDeleted {
			continue
		}
		if len(r.TransitGatewayAttachments) == 0 {
			return "", true, nil
		}
		return aws.ToString(r.TransitGatewayAttachments[0].TransitGatewayAttachmentId), true, nil
	}
	return "", false, nil
}

func init() {
	executors.Register(func(p *Provider) apply.Executor { return tgwPeeringExecutor{p} }, plan.KindTGWPeering, plan.KindTGWRoute)
}

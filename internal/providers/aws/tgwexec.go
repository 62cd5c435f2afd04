package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/poll"
	"github.com/meshd-io/meshd/internal/state"
)

// The executors of the Transit Gateway kinds (plan/transitgateway.go). Like sdkTGW they keep method values
// of the operations they call only (see sdk.go).
type sdkTGWWrite struct {
	createTransitGateway                      op[ec2.CreateTransitGatewayInput, ec2.CreateTransitGatewayOutput, ec2.Options]
	deleteTransitGateway                      op[ec2.DeleteTransitGatewayInput, ec2.DeleteTransitGatewayOutput, ec2.Options]
	createTransitGatewayRouteTable            op[ec2.CreateTransitGatewayRouteTableInput, ec2.CreateTransitGatewayRouteTableOutput, ec2.Options]
	deleteTransitGatewayRouteTable            op[ec2.DeleteTransitGatewayRouteTableInput, ec2.DeleteTransitGatewayRouteTableOutput, ec2.Options]
	createTransitGatewayVpcAttachment         op[ec2.CreateTransitGatewayVpcAttachmentInput, ec2.CreateTransitGatewayVpcAttachmentOutput, ec2.Options]
	deleteTransitGatewayVpcAttachment         op[ec2.DeleteTransitGatewayVpcAttachmentInput, ec2.DeleteTransitGatewayVpcAttachmentOutput, ec2.Options]
	associateTransitGatewayRouteTable         op[ec2.AssociateTransitGatewayRouteTableInput, ec2.AssociateTransitGatewayRouteTableOutput, ec2.Options]
	enableTransitGatewayRouteTablePropagation op[ec2.EnableTransitGatewayRouteTablePropagationInput, ec2.EnableTransitGatewayRouteTablePropagationOutput, ec2.Options]
	describeSubnets                           op[ec2.DescribeSubnetsInput, ec2.DescribeSubnetsOutput, ec2.Options]
	read                                      TransitGatewayAPI
}

func (p *Provider) tgwWriter(a model.Access, region string) sdkTGWWrite {
	return tgwWrites(ec2.NewFromConfig(p.ConfigFor(a, region)))
}

// tgwWrites keeps the operations of sdkTGWWrite of one client.
func tgwWrites(c *ec2.Client) sdkTGWWrite {
	return sdkTGWWrite{c.CreateTransitGateway, c.DeleteTransitGateway, c.CreateTransitGatewayRouteTable, c.DeleteTransitGatewayRouteTable,
		c.CreateTransitGatewayVpcAttachment, c.DeleteTransitGatewayVpcAttachment, c.AssociateTransitGatewayRouteTable,
		c.EnableTransitGatewayRouteTablePropagation, c.DescribeSubnets, tgwReads(c)}
}

const (
	codeTGWNotFound        = "InvalidTransitGatewayID.NotFound"
	codeTGWRTNotFound      = "InvalidRouteTableID.NotFound"
	codeTGWAttachNotFound  = "InvalidTransitGatewayAttachmentID.NotFound"
	codeAlreadyAssociated  = "Resource.AlreadyAssociated"
	codeTGWPropagationDupe = "TransitGatewayRouteTablePropagation.Duplicate"
)

type tgwExecutor struct{ p *Provider }

func (e tgwExecutor) Execute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	switch ch.Kind {
	case plan.KindTransitGateway:
		return apply.WithID(e.gateway(ctx, ch))
	case plan.KindTGWRouteTable:
		return apply.WithID(e.routeTable(ctx, ch, known))
	case plan.KindTGWAttachment:
		return e.attachment(ctx, ch, known)
	case plan.KindTGWVPCRoute:
		return e.vpcRoute(ctx, ch, known)
	}
	return apply.Outcome{}, fmt.Errorf("unsupported kind %s", ch.Kind)
}

// idOf is an object's ID: planned, or made earlier in this apply.
func idOf(id, address string, known apply.Known) (string, error) {
	if id != "" {
		return id, nil
	}
	if got, ok := known(address); ok {
		return got, nil
	}
	return "", fmt.Errorf("the ID of %s is not known: it was not created in this apply", address)
}

func (e tgwExecutor) gateway(ctx context.Context, ch plan.Change) (string, error) {
	p := e.p
	switch ch.Action {
	case plan.Create:
		g := ch.After.(plan.TransitGateway)
		c := p.tgwWriter(g.Access, g.Region)
		out, err := c.createTransitGateway(ctx, &ec2.CreateTransitGatewayInput{
			Description: aws.String("meshd " + p.opts.Mesh),
			// meshd associates and propagates in its own route table only: nothing lands in a default one.
			Options: &ec2types.TransitGatewayRequestOptions{DefaultRouteTableAssociation: ec2types.DefaultRouteTableAssociationValueDisable,
				DefaultRouteTablePropagation: ec2types.DefaultRouteTablePropagationValueDisable,
				AutoAcceptSharedAttachments:  ec2types.AutoAcceptSharedAttachmentsValueDisable},
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeTransitGateway,
				Tags: p.tags(ch.Address, "meshd-"+p.opts.Mesh+"-"+g.Region)}}})
		if err != nil {
			return "", fmt.Errorf("creating the transit gateway of %s: %w", g.Region, err)
		}
		id := aws.ToString(out.TransitGateway.TransitGatewayId)
		return id, p.waitTGW(ctx, ch.Address, func(ctx context.Context) (string, error) {
			got, err := c.read.DescribeTransitGateways(ctx, &ec2.DescribeTransitGatewaysInput{TransitGatewayIds: []string{id}})
			if err != nil || len(got.TransitGateways) == 0 {
				return "", err
			}
			return string(got.TransitGateways[0].State), nil
		})
	case plan.Delete:
		g := ch.Before.(plan.TransitGateway)
		c := p.tgwWriter(g.Access, g.Region)
		got, err := c.read.DescribeTransitGateways(ctx, &ec2.DescribeTransitGatewaysInput{TransitGatewayIds: []string{g.ID}})
		if HasCode(err, codeTGWNotFound) || (err == nil && (len(got.TransitGateways) == 0 || model.TransitGateway{State: string(got.TransitGateways[0].State)}.Gone())) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("describing %s: %w", g.ID, err)
		}
		if !model.TaggedBy(tagMap(got.TransitGateways[0].Tags), p.opts.Mesh) {
			return "", fmt.Errorf("%w: transit gateway %s no longer carries this mesh's tag; left alone", ErrConflict, g.ID)
		}
		if _, err := c.deleteTransitGateway(ctx, &ec2.DeleteTransitGatewayInput{TransitGatewayId: aws.String(g.ID)}); err != nil && !HasCode(err, codeTGWNotFound) {
			return "", fmt.Errorf("deleting %s: %w", g.ID, err)
		}
		return "", nil
	}
	return "", fmt.Errorf("unsupported action %q", ch.Action)
}

// waitTGW waits until a gateway or attachment is available; state returns "" while it is not visible.
func (p *Provider) waitTGW(ctx context.Context, address string, state func(context.Context) (string, error)) error {
	var last string
	err := poll.Until(ctx, p.waitOptions(), func(ctx context.Context) (bool, error) {
		s, err := state(ctx)
		if err != nil {
			return false, err
		}
		last = s
		switch s {
		case "available":
			return true, nil
		case "failed", "deleted", "deleting", "rejected", "failing":
			return false, fmt.Errorf("%s is %s", address, s)
		}
		return false, nil
	}, func(waited time.Duration) { p.progress("%s: still %s [%s elapsed]", address, orDash(last), waited) })
	if ended, ok := errors.AsType[*poll.Ended](err); ok {
		return ended.Err
	}
	return err
}

func (e tgwExecutor) routeTable(ctx context.Context, ch plan.Change, known apply.Known) (string, error) {
	p := e.p
	switch ch.Action {
	case plan.Create:
		t := ch.After.(plan.TGWRouteTable)
		gw, err := idOf(t.GatewayID, t.GatewayAddress, known)
		if err != nil {
			return "", err
		}
		out, err := p.tgwWriter(t.Access, t.Region).createTransitGatewayRouteTable(ctx, &ec2.CreateTransitGatewayRouteTableInput{TransitGatewayId: aws.String(gw),
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeTransitGatewayRouteTable,
				Tags: p.tags(ch.Address, "meshd-"+p.opts.Mesh+"-"+t.Region)}}})
		if err != nil {
			return "", fmt.Errorf("creating a route table in %s: %w", gw, err)
		}
		return aws.ToString(out.TransitGatewayRouteTable.TransitGatewayRouteTableId), nil
	case plan.Delete:
		t := ch.Before.(plan.TGWRouteTable)
		c := p.tgwWriter(t.Access, t.Region)
		got, err := c.read.DescribeTransitGatewayRouteTables(ctx, &ec2.DescribeTransitGatewayRouteTablesInput{TransitGatewayRouteTableIds: []string{t.ID}})
		if HasCode(err, codeTGWRTNotFound) || (err == nil && (len(got.TransitGatewayRouteTables) == 0 || got.TransitGatewayRouteTables[0].State == ec2types.TransitGatewayRouteTableStateDeleted)) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("describing %s: %w", t.ID, err)
		}
		if !model.TaggedBy(tagMap(got.TransitGatewayRouteTables[0].Tags), p.opts.Mesh) {
			return "", fmt.Errorf("%w: gateway route table %s no longer carries this mesh's tag; left alone", ErrConflict, t.ID)
		}
		if _, err := c.deleteTransitGatewayRouteTable(ctx, &ec2.DeleteTransitGatewayRouteTableInput{TransitGatewayRouteTableId: aws.String(t.ID)}); err != nil && !HasCode(err, codeTGWRTNotFound) {
			return "", fmt.Errorf("deleting %s: %w", t.ID, err)
		}
		return "", nil
	}
	return "", fmt.Errorf("unsupported action %q", ch.Action)
}

// attachment creates, associates and propagates a VPC attachment, or deletes one, and records it.
func (e tgwExecutor) attachment(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	p := e.p
	if ch.Action == plan.Delete {
		a := ch.Before.(plan.TGWAttachment)
		c := p.tgwWriter(a.Access, a.Region)
		forget := apply.Outcome{Record: func(st *state.State) { plan.DropTGWRecord(st, ch.Kind, ch.Address) }}
		got, err := c.read.DescribeTransitGatewayAttachments(ctx, &ec2.DescribeTransitGatewayAttachmentsInput{TransitGatewayAttachmentIds: []string{a.ID}})
		if HasCode(err, codeTGWAttachNotFound) || (err == nil && (len(got.TransitGatewayAttachments) == 0 ||
			(model.TGWAttachment{State: string(got.TransitGatewayAttachments[0].State)}).Gone())) {
			return forget, nil
		}
		if err != nil {
			return apply.Outcome{}, fmt.Errorf("describing %s: %w", a.ID, err)
		}
		if now := got.TransitGatewayAttachments[0]; aws.ToString(now.ResourceId) != a.VPCID || aws.ToString(now.TransitGatewayId) != a.GatewayID {
			return apply.Outcome{}, fmt.Errorf("%w: attachment %s is not %s's to %s any more; left alone", ErrConflict, a.ID, a.VPCID, a.GatewayID)
		}
		if _, err := c.deleteTransitGatewayVpcAttachment(ctx, &ec2.DeleteTransitGatewayVpcAttachmentInput{TransitGatewayAttachmentId: aws.String(a.ID)}); err != nil && !HasCode(err, codeTGWAttachNotFound) {
			return apply.Outcome{}, fmt.Errorf("deleting %s: %w", a.ID, err)
		}
		return forget, nil
	}
	a := ch.After.(plan.TGWAttachment)
	c := p.tgwWriter(a.Access, a.Region)
	gw, err := idOf(a.GatewayID, a.GatewayAddress, known)
	if err != nil {
		return apply.Outcome{}, err
	}
	table, err := idOf(a.RouteTableID, a.RouteTableAddress, known)
	if err != nil {
		return apply.Outcome{}, err
	}
	id := a.ID
	var before plan.TGWAttachment
	if ch.Action == plan.Update {
		before = ch.Before.(plan.TGWAttachment)
	}
	if id == "" {
		subnets := a.Subnets
		if len(subnets) == 0 {
			if subnets, err = pickSubnets(ctx, c, a.VPCID, a.PreferredSubnets); err != nil {
				return apply.Outcome{}, err
			}
		}
		out, err := c.createTransitGatewayVpcAttachment(ctx, &ec2.CreateTransitGatewayVpcAttachmentInput{TransitGatewayId: aws.String(gw),
			VpcId: aws.String(a.VPCID), SubnetIds: subnets,
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeTransitGatewayAttachment,
				Tags: p.tags(ch.Address, "meshd-"+p.opts.Mesh+"-"+a.Cluster)}}})
		if err != nil {
			return apply.Outcome{}, fmt.Errorf("attaching %s to %s: %w", a.VPCID, gw, err)
		}
		id = aws.ToString(out.TransitGatewayVpcAttachment.TransitGatewayAttachmentId)
	}
	rec := plan.TGWRecord{Region: a.Region, VPCID: a.VPCID, GatewayID: gw, ID: id}
	// Recorded from here on, also when the association below fails: the attachment is meshd's.
	out := apply.Outcome{ID: id, Record: func(st *state.State) { plan.SetTGWRecord(st, ch.Kind, ch.Address, rec) }}
	if err := p.waitTGW(ctx, ch.Address, func(ctx context.Context) (string, error) {
		got, err := c.read.DescribeTransitGatewayAttachments(ctx, &ec2.DescribeTransitGatewayAttachmentsInput{TransitGatewayAttachmentIds: []string{id}})
		if err != nil || len(got.TransitGatewayAttachments) == 0 {
			return "", err
		}
		return string(got.TransitGatewayAttachments[0].State), nil
	}); err != nil {
		return out, err
	}
	if !before.Associated {
		_, err := c.associateTransitGatewayRouteTable(ctx, &ec2.AssociateTransitGatewayRouteTableInput{
			TransitGatewayAttachmentId: aws.String(id), TransitGatewayRouteTableId: aws.String(table)})
		if HasCode(err, codeAlreadyAssociated) {
			err = alreadyAssociatedWith(ctx, c, id, gw, table)
		}
		if err != nil {
			return out, fmt.Errorf("associating %s with %s: %w", id, table, err)
		}
	}
	if !before.Propagating {
		_, err := c.enableTransitGatewayRouteTablePropagation(ctx, &ec2.EnableTransitGatewayRouteTablePropagationInput{
			TransitGatewayAttachmentId: aws.String(id), TransitGatewayRouteTableId: aws.String(table)})
		if err != nil && !HasCode(err, codeTGWPropagationDupe) {
			return out, fmt.Errorf("propagating %s to %s: %w", id, table, err)
		}
	}
	return out, nil
}

// alreadyAssociatedWith tells the two reasons AWS refuses an association with Resource.AlreadyAssociated
// apart: a retried call of meshd's own (the attachment is in table: done), or an association with another
// table, which a gateway with default route table association on makes by itself. meshd does not move an
// attachment out of someone else's table: it says which and what to do.
func alreadyAssociatedWith(ctx context.Context, c sdkTGWWrite, attachment, gateway, table string) error {
	got, err := c.read.GetTransitGatewayRouteTableAssociations(ctx, &ec2.GetTransitGatewayRouteTableAssociationsInput{
		TransitGatewayRouteTableId: aws.String(table),
		Filters:                    []ec2types.Filter{{Name: aws.String("transit-gateway-attachment-id"), Values: []string{attachment}}}})
	if err != nil {
		return fmt.Errorf("attachment already associated, and reading %s's associations: %w", table, err)
	}
	for _, a := range got.Associations {
		if aws.ToString(a.TransitGatewayAttachmentId) == attachment {
			return nil
		}
	}
	return fmt.Errorf("%w: attachment %s is already associated with another route table of %s (the gateway's default "+
		"association?); meshd does not move it out of a table it does not own: disassociate it there, or name that table "+
		"with route_table_id", ErrConflict, attachment, gateway)
}

// pickSubnets picks one subnet per availability zone of the VPC: the gateway reaches a zone's workloads only
// through an attachment subnet in that zone. A subnet of the member's route tables is preferred, then the
// lowest ID, so the choice is stable.
func pickSubnets(ctx context.Context, c sdkTGWWrite, vpc string, preferred []string) ([]string, error) {
	out, err := c.describeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{filter("vpc-id", []string{vpc})}})
	if err != nil {
		return nil, fmt.Errorf("listing the subnets of %s: %w", vpc, err)
	}
	subnets := out.Subnets
	slices.SortFunc(subnets, func(a, b ec2types.Subnet) int {
		pa, pb := slices.Contains(preferred, aws.ToString(a.SubnetId)), slices.Contains(preferred, aws.ToString(b.SubnetId))
		if pa != pb {
			if pa {
				return -1
			}
			return 1
		}
		return compareStrings(aws.ToString(a.SubnetId), aws.ToString(b.SubnetId))
	})
	byZone := map[string]bool{}
	var picked []string
	for _, s := range subnets {
		if zone := aws.ToString(s.AvailabilityZone); !byZone[zone] {
			byZone[zone] = true
			picked = append(picked, aws.ToString(s.SubnetId))
		}
	}
	if len(picked) == 0 {
		return nil, fmt.Errorf("VPC %s has no subnet to attach to a transit gateway", vpc)
	}
	slices.Sort(picked)
	return picked, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// vpcRoute makes, replaces or deletes a member route table's route to the gateway and records it; a
// replaced peering route's record goes (it is the gateway's route now).
func (e tgwExecutor) vpcRoute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	p := e.p
	if ch.Action == plan.Delete {
		r := ch.Before.(plan.TGWVPCRoute)
		c := p.ec2For(r.Access, r.Region)
		forget := apply.Outcome{Record: func(st *state.State) { plan.DropTGWRecord(st, ch.Kind, ch.Address) }}
		target, err := currentTarget(ctx, c, r.RouteTableID, r.DestinationCIDR)
		switch {
		case errors.Is(err, errRouteGone):
			return forget, nil
		case err != nil:
			return apply.Outcome{}, err
		case target != r.GatewayID:
			return apply.Outcome{}, fmt.Errorf("%w: route table %s now routes %s to %s, not %s as planned; left alone",
				ErrConflict, r.RouteTableID, r.DestinationCIDR, target, r.GatewayID)
		}
		if _, err := c.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(r.RouteTableID),
			DestinationCidrBlock: aws.String(r.DestinationCIDR)}); err != nil && !HasCode(err, codeRouteNotFound) {
			return apply.Outcome{}, fmt.Errorf("deleting route to %s in %s: %w", r.DestinationCIDR, r.RouteTableID, err)
		}
		return forget, nil
	}
	r := ch.After.(plan.TGWVPCRoute)
	gw, err := idOf(r.GatewayID, r.GatewayAddress, known)
	if err != nil {
		return apply.Outcome{}, err
	}
	c := p.ec2For(r.Access, r.Region)
	if ch.Action == plan.Create {
		_, err = c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(r.RouteTableID),
			DestinationCidrBlock: aws.String(r.DestinationCIDR), TransitGatewayId: aws.String(gw)})
		if HasCode(err, codeRouteExists) {
			if target, terr := currentTarget(ctx, c, r.RouteTableID, r.DestinationCIDR); terr == nil && target == gw {
				err = nil // made by an earlier attempt of this call
			}
		}
	} else {
		before := ch.Before.(plan.TGWVPCRoute)
		target, terr := currentTarget(ctx, c, r.RouteTableID, r.DestinationCIDR)
		switch {
		case terr != nil:
			err = terr
		case target != before.Target && target != before.GatewayID:
			err = fmt.Errorf("%w: route table %s now routes %s to %s, not %s as planned; left alone", ErrConflict, r.RouteTableID, r.DestinationCIDR, target, before.Target)
		default:
			_, err = c.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: aws.String(r.RouteTableID),
				DestinationCidrBlock: aws.String(r.DestinationCIDR), TransitGatewayId: aws.String(gw)})
		}
	}
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("route to %s in %s: %w", r.DestinationCIDR, r.RouteTableID, err)
	}
	rec := plan.TGWRecord{Region: r.Region, VPCID: r.VPCID, GatewayID: gw, RouteTableID: r.RouteTableID, DestinationCIDR: r.DestinationCIDR}
	return apply.Outcome{Record: func(st *state.State) {
		plan.SetTGWRecord(st, ch.Kind, ch.Address, rec)
		st.RemoveRoute(r.RouteTableID, r.DestinationCIDR)
	}}, nil
}

// currentTarget is what a route table routes a destination to now (a peering, a gateway, ...), or
// errRouteGone.
func currentTarget(ctx context.Context, c EC2API, table, cidr string) (string, error) {
	out, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{table}})
	if err != nil {
		return "", err
	}
	for _, t := range out.RouteTables {
		for _, r := range t.Routes {
			if aws.ToString(r.DestinationCidrBlock) == cidr {
				if id := aws.ToString(r.VpcPeeringConnectionId); id != "" {
					return id, nil
				}
				return routeTarget(r), nil
			}
		}
	}
	return "", errRouteGone
}

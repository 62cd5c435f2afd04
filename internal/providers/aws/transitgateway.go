package aws

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
)

// TransitGatewayAPI is the part of the EC2 client that reads Transit Gateways (topology =
// "transit_gateway"). It is apart from EC2API so that the stubs of the peering tests need not grow.
type TransitGatewayAPI interface {
	DescribeTransitGateways(context.Context, *ec2.DescribeTransitGatewaysInput, ...func(*ec2.Options)) (*ec2.DescribeTransitGatewaysOutput, error)
	DescribeTransitGatewayRouteTables(context.Context, *ec2.DescribeTransitGatewayRouteTablesInput, ...func(*ec2.Options)) (*ec2.DescribeTransitGatewayRouteTablesOutput, error)
	DescribeTransitGatewayAttachments(context.Context, *ec2.DescribeTransitGatewayAttachmentsInput, ...func(*ec2.Options)) (*ec2.DescribeTransitGatewayAttachmentsOutput, error)
	DescribeTransitGatewayPeeringAttachments(context.Context, *ec2.DescribeTransitGatewayPeeringAttachmentsInput, ...func(*ec2.Options)) (*ec2.DescribeTransitGatewayPeeringAttachmentsOutput, error)
	SearchTransitGatewayRoutes(context.Context, *ec2.SearchTransitGatewayRoutesInput, ...func(*ec2.Options)) (*ec2.SearchTransitGatewayRoutesOutput, error)
	GetTransitGatewayRouteTablePropagations(context.Context, *ec2.GetTransitGatewayRouteTablePropagationsInput, ...func(*ec2.Options)) (*ec2.GetTransitGatewayRouteTablePropagationsOutput, error)
	GetTransitGatewayRouteTableAssociations(context.Context, *ec2.GetTransitGatewayRouteTableAssociationsInput, ...func(*ec2.Options)) (*ec2.GetTransitGatewayRouteTableAssociationsOutput, error)
}

// sdkTGW keeps method values of the operations of TransitGatewayAPI only (see sdk.go for why).
type sdkTGW struct {
	describeTransitGateways                  op[ec2.DescribeTransitGatewaysInput, ec2.DescribeTransitGatewaysOutput, ec2.Options]
	describeTransitGatewayRouteTables        op[ec2.DescribeTransitGatewayRouteTablesInput, ec2.DescribeTransitGatewayRouteTablesOutput, ec2.Options]
	describeTransitGatewayAttachments        op[ec2.DescribeTransitGatewayAttachmentsInput, ec2.DescribeTransitGatewayAttachmentsOutput, ec2.Options]
	describeTransitGatewayPeeringAttachments op[ec2.DescribeTransitGatewayPeeringAttachmentsInput, ec2.DescribeTransitGatewayPeeringAttachmentsOutput, ec2.Options]
	searchTransitGatewayRoutes               op[ec2.SearchTransitGatewayRoutesInput, ec2.SearchTransitGatewayRoutesOutput, ec2.Options]
	getTransitGatewayRouteTablePropagations  op[ec2.GetTransitGatewayRouteTablePropagationsInput, ec2.GetTransitGatewayRouteTablePropagationsOutput, ec2.Options]
	getTransitGatewayRouteTableAssociations  op[ec2.GetTransitGatewayRouteTableAssociationsInput, ec2.GetTransitGatewayRouteTableAssociationsOutput, ec2.Options]
}

func newTGW(cfg aws.Config) TransitGatewayAPI { return tgwReads(ec2.NewFromConfig(cfg)) }

// tgwReads keeps the reading operations of a client the caller has made already.
func tgwReads(c *ec2.Client) sdkTGW {
	return sdkTGW{c.DescribeTransitGateways, c.DescribeTransitGatewayRouteTables, c.DescribeTransitGatewayAttachments,
		c.DescribeTransitGatewayPeeringAttachments, c.SearchTransitGatewayRoutes, c.GetTransitGatewayRouteTablePropagations,
		c.GetTransitGatewayRouteTableAssociations}
}

func (s sdkTGW) DescribeTransitGateways(ctx context.Context, in *ec2.DescribeTransitGatewaysInput, o ...func(*ec2.Options)) (*ec2.DescribeTransitGatewaysOutput, error) {
	return s.describeTransitGateways(ctx, in, o...)
}

func (s sdkTGW) DescribeTransitGatewayRouteTables(ctx context.Context, in *ec2.DescribeTransitGatewayRouteTablesInput, o ...func(*ec2.Options)) (*ec2.DescribeTransitGatewayRouteTablesOutput, error) {
	return s.describeTransitGatewayRouteTables(ctx, in, o...)
}

func (s sdkTGW) DescribeTransitGatewayAttachments(ctx context.Context, in *ec2.DescribeTransitGatewayAttachmentsInput, o ...func(*ec2.Options)) (*ec2.DescribeTransitGatewayAttachmentsOutput, error) {
	return s.describeTransitGatewayAttachments(ctx, in, o...)
}

func (s sdkTGW) DescribeTransitGatewayPeeringAttachments(ctx context.Context, in *ec2.DescribeTransitGatewayPeeringAttachmentsInput, o ...func(*ec2.Options)) (*ec2.DescribeTransitGatewayPeeringAttachmentsOutput, error) {
	return s.describeTransitGatewayPeeringAttachments(ctx, in, o...)
}

func (s sdkTGW) SearchTransitGatewayRoutes(ctx context.Context, in *ec2.SearchTransitGatewayRoutesInput, o ...func(*ec2.Options)) (*ec2.SearchTransitGatewayRoutesOutput, error) {
	return s.searchTransitGatewayRoutes(ctx, in, o...)
}

func (s sdkTGW) GetTransitGatewayRouteTablePropagations(ctx context.Context, in *ec2.GetTransitGatewayRouteTablePropagationsInput, o ...func(*ec2.Options)) (*ec2.GetTransitGatewayRouteTablePropagationsOutput, error) {
	return s.getTransitGatewayRouteTablePropagations(ctx, in, o...)
}

func (s sdkTGW) GetTransitGatewayRouteTableAssociations(ctx context.Context, in *ec2.GetTransitGatewayRouteTableAssociationsInput, o ...func(*ec2.Options)) (*ec2.GetTransitGatewayRouteTableAssociationsOutput, error) {
	return s.getTransitGatewayRouteTableAssociations(ctx, in, o...)
}

// tgwFor is the Transit Gateway client of an access in a region; nil when the provider runs on stub
// clients (Options.Clients), which have none.
func (p *Provider) tgwFor(a model.Access, region string) TransitGatewayAPI {
	if p.opts.Clients != nil {
		return nil
	}
	return newTGW(p.ConfigFor(a, region))
}

// observeTransitGateways reads, for a mesh with topology = "transit_gateway", the region's gateways that
// are the mesh's (tagged) or the spec's (id), their attachments and peering attachments, and the route
// tables meshd uses (tagged, or the spec's route_table_id) with their routes and propagations. The cost is
// constant per region: one call per kind of object, and a route search and a propagation list per route
// table meshd uses (one per gateway), however many members the region has. Nothing is read for a mesh
// that peers.
//
// A mesh that peers reads them only where the state records gateway objects (was.Gateways,
// was.GatewayTables: the switch back from the topology), and then only the mesh's and those.
func (p *Provider) observeTransitGateways(ctx context.Context, key clientKey, m *spec.Mesh, was Former, obs *model.Observed) error {
	if !m.UsesTransitGateway() && len(was.Gateways) == 0 && len(was.GatewayTables) == 0 {
		return nil
	}
	c := p.tgwFor(key.access, key.region)
	if c == nil {
		return nil
	}
	region := key.region
	named, namedTables := slices.Clone(was.Gateways), slices.Clone(was.GatewayTables)
	if g := m.TransitGateway(region); g != nil {
		named, namedTables = append(named, g.ID), append(namedTables, g.RouteTableID)
	}
	// Read, even if nothing is found: the planner tells "none" from "not read" by the map being non-nil.
	if obs.TransitGateways == nil {
		obs.TransitGateways = map[string]model.TransitGateway{}
	}
	mine := func(tags []ec2types.Tag) bool { return model.TaggedBy(tagMap(tags), m.Name) }

	var gateways []string
	pages := ec2.NewDescribeTransitGatewaysPaginator(c, &ec2.DescribeTransitGatewaysInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describing transit gateways: %w", err)
		}
		for _, g := range page.TransitGateways {
			id := aws.ToString(g.TransitGatewayId)
			if !slices.Contains(named, id) && !mine(g.Tags) {
				continue
			}
			gw := model.TransitGateway{ID: id, Region: region, OwnerID: aws.ToString(g.OwnerId), State: string(g.State), Tags: tagMap(g.Tags)}
			setIn(&obs.TransitGateways, id, gw)
			gateways = append(gateways, id)
		}
	}
	if len(gateways) == 0 {
		return nil
	}
	slices.Sort(gateways)
	byGateway := []ec2types.Filter{filter("transit-gateway-id", gateways)}

	var tables []string
	rtPages := ec2.NewDescribeTransitGatewayRouteTablesPaginator(c, &ec2.DescribeTransitGatewayRouteTablesInput{Filters: byGateway})
	for rtPages.HasMorePages() {
		page, err := rtPages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describing transit gateway route tables: %w", err)
		}
		for _, t := range page.TransitGatewayRouteTables {
			id := aws.ToString(t.TransitGatewayRouteTableId)
			if !slices.Contains(namedTables, id) && !mine(t.Tags) {
				continue
			}
			setIn(&obs.TGWRouteTables, id, model.TGWRouteTable{ID: id, GatewayID: aws.ToString(t.TransitGatewayId), Region: region,
				State: string(t.State), Tags: tagMap(t.Tags)})
			tables = append(tables, id)
		}
	}

	attPages := ec2.NewDescribeTransitGatewayAttachmentsPaginator(c, &ec2.DescribeTransitGatewayAttachmentsInput{Filters: byGateway})
	for attPages.HasMorePages() {
		page, err := attPages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describing transit gateway attachments: %w", err)
		}
		for _, a := range page.TransitGatewayAttachments {
			att := model.TGWAttachment{ID: aws.ToString(a.TransitGatewayAttachmentId), GatewayID: aws.ToString(a.TransitGatewayId),
				Region: region, Type: string(a.ResourceType), ResourceID: aws.ToString(a.ResourceId), State: string(a.State), Tags: tagMap(a.Tags)}
			if as := a.Association; as != nil && as.State == ec2types.TransitGatewayAssociationStateAssociated {
				att.RouteTableID = aws.ToString(as.TransitGatewayRouteTableId)
			}
			setIn(&obs.TGWAttachments, att.ID, att)
		}
	}

	// The peering attachments, from the requester's side: both regions list one (with the same ID, each
	// with its own gateway as TransitGatewayId on AWS, the requester's on moto), so the requester's region
	// reports it, as requester → accepter, and the accepter's drops it; the per-region observations then
	// merge without one side overwriting the other. moto filters these by state, ID and owners only, so
	// they are all listed and matched to the gateways here.
	peerPages := ec2.NewDescribeTransitGatewayPeeringAttachmentsPaginator(c, &ec2.DescribeTransitGatewayPeeringAttachmentsInput{})
	for peerPages.HasMorePages() {
		page, err := peerPages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describing transit gateway peering attachments: %w", err)
		}
		for _, pa := range page.TransitGatewayPeeringAttachments {
			id := aws.ToString(pa.TransitGatewayAttachmentId)
			req, acc := pa.RequesterTgwInfo, pa.AccepterTgwInfo
			if req == nil || acc == nil {
				continue
			}
			switch {
			case slices.Contains(gateways, aws.ToString(req.TransitGatewayId)):
				setIn(&obs.TGWAttachments, id, model.TGWAttachment{ID: id, GatewayID: aws.ToString(req.TransitGatewayId), Region: aws.ToString(req.Region),
					Type: "peering", ResourceID: aws.ToString(acc.TransitGatewayId), State: string(pa.State), Tags: tagMap(pa.Tags),
					RouteTableID: obs.TGWAttachments[id].RouteTableID, PeerGatewayID: aws.ToString(acc.TransitGatewayId), PeerRegion: aws.ToString(acc.Region)})
			case slices.Contains(gateways, aws.ToString(acc.TransitGatewayId)) && aws.ToString(req.Region) != region:
				delete(obs.TGWAttachments, id)
			}
		}
	}

	for _, id := range tables {
		rt := obs.TGWRouteTables[id]
		// No MaxResults: moto 5.2 slices a dict with it and answers 500; AWS's default is its maximum (1000).
		routes, err := c.SearchTransitGatewayRoutes(ctx, &ec2.SearchTransitGatewayRoutesInput{TransitGatewayRouteTableId: aws.String(id),
			Filters: []ec2types.Filter{filter("state", []string{"active", "blackhole"})}})
		if err != nil {
			return fmt.Errorf("searching the routes of %s: %w", id, err)
		}
		for _, r := range routes.Routes {
			route := model.TGWRoute{DestinationCIDR: aws.ToString(r.DestinationCidrBlock), Type: string(r.Type), State: string(r.State)}
			if len(r.TransitGatewayAttachments) > 0 {
				route.AttachmentID = aws.ToString(r.TransitGatewayAttachments[0].TransitGatewayAttachmentId)
			}
			rt.Routes = append(rt.Routes, route)
		}
		if aws.ToBool(routes.AdditionalRoutesAvailable) {
			// A route table meshd uses holds a route per remote block; more than 1000 is not a mesh's.
			return fmt.Errorf("route table %s has more than %d routes: meshd reads no further", id, len(routes.Routes))
		}
		props := ec2.NewGetTransitGatewayRouteTablePropagationsPaginator(c, &ec2.GetTransitGatewayRouteTablePropagationsInput{TransitGatewayRouteTableId: aws.String(id)})
		for props.HasMorePages() {
			page, err := props.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("listing the propagations of %s: %w", id, err)
			}
			for _, pr := range page.TransitGatewayRouteTablePropagations {
				if pr.State == ec2types.TransitGatewayPropagationStateEnabled {
					rt.Propagations = append(rt.Propagations, aws.ToString(pr.TransitGatewayAttachmentId))
				}
			}
		}
		assocs := ec2.NewGetTransitGatewayRouteTableAssociationsPaginator(c, &ec2.GetTransitGatewayRouteTableAssociationsInput{TransitGatewayRouteTableId: aws.String(id)})
		for assocs.HasMorePages() {
			page, err := assocs.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("listing the associations of %s: %w", id, err)
			}
			for _, as := range page.Associations {
				if as.State == ec2types.TransitGatewayAssociationStateAssociated {
					rt.Associations = append(rt.Associations, aws.ToString(as.TransitGatewayAttachmentId))
				}
			}
		}
		obs.TGWRouteTables[id] = rt
	}
	return nil
}

// setIn puts v at key of the map *m, making the map on first use (model.Observed leaves the Transit
// Gateway maps nil for a mesh that peers).
func setIn[V any](m *map[string]V, key string, v V) {
	if *m == nil {
		*m = map[string]V{}
	}
	(*m)[key] = v
}

package model

// What Observe reads of the Transit Gateways of a mesh with topology = "transit_gateway": the gateways
// meshd made (tagged) or the spec names, their route tables, attachments and peering attachments. Nothing
// is read for a mesh that peers.

// TransitGateway is one gateway as DescribeTransitGateways reports it.
type TransitGateway struct {
	ID      string
	Region  string
	OwnerID string
	State   string // pending | available | deleting | deleted ...
	Tags    map[string]string
}

// TGWAttachment is a gateway attachment: a VPC's (Type "vpc", ResourceID the VPC) or a peering with
// another gateway (Type "peering", PeerGatewayID and PeerRegion the other side).
type TGWAttachment struct {
	ID         string
	GatewayID  string
	Region     string
	Type       string
	ResourceID string
	State      string // pendingAcceptance | available | deleted ...
	// RouteTableID is the gateway route table the attachment is associated with ("" when none).
	RouteTableID  string
	PeerGatewayID string
	PeerRegion    string
	Tags          map[string]string
}

// TGWRouteTable is a gateway route table meshd uses (its own, or the spec's route_table_id), with its
// routes and the attachments that propagate to it.
type TGWRouteTable struct {
	ID           string
	GatewayID    string
	Region       string
	State        string
	Tags         map[string]string
	Routes       []TGWRoute
	Propagations []string // attachment IDs
	// Associations are the attachments associated with the table (GetTransitGatewayRouteTableAssociations:
	// moto 5.2's DescribeTransitGatewayAttachments keeps reporting the default table after an association).
	Associations []string
}

// TGWRoute is a route of a gateway route table.
type TGWRoute struct {
	DestinationCIDR string
	AttachmentID    string // "" for a blackhole route
	Type            string // static | propagated
	State           string // active | blackhole
}

// gone reports whether AWS still lists an object only because it was deleted (or is being deleted).
func gone(state string) bool {
	return state == "deleting" || state == "deleted" || state == "failed" || state == "rejected"
}

// Gone: see gone.
func (g TransitGateway) Gone() bool { return gone(g.State) }

// Gone: see gone.
func (a TGWAttachment) Gone() bool { return gone(a.State) }

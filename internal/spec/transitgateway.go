package spec

import (
	"maps"
	"net/netip"
	"regexp"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// How the members' VPCs reach each other (the mesh's topology attribute).
const (
	// TopologyPeering is a VPC peering connection between every pair of members (the default): N-1 peerings
	// per VPC, N-1 routes per route table, N-1 rules per node security group.
	TopologyPeering = "peering"
	// TopologyTransitGateway attaches every member VPC to a Transit Gateway in its region; the regions'
	// gateways are peered with each other.
	TopologyTransitGateway = "transit_gateway"
)

// TransitGateway is a mesh's transit_gateway block: the gateway of one region. Without ID meshd creates the
// gateway (and owns it); with ID the gateway is someone else's (a network team's) and meshd changes nothing
// of it but its own attachments, routes, associations and propagations, and, unless RouteTableID names one,
// a route table of its own in it.
type TransitGateway struct {
	Region string
	// ID is an existing gateway's (tgw-...); "" makes meshd create one.
	ID string
	// RouteTableID is the gateway route table the members' attachments are associated with and propagate
	// to (tgw-rtb-...); "" makes meshd create one of its own.
	RouteTableID string
	// SummaryCIDRs, when set, replace the remote members' blocks in the route tables of this region's
	// members: one route per summary to the gateway instead of one per remote block (a remote block no
	// summary holds keeps its own route).
	SummaryCIDRs []string
	// AttachmentSubnets names, by cluster, the subnets of its attachment (one per availability zone);
	// a cluster not listed gets one subnet per zone of its VPC, picked by meshd.
	AttachmentSubnets map[string][]string

	BlockRanges
}

// A region's transit_gateway block, or nil.
func (m *Mesh) TransitGateway(region string) *TransitGateway {
	for _, g := range m.TransitGateways {
		if g.Region == region {
			return g
		}
	}
	return nil
}

// UsesTransitGateway reports whether the members are connected through Transit Gateways.
func (m *Mesh) UsesTransitGateway() bool { return m.Topology == TopologyTransitGateway }

var (
	tgwIDRe      = regexp.MustCompile(`^tgw-([0-9a-f]{8}|[0-9a-f]{17})$`)
	tgwRtbIDRe   = regexp.MustCompile(`^tgw-rtb-([0-9a-f]{8}|[0-9a-f]{17})$`)
	subnetIDRe   = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)
	tgwSubSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "id"}, {Name: "route_table_id"}, {Name: "summary_cidrs"}, {Name: "attachment_subnets"},
	}}
)

// decodeTopology reads the mesh's topology attribute.
func (d *decoder) decodeTopology(a *hcl.Attribute) {
	d.meshEnum(a, "topology", &d.m.Topology, []string{TopologyPeering, TopologyTransitGateway}, "Invalid topology",
		`topology is %q; set it to "peering" (a VPC peering between every pair of members, the default) or "transit_gateway" (every member attached to a Transit Gateway in its region, the regions' gateways peered).`)
}

// decodeTransitGateway reads one transit_gateway "<region>" block of the mesh.
func (d *decoder) decodeTransitGateway(b *hcl.Block) {
	g := &TransitGateway{Region: b.Labels[0], BlockRanges: newBlockRanges(b.DefRange)}
	if !isRegion(g.Region) {
		d.errorf(b.LabelRanges[0], "Invalid region", "%s", regionDetail(g.Region))
	}
	if prev := d.m.TransitGateway(g.Region); prev != nil {
		d.errorf(b.DefRange, "Duplicate transit_gateway block",
			"A transit_gateway block for %s was already declared at %s. A region has one gateway in the mesh: merge the two.", g.Region, pos(prev.DeclRange))
		return
	}
	content, diags := b.Body.Content(tgwSubSchema)
	d.diags = append(d.diags, diags...)
	attrs := content.Attributes
	if s, r, ok := d.strIn(g.Attrs, attrs, "id"); ok {
		g.ID = s
		if !tgwIDRe.MatchString(s) {
			d.errorf(r, "Invalid transit gateway ID", "%s", idDetail(s, "a transit gateway ID", tgwIDRe, "tgw-", "tgw-0a1b2c3d4e5f60718"))
		}
	}
	if s, r, ok := d.strIn(g.Attrs, attrs, "route_table_id"); ok {
		g.RouteTableID = s
		switch {
		case !tgwRtbIDRe.MatchString(s):
			d.errorf(r, "Invalid transit gateway route table ID", "%s",
				idDetail(s, "a transit gateway route table ID", tgwRtbIDRe, "tgw-rtb-", "tgw-rtb-0a1b2c3d4e5f60718"))
		case g.ID == "":
			d.errorf(r, "Route table of a gateway meshd creates",
				"route_table_id names a route table of an existing gateway, but this block has no id, so meshd creates the gateway and its route table. Add the gateway's id, or remove route_table_id.")
		}
	}
	if list, rs, ok := d.strListIn(g.Attrs, g.Elems, attrs, "summary_cidrs"); ok {
		for i, s := range list {
			r := elem(rs, i, g.Attrs["summary_cidrs"])
			p, err := netip.ParsePrefix(s)
			switch {
			case err != nil:
				d.errorf(r, "Invalid CIDR block", "%q is not a CIDR block: %s. Write an IPv4 block that holds members' blocks, like 10.0.0.0/8.", s, prefixError(err))
			case !p.Addr().Is4() || p.Masked() != p:
				d.errorf(r, "Invalid CIDR block", "%s is not the address of an IPv4 block; write %s.", s, p.Masked())
			default:
				g.SummaryCIDRs = append(g.SummaryCIDRs, p.String())
			}
		}
	}
	if a := attrs["attachment_subnets"]; a != nil {
		if v, st := d.value(a, cty.Map(cty.List(cty.String))); st == valOK {
			g.Attrs["attachment_subnets"] = a.Expr.Range()
			g.AttachmentSubnets = map[string][]string{}
			for k, list := range v.AsValueMap() {
				for _, s := range list.AsValueSlice() {
					id := s.AsString()
					if !subnetIDRe.MatchString(id) {
						d.errorf(a.Expr.Range(), "Invalid subnet ID", "%s", idDetail(id, "a subnet ID", subnetIDRe, "subnet-", "subnet-0a1b2c3d4e5f60718"))
					}
					g.AttachmentSubnets[k] = append(g.AttachmentSubnets[k], id)
				}
			}
		}
	}
	d.m.TransitGateways = append(d.m.TransitGateways, g)
}

// validateTransitGateways checks the blocks against the clusters: the topology must use them, and
// attachment_subnets must name members of the region.
func (d *decoder) validateTransitGateways() {
	m := d.m
	_, set := m.Attrs["topology"]
	if len(m.TransitGateways) > 0 && !m.UsesTransitGateway() && !(set && m.Topology == "") { // an invalid topology is reported already
		d.errorf(m.TransitGateways[0].DeclRange, "transit_gateway block without the topology",
			`The mesh's topology is %q, so meshd would not use this gateway. Set topology = "transit_gateway" in the mesh block, or remove the transit_gateway blocks.`, m.topologyName())
	}
	for _, g := range m.TransitGateways {
		for _, name := range slices.Sorted(maps.Keys(g.AttachmentSubnets)) {
			c := m.Cluster(name)
			switch {
			case c == nil:
				d.errorf(g.Attrs["attachment_subnets"], "Unknown cluster",
					"attachment_subnets names %q, which is no cluster of the mesh. Name a cluster block of the spec.", name)
			case c.Region != g.Region:
				d.errorf(g.Attrs["attachment_subnets"], "Cluster in another region",
					"attachment_subnets names %q, which is in %s, not %s: a VPC is attached to the gateway of its own region.", name, c.Region, g.Region)
			}
		}
	}
}

func (m *Mesh) topologyName() string {
	if m.Topology == "" {
		return TopologyPeering
	}
	return m.Topology
}

package plan

import (
	"encoding/json"
	"fmt"
)

// Kind names a resource type; it is the prefix of every address, e.g. route[tidb-1:rtb-0a1:10.2.0.0/16].
type Kind string

const (
	KindPeering Kind = "peering"
	KindRoute   Kind = "route"
	KindSGRule  Kind = "sg_rule"
)

// Resource is the Before or After of a change: one object as meshd sees it.
type Resource interface {
	Kind() Kind
	// Attrs lists the attributes the human plan shows, in display order.
	Attrs() []Attr
}

// Attr is one displayed attribute. Unknown marks a value known only after apply.
type Attr struct {
	Name    string
	Value   string
	Unknown bool
}

// Endpoint is one side of a peering.
type Endpoint struct {
	Cluster string `json:"cluster"`
	VPCID   string `json:"vpc_id"`
	Region  string `json:"region"`
	OwnerID string `json:"owner_id,omitempty"`
}

// Peering is a VPC peering connection between two member VPCs. ID is empty until the peering exists.
type Peering struct {
	ID        string   `json:"id,omitempty"`
	Requester Endpoint `json:"requester"`
	Accepter  Endpoint `json:"accepter"`
	Status    string   `json:"status,omitempty"`
}

func (Peering) Kind() Kind { return KindPeering }

func (p Peering) Attrs() []Attr {
	return []Attr{
		{Name: "requester", Value: fmt.Sprintf("%s (%s, %s)", p.Requester.VPCID, p.Requester.Cluster, p.Requester.Region)},
		{Name: "accepter", Value: fmt.Sprintf("%s (%s, %s)", p.Accepter.VPCID, p.Accepter.Cluster, p.Accepter.Region)},
		{Name: "id", Value: p.ID, Unknown: p.ID == ""},
		{Name: "status", Value: p.Status, Unknown: p.Status == ""},
	}
}

// Route is a route to another member's CIDR block through their peering. When the peering does not exist yet
// PeeringID is empty and PeeringAddress names the change that creates it: apply fills the ID in.
type Route struct {
	Cluster         string `json:"cluster"`
	Region          string `json:"region"`
	VPCID           string `json:"vpc_id"`
	RouteTableID    string `json:"route_table_id"`
	DestinationCIDR string `json:"destination_cidr"`
	PeeringID       string `json:"peering_id,omitempty"`
	PeeringAddress  string `json:"peering_address,omitempty"`
	// Target is a non-peering target (igw-, nat-, ...) of an observed route, shown in conflicts.
	Target string `json:"target,omitempty"`
}

func (Route) Kind() Kind { return KindRoute }

func (r Route) Attrs() []Attr {
	target := Attr{Name: "target", Value: r.PeeringID}
	switch {
	case r.PeeringID == "" && r.PeeringAddress != "":
		target = Attr{Name: "target", Value: r.PeeringAddress, Unknown: true}
	case r.PeeringID == "" && r.Target != "":
		target.Value = r.Target
	}
	return []Attr{
		{Name: "route_table", Value: r.RouteTableID},
		{Name: "destination", Value: r.DestinationCIDR},
		target,
	}
}

// SGRule is an ingress rule, all protocols, from another member's CIDR block.
type SGRule struct {
	Cluster     string `json:"cluster"`
	Region      string `json:"region"`
	GroupID     string `json:"group_id"`
	CIDR        string `json:"cidr"`
	Protocol    string `json:"protocol"`
	Description string `json:"description,omitempty"`
	RuleID      string `json:"rule_id,omitempty"`
}

func (SGRule) Kind() Kind { return KindSGRule }

func (r SGRule) Attrs() []Attr {
	proto := r.Protocol
	if proto == "-1" {
		proto = "all"
	}
	return []Attr{
		{Name: "security_group", Value: r.GroupID},
		{Name: "source", Value: r.CIDR},
		{Name: "protocol", Value: proto},
		{Name: "id", Value: r.RuleID, Unknown: r.RuleID == ""},
	}
}

// decodeResource turns the JSON of a saved plan back into the concrete resource named by kind.
func decodeResource(kind Kind, raw json.RawMessage) (Resource, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var r Resource
	switch kind {
	case KindPeering:
		var v Peering
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		r = v
	case KindRoute:
		var v Route
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		r = v
	case KindSGRule:
		var v SGRule
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		r = v
	default:
		if d, ok := extraKinds[kind]; ok {
			return d(raw)
		}
		return nil, fmt.Errorf("unknown resource kind %q", kind)
	}
	return r, nil
}

// extraKinds lets other resource kinds (the Kubernetes ones) register their decoders.
var extraKinds = map[Kind]func(json.RawMessage) (Resource, error){}

// RegisterKind makes a resource kind known to the saved-plan decoder.
func RegisterKind(k Kind, decode func(json.RawMessage) (Resource, error)) { extraKinds[k] = decode }

package plan

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/meshd-io/meshd/internal/model"
)

// KindSGRule is an all-protocols ingress rule on a member's node security group from another member's
// CIDR block, or a TCP 443 rule on a data plane's EKS cluster security group from its control plane's
// CIDR block (see apiRules). Ownership: the tag meshd.io/mesh.
const KindSGRule Kind = "sg_rule"

func init() {
	Register(KindInfo{
		Kind: KindSGRule, Address: "sg_rule[<cluster>:<security group>:<source cidr>]", Rank: 2,
		planner:  (*computer).rules,
		Provider: ProviderAWS, Decode: decodeAs[SGRule], RepeatHint: hintAWS,
		IAM: sgRuleIAM,
	})
}

// SGRule is an ingress rule from another member's CIDR block: all protocols, or TCP on a port range.
type SGRule struct {
	Cluster  string `json:"cluster"`
	Region   string `json:"region"`
	GroupID  string `json:"group_id"`
	CIDR     string `json:"cidr"`
	Protocol string `json:"protocol"`
	// FromPort and ToPort are the TCP port range (zero for all protocols).
	FromPort    int32  `json:"from_port,omitempty"`
	ToPort      int32  `json:"to_port,omitempty"`
	Description string `json:"description,omitempty"`
	RuleID      string `json:"rule_id,omitempty"`
	// Access reaches the security group's account.
	model.Access
}

func (SGRule) Kind() Kind { return KindSGRule }

func (r SGRule) Attrs() []Attr {
	proto := r.Protocol
	switch {
	case proto == "-1":
		proto = "all"
	case r.FromPort == r.ToPort:
		proto = fmt.Sprintf("%s/%d", proto, r.FromPort)
	default:
		proto = fmt.Sprintf("%s/%d-%d", proto, r.FromPort, r.ToPort)
	}
	return []Attr{
		{Name: "security_group", Value: r.GroupID},
		{Name: "source", Value: r.CIDR},
		{Name: "protocol", Value: proto},
		{Name: "id", Value: r.RuleID, Unknown: r.RuleID == ""},
	}
}

// RuleAddress is the address of an ingress rule on a cluster's node security group.
func RuleAddress(cluster, group, cidr string) string {
	return fmt.Sprintf("%s[%s:%s:%s]", KindSGRule, cluster, group, cidr)
}

// rules plans, on each member's node security group, ingress from every other member's CIDR blocks.
func (c *computer) rules() {
	desired := map[string]SGRule{}
	var order []string
	byGroup := map[string][]string{} // desired keys by security group, to match others' rules cheaply
	for _, a := range c.networked {
		for _, b := range c.networked {
			if a.Name == b.Name {
				continue
			}
			for _, cidr := range b.CIDRs {
				key := a.SecurityGroupID + "|" + cidr
				if _, dup := desired[key]; dup {
					continue
				}
				desired[key] = SGRule{Cluster: a.Name, Region: a.Region, GroupID: a.SecurityGroupID,
					CIDR: cidr, Protocol: "-1", Description: fmt.Sprintf("meshd %s: from %s", c.in.Mesh, b.Name), Access: a.Access}
				order = append(order, key)
				byGroup[a.SecurityGroupID] = append(byGroup[a.SecurityGroupID], key)
			}
		}
	}
	for _, d := range c.apiRules() {
		key := d.GroupID + "|" + d.CIDR
		if _, dup := desired[key]; dup {
			continue
		}
		desired[key] = d
		order = append(order, key)
		byGroup[d.GroupID] = append(byGroup[d.GroupID], key)
	}

	groups := make([]string, 0, len(c.in.Observed.Rules))
	for g := range c.in.Observed.Rules {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	satisfied := map[string]bool{}

	// Rules of this mesh first: they satisfy what they match, the rest of them go.
	for _, g := range groups {
		for _, r := range c.in.Observed.Rules[g] {
			if !model.TaggedBy(r.Tags, c.in.Mesh) {
				continue
			}
			key := g + "|" + r.CIDR
			if d, want := desired[key]; want && sameTraffic(r, d) && !satisfied[key] {
				satisfied[key] = true
				continue
			}
			reason := "no longer in the spec"
			if c.in.Destroy {
				reason = "destroy"
			} else if satisfied[key] {
				reason = "duplicate of another rule of this mesh"
			}
			obs := observedRule(c.memberOfGroup(g), r)
			c.add(Change{Action: Delete, Address: RuleAddress(obs.Cluster, g, r.CIDR), Kind: KindSGRule, Reason: reason, Before: obs})
		}
	}
	// Then anyone else's rule that already allows the traffic: it is left alone, and meshd adds no copy.
	for _, g := range groups {
		for _, r := range c.in.Observed.Rules[g] {
			if model.TaggedBy(r.Tags, c.in.Mesh) {
				continue
			}
			for _, key := range byGroup[g] {
				d := desired[key]
				if satisfied[key] || !cidrCovers(r.CIDR, d.CIDR) || !allowsTraffic(r, d) {
					continue
				}
				satisfied[key] = true
				obs := observedRule(c.memberOfGroup(g), r)
				addr := RuleAddress(d.Cluster, g, d.CIDR)
				owner := model.MeshOf(r.Tags)
				switch {
				case owner != "":
					c.add(Change{Action: Keep, Address: addr, Kind: KindSGRule, Before: obs, After: obs,
						Reason: fmt.Sprintf("already allowed by %s of mesh %q: left alone", r.ID, owner)})
				case c.in.Adopt && r.CIDR == d.CIDR && sameTraffic(r, d):
					c.add(Change{Action: Adopt, Address: addr, Kind: KindSGRule, Before: obs, After: obs,
						Reason: "exists, not owned: adopt (tag as meshd's)"})
				default:
					c.add(Change{Action: Keep, Address: addr, Kind: KindSGRule, Before: obs, After: obs,
						Reason: fmt.Sprintf("already allowed by %s (not meshd's): left alone", r.ID)})
				}
			}
		}
	}
	for _, key := range order {
		if satisfied[key] {
			continue
		}
		d := desired[key]
		c.add(Change{Action: Create, Address: RuleAddress(d.Cluster, d.GroupID, d.CIDR),
			Kind: KindSGRule, Reason: "ingress rule missing", After: d})
	}
}

func observedRule(m model.Member, r model.SecurityGroupRule) SGRule {
	out := SGRule{Cluster: m.Name, Region: m.Region, GroupID: r.GroupID, CIDR: r.CIDR, Protocol: r.Protocol,
		Description: r.Description, RuleID: r.ID, Access: m.Access}
	if r.Protocol != "-1" {
		out.FromPort, out.ToPort = r.FromPort, r.ToPort
	}
	return out
}

// isTCP reports whether an IP protocol names TCP (AWS reports "tcp"; "6" is the same protocol).
func isTCP(p string) bool { return p == "tcp" || p == "6" }

// sameTraffic reports whether an observed rule is exactly the one wanted: its protocol and ports.
func sameTraffic(r model.SecurityGroupRule, d SGRule) bool {
	if d.Protocol == "-1" || r.Protocol == "-1" {
		return r.Protocol == d.Protocol
	}
	return isTCP(r.Protocol) && isTCP(d.Protocol) && r.FromPort == d.FromPort && r.ToPort == d.ToPort
}

// allowsTraffic reports whether an observed rule lets in (at least) what the wanted one would.
func allowsTraffic(r model.SecurityGroupRule, d SGRule) bool {
	switch {
	case r.Protocol == "-1":
		return true
	case d.Protocol == "-1":
		return false
	}
	return isTCP(r.Protocol) && isTCP(d.Protocol) && r.FromPort <= d.FromPort && d.ToPort <= r.ToPort
}

// APIPort is the port of an EKS cluster's API endpoint.
const APIPort = 443

// apiRules are the ingress rules that let each control plane reach its data planes' API endpoints
// privately, over the mesh's peering: TCP 443 on the data plane's EKS cluster security group (which EKS
// puts on the endpoint's network interfaces) from each of the control plane's CIDR blocks. Only for the
// data planes the engine found reached privately (ControlPlaneInput.PrivateAPIs), and only where the
// cluster security group is not the member's node security group: there the mesh's all-protocols rules
// already allow it.
func (c *computer) apiRules() []SGRule {
	in := c.in.ControlPlanes
	if in == nil || c.in.Destroy {
		return nil
	}
	var out []SGRule
	for _, a := range in.PrivateAPIs {
		cp, okCP := c.plan.Members[a.Cluster]
		m, okDP := c.plan.Members[a.DataPlane]
		if !okCP || !okDP || cp.External || m.External || m.ClusterSecurityGroupID == "" || m.ClusterSecurityGroupID == m.SecurityGroupID {
			continue
		}
		for _, cidr := range cp.CIDRs {
			out = append(out, SGRule{Cluster: m.Name, Region: m.Region, GroupID: m.ClusterSecurityGroupID, CIDR: cidr,
				Protocol: "tcp", FromPort: APIPort, ToPort: APIPort, Access: m.Access,
				Description: fmt.Sprintf("meshd %s: control_plane %s from %s to the API server", c.in.Mesh, a.ControlPlane, a.Cluster)})
		}
	}
	return out
}

// cidrCovers reports whether outer contains all of inner.
func cidrCovers(outer, inner string) bool {
	o, err1 := netip.ParsePrefix(outer)
	i, err2 := netip.ParsePrefix(inner)
	if err1 != nil || err2 != nil {
		return false
	}
	return o.Bits() <= i.Bits() && o.Contains(i.Addr())
}

package plan

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/meshd-io/meshd/internal/model"
)

// KindSGRule is an all-protocols ingress rule on a member's node security group from another member's
// CIDR block. Ownership: the tag meshd.io/mesh.
const KindSGRule Kind = "sg_rule"

func init() {
	Register(KindInfo{
		Kind: KindSGRule, Address: "sg_rule[<cluster>:<security group>:<source cidr>]", Rank: 2,
		Provider: ProviderAWS, Decode: decodeAs[SGRule], RepeatHint: hintAWS,
	})
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
	// Access reaches the security group's account.
	model.Access
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

// RuleAddress is the address of an ingress rule on a cluster's node security group.
func RuleAddress(cluster, group, cidr string) string {
	return fmt.Sprintf("%s[%s:%s:%s]", KindSGRule, cluster, group, cidr)
}

// rules plans, on each member's node security group, ingress from every other member's CIDR blocks.
func (c *computer) rules() {
	desired := map[string]SGRule{}
	var order []string
	byGroup := map[string][]string{} // desired keys by security group, to match others' rules cheaply
	for _, a := range c.members {
		for _, b := range c.members {
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
			if _, want := desired[key]; want && r.Protocol == "-1" && !satisfied[key] {
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
			if model.TaggedBy(r.Tags, c.in.Mesh) || r.Protocol != "-1" {
				continue
			}
			for _, key := range byGroup[g] {
				d := desired[key]
				if satisfied[key] || !cidrCovers(r.CIDR, d.CIDR) {
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
				case c.in.Adopt && r.CIDR == d.CIDR:
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
	return SGRule{Cluster: m.Name, Region: m.Region, GroupID: r.GroupID, CIDR: r.CIDR, Protocol: r.Protocol,
		Description: r.Description, RuleID: r.ID, Access: m.Access}
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

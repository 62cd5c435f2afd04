package plan

import (
	"fmt"
	"slices"

	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
)

// Taking over a DNS setup made by hand with the runbook (adopt = true): the Service
// kube-system/across-cluster-dns-tcp without meshd's labels, and the Corefile blocks for the other members'
// zones.
//
//	object      | adopted when (adopt = true)                                   | else
//	------------+---------------------------------------------------------------+-------------------------------
//	dns_service | it carries no app.kubernetes.io/managed-by=meshd label: > adopt | conflict (another mesh's, or
//	            | (labels added; the rest of meshd's spec set in place, so the   | adopt unset)
//	            | Service and its NLB stay)                                     |
//	corefile    | the only block serving a member's zone, one key, braces in the | conflict, never written
//	            | text, no other mesh's marker, forwarding . to exactly that     |
//	            | member's NLB addresses: > adopt (rewritten in place as meshd's)|
//
// The blocks keep forwarding to the same addresses throughout, so resolution never stops.

// adoptableService reports whether a Service that is not meshd's may be adopted: adopt = true and no
// meshd's managed-by label (a Service of another mesh stays that mesh's).
func (d *dnsPlanner) adoptableService(labels map[string]string) bool {
	return d.c.in.Adopt && labels[model.LabelManagedBy] != model.ManagedByMeshd
}

// adoptBlocks looks at the desired zones that a user's block serves (rep.Conflicts of merging blocks into
// text). With adopt = true, the ones whose block is adoptable (corefile.Adoptable: it forwards to the
// member's known NLB addresses) are merged again as if meshd owned them: adopted lists them, and merged
// and rep are that merge's. hints, by zone, end the conflict of each zone that stays one with what adopt
// would do about it.
func (d *dnsPlanner) adoptBlocks(text string, owned []string, blocks []corefile.Block, merged string, rep corefile.Report) (
	string, corefile.Report, []string, map[string]string, error) {
	hints := map[string]string{}
	var adopted []string
	for _, cf := range rep.Conflicts {
		i := slices.IndexFunc(blocks, func(b corefile.Block) bool { return corefile.NormalizeZone(b.Zone) == cf.Zone })
		if i < 0 {
			continue
		}
		if slices.Equal(blocks[i].Upstreams, []string{placeholderUpstream}) {
			if d.c.in.Adopt {
				hints[cf.Zone] = " adopt = true does not take it over yet: the addresses of that cluster's DNS load balancer are known only after apply."
			}
			continue
		}
		ok, why := corefile.Adoptable(text, d.mesh(), owned, cf.Zone, blocks[i].Upstreams)
		switch {
		case ok && d.c.in.Adopt:
			adopted = append(adopted, cf.Zone)
		case ok:
			hints[cf.Zone] = " It forwards to that cluster's DNS load balancer, as the runbook's block does: " +
				"set adopt = true in the mesh block to let meshd take it over."
		case d.c.in.Adopt:
			hints[cf.Zone] = fmt.Sprintf(" adopt = true does not take it over: %s.", why)
		}
	}
	if len(adopted) == 0 {
		return merged, rep, nil, hints, nil
	}
	merged, rep, err := corefile.Merge(text, d.mesh(), append(slices.Clone(owned), adopted...), blocks)
	return merged, rep, adopted, hints, err
}

// MergeOwned returns the zones to give corefile.Merge at apply time: the ones the state records and the
// ones the change adopts. It is the check at the moment of writing: each adopted zone's block in text (the
// Corefile read now) must still be adoptable with the upstreams the change forwards it to, else the
// Corefile changed since the plan and nothing is written.
func (c Corefile) MergeOwned(text, mesh string, blocks []corefile.Block) ([]string, error) {
	if len(c.Adopted) == 0 {
		return c.Owned, nil
	}
	for _, z := range c.Adopted {
		i := slices.IndexFunc(blocks, func(b corefile.Block) bool { return corefile.NormalizeZone(b.Zone) == z })
		if i < 0 {
			return nil, fmt.Errorf("the change adopts the block for %s but writes none for it", z)
		}
		if ok, why := corefile.Adoptable(text, mesh, c.Owned, z, blocks[i].Upstreams); !ok {
			return nil, fmt.Errorf("the hand-written block for %s changed since the plan (%s): nothing written, plan again", z, why)
		}
	}
	return append(slices.Clone(c.Owned), c.Adopted...), nil
}

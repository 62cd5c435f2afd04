package plan

import (
	"maps"
	"slices"
	"strings"

	"github.com/meshd-io/meshd/internal/state"
)

// StateEntries lists everything st records, by address: the members, then each kind's records (by rank),
// each sorted by address. It is what `meshctl state list` prints and `state show` looks up.
func StateEntries(st *state.State) []state.Entry {
	all := memberEntries(st)
	for _, k := range Kinds() {
		if k.State == nil {
			continue
		}
		entries := k.State.List(st)
		slices.SortFunc(entries, func(a, b state.Entry) int { return strings.Compare(a.Address, b.Address) })
		all = append(all, entries...)
	}
	return all
}

func memberEntries(st *state.State) []state.Entry {
	var out []state.Entry
	for _, name := range slices.Sorted(maps.Keys(st.Members)) {
		m := st.Members[name]
		kube := []state.Attr{{Name: "kube_context", Value: m.KubeContext}, {Name: "namespace", Value: m.Namespace},
			{Name: "cluster_domain", Value: m.ClusterDomain}}
		var attrs []state.Attr
		if m.External { // no AWS side to show
			attrs = []state.Attr{{Name: "name", Value: m.Name}, {Name: "network", Value: "external"}}
		} else {
			attrs = []state.Attr{{Name: "name", Value: m.Name}, {Name: "region", Value: m.Region},
				{Name: "vpc_id", Value: m.VPCID}, {Name: "cidrs", Value: m.CIDRs},
				{Name: "route_table_ids", Value: m.RouteTableIDs}, {Name: "security_group_id", Value: m.SecurityGroupID},
				{Name: "owner_id", Value: m.OwnerID}}
		}
		out = append(out, state.Entry{Address: "member[" + name + "]", Attrs: append(attrs, kube...)})
	}
	return out
}

// locatedEntries lists the records of kind k among records located as copies are (state.ReplicaRecord),
// which several kinds share a map of.
func locatedEntries(k Kind, records map[string]state.ReplicaRecord) []state.Entry {
	var out []state.Entry
	for addr, r := range records {
		if strings.HasPrefix(addr, string(k)+"[") {
			out = append(out, state.Entry{Address: addr, Attrs: locatedAttrs(r.Cluster, r.KubeContext, r.Kind, r.Namespace, r.Name)})
		}
	}
	return out
}

func locatedAttrs(cluster, kubeContext, kind, namespace, name string) []state.Attr {
	return []state.Attr{{Name: "cluster", Value: cluster}, {Name: "kube_context", Value: kubeContext},
		{Name: "kind", Value: kind}, {Name: "namespace", Value: namespace}, {Name: "name", Value: name}}
}

// fixRecords applies a plan's forgets, then its records (in address order), to one map of the state.
func fixRecords[V any](forget []string, record map[string]V, remove func(string), set func(string, V)) {
	for _, addr := range forget {
		remove(addr)
	}
	for _, addr := range slices.Sorted(maps.Keys(record)) {
		set(addr, record[addr])
	}
}

// boolAttr is a flag as state show prints it: "true", or left out.
func boolAttr(b bool) string {
	if b {
		return "true"
	}
	return ""
}

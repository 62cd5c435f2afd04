package plantest_test

// A kind in one file: mesh_info[<cluster>], a ConfigMap kube-system/meshd-mesh-info in every member
// listing the mesh's members. It is registered only here, in a test package: its planner, state records
// (with an upgrade of an older state layout), watches, Events and permissions in plan's registry, its
// observation and executor in kindio. TestEveryKindConforms takes it through the simulated world like the
// built-in kinds, which proves that a kind needs no other file.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/kindio"
	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// KindMeshInfo is meshd's when the ConfigMap carries meshd's labels for the mesh.
const KindMeshInfo plan.Kind = "mesh_info"

const (
	meshInfoNamespace = "kube-system"
	meshInfoName      = "meshd-mesh-info"
)

// MeshInfo is the ConfigMap of one member.
type MeshInfo struct {
	Mesh        string `json:"mesh"`
	Cluster     string `json:"cluster"`
	KubeContext string `json:"kube_context"`
	Members     string `json:"members"`
}

func (MeshInfo) Kind() plan.Kind { return KindMeshInfo }

func (i MeshInfo) Attrs() []plan.Attr {
	return []plan.Attr{{Name: "cluster", Value: i.Cluster}, {Name: "members", Value: i.Members}}
}

func meshInfoAddress(cluster string) string { return string(KindMeshInfo) + "[" + cluster + "]" }

// meshInfoObserved is the ConfigMap as read: nil when there is none.
type meshInfoObserved struct {
	Members string
	Owned   bool
}

// meshInfoRecord is what the state keeps of a ConfigMap meshd made, in the kind's table.
type meshInfoRecord struct {
	Cluster     string `json:"cluster"`
	KubeContext string `json:"kube_context"`
}

var meshInfoTable = state.Table[meshInfoRecord]{Name: string(KindMeshInfo)}

func init() {
	plan.Register(plan.KindInfo{
		Kind: KindMeshInfo, Address: "mesh_info[<cluster>]", Rank: 100, Provider: plan.ProviderKube,
		Decode: func(raw json.RawMessage) (plan.Resource, error) {
			var v MeshInfo
			err := json.Unmarshal(raw, &v)
			return v, err
		},
		Touches: func(r plan.Resource) plan.ObjectRef {
			return plan.ObjectRef{Cluster: r.(MeshInfo).Cluster, APIVersion: "v1", Kind: "ConfigMap", Namespace: meshInfoNamespace, Name: meshInfoName}
		},
		Watches: func(m *spec.Mesh) []plan.Watch {
			var out []plan.Watch
			for _, c := range m.Clusters {
				out = append(out, plan.Watch{Cluster: c.Name, APIVersion: "v1", Resource: "configmaps", Namespace: meshInfoNamespace, Name: meshInfoName})
			}
			return out
		},
		RepeatHint: "the ConfigMap's managedFields name the last writer",
		RBAC: func(m *spec.Mesh) []access.Rule {
			var out []access.Rule
			for _, c := range m.Clusters {
				out = append(out, access.Rule{Cluster: c.Name, Namespace: meshInfoNamespace, Resource: "configmaps", Names: []string{meshInfoName},
					Verbs: []string{"get", "update", "delete"}, Why: "The mesh's member list."},
					access.Rule{Cluster: c.Name, Namespace: meshInfoNamespace, Resource: "configmaps", Verbs: []string{"create"}, Why: "Made once."})
			}
			return out
		},
		Plan: planMeshInfo,
		State: &plan.Records{
			List: func(st *state.State) []state.Entry {
				var out []state.Entry
				for _, addr := range meshInfoTable.Addresses(st) {
					r, _, _ := meshInfoTable.Get(st, addr)
					out = append(out, state.Entry{Address: addr, Attrs: []state.Attr{{Name: "cluster", Value: r.Cluster}, {Name: "kube_context", Value: r.KubeContext}}})
				}
				return out
			},
			// The release before kept these records as "mesh_info_v0": kube context by cluster.
			Upgrade: func(old map[string]json.RawMessage, st *state.State) error {
				raw, ok := old["mesh_info_v0"]
				if !ok {
					return nil
				}
				var byCluster map[string]string
				if err := json.Unmarshal(raw, &byCluster); err != nil {
					return err
				}
				for cluster, ctx := range byCluster {
					if err := meshInfoTable.Set(st, meshInfoAddress(cluster), meshInfoRecord{Cluster: cluster, KubeContext: ctx}); err != nil {
						return err
					}
				}
				return nil
			},
		},
	})
	kindio.RegisterKube(KindMeshInfo, kindio.Kube{
		Observe: func(ctx context.Context, c kubeclient.Interface, _ kindio.Cluster) (any, error) {
			cm, err := c.CoreV1().ConfigMaps(meshInfoNamespace).Get(ctx, meshInfoName, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return (*meshInfoObserved)(nil), nil
			}
			if err != nil {
				return nil, err
			}
			return &meshInfoObserved{Members: cm.Data["members"], Owned: cm.Labels[model.LabelManagedBy] == model.ManagedByMeshd}, nil
		},
		Where: func(ch plan.Change) kindio.Cluster {
			r := ch.After
			if r == nil {
				r = ch.Before
			}
			i := r.(MeshInfo)
			return kindio.Cluster{Name: i.Cluster, KubeContext: i.KubeContext}
		},
		Execute: executeMeshInfo,
	})
}

// planMeshInfo wants the ConfigMap in every member (none when destroying) and deletes the recorded ones no
// member wants. A cluster that could not be read is left alone; a ConfigMap that is not meshd's is a
// conflict.
func planMeshInfo(in plan.Input, p *plan.Plan) {
	parts, _ := in.Kinds[KindMeshInfo].(*plan.Parts)
	if parts == nil {
		return
	}
	var names []string
	for _, m := range in.Members {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	want := map[string]MeshInfo{}
	if !in.Destroy {
		for _, m := range in.Members {
			want[meshInfoAddress(m.Name)] = MeshInfo{Mesh: in.Mesh, Cluster: m.Name, KubeContext: m.KubeContext, Members: strings.Join(names, ",")}
		}
	}
	for _, addr := range slices.Sorted(maps.Keys(want)) {
		w := want[addr]
		got, seen := parts.Kube[w.Cluster]
		if !seen {
			continue
		}
		switch o := got.(*meshInfoObserved); {
		case o == nil:
			p.Changes = append(p.Changes, plan.Change{Action: plan.Create, Address: addr, Kind: KindMeshInfo, Reason: "missing", After: w})
		case !o.Owned:
			p.Conflicts = append(p.Conflicts, plan.Conflict{Address: addr, Summary: "a ConfigMap that is not meshd's is in the way"})
		case o.Members != w.Members:
			before := w
			before.Members = o.Members
			p.Changes = append(p.Changes, plan.Change{Action: plan.Update, Address: addr, Kind: KindMeshInfo, Reason: "members changed", Before: before, After: w})
		}
	}
	for _, addr := range meshInfoTable.Addresses(in.State) {
		if _, ok := want[addr]; ok {
			continue
		}
		rec, _, _ := meshInfoTable.Get(in.State, addr)
		if _, seen := parts.Kube[rec.Cluster]; !seen {
			continue
		}
		p.Changes = append(p.Changes, plan.Change{Action: plan.Delete, Address: addr, Kind: KindMeshInfo, Reason: "no longer wanted",
			Before: MeshInfo{Mesh: in.Mesh, Cluster: rec.Cluster, KubeContext: rec.KubeContext}})
	}
}

func executeMeshInfo(ctx context.Context, c kubeclient.Interface, ch plan.Change, _ apply.Known) (apply.Outcome, error) {
	cms := c.CoreV1().ConfigMaps(meshInfoNamespace)
	forget := apply.Outcome{Record: func(st *state.State) { meshInfoTable.Forget(st, ch.Address) }}
	if ch.Action == plan.Delete {
		cm, err := cms.Get(ctx, meshInfoName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return forget, nil
		}
		if err != nil {
			return apply.Outcome{}, err
		}
		if cm.Labels[model.LabelManagedBy] != model.ManagedByMeshd {
			return apply.Outcome{}, fmt.Errorf("%s: the ConfigMap is not meshd's: left alone", ch.Address)
		}
		if err := cms.Delete(ctx, meshInfoName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cm.UID}}); err != nil && !apierrors.IsNotFound(err) {
			return apply.Outcome{}, err
		}
		return forget, nil
	}
	want := ch.After.(MeshInfo)
	data := map[string]string{"members": want.Members}
	switch ch.Action {
	case plan.Create:
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: meshInfoNamespace, Name: meshInfoName, Labels: plan.OwnerLabels(want.Mesh)}, Data: data}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: model.FieldManager}); err != nil {
			return apply.Outcome{}, err
		}
	case plan.Update:
		cm, err := cms.Get(ctx, meshInfoName, metav1.GetOptions{})
		if err != nil {
			return apply.Outcome{}, err
		}
		if cm.Labels[model.LabelManagedBy] != model.ManagedByMeshd {
			return apply.Outcome{}, fmt.Errorf("%s: the ConfigMap is not meshd's: left alone", ch.Address)
		}
		cm.Data = data
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: model.FieldManager}); err != nil {
			return apply.Outcome{}, err
		}
	default:
		return apply.Outcome{}, fmt.Errorf("%s: cannot %s", ch.Address, ch.Action.Verb())
	}
	rec := meshInfoRecord{Cluster: want.Cluster, KubeContext: want.KubeContext}
	return apply.Outcome{Record: func(st *state.State) { _ = meshInfoTable.Set(st, ch.Address, rec) }}, nil
}

// A state file written before the kind kept its records in a table maps them in when read.
func TestMeshInfoUpgradesAnOldState(t *testing.T) {
	st, err := state.Decode("old", []byte(`{"version": 1, "mesh": "tidb", "mesh_info_v0": {"a": "ctx-a"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range plan.StateEntries(st) {
		got = append(got, e.Address)
	}
	if !slices.Equal(got, []string{"mesh_info[a]"}) {
		t.Errorf("state list after the upgrade: %v, want mesh_info[a]", got)
	}
}

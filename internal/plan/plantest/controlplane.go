package plantest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// The control_plane blocks of the world (World.ControlPlanes), observed as the engine observes them and
// changed as the kube provider's executors change them. Their objects are in World.Objects: in each data
// plane the ServiceAccount kube-system/meshd-cp-<block> and its ClusterRoleBinding to cluster_role (the
// ClusterRole itself is the test's to put there, as a user or a replicate block would), and in the control
// plane the kubeconfig Secret. A data plane's API server is APIServer(cluster). A TokenRequest answers an
// opaque token, issued at tokenClock and valid for token_ttl, so a token is never due on the next plan.

// tokenClock is the world's time: tokens are issued at it, and Compute decides against it which are due.
var tokenClock = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// APIServer is the address a control plane reaches a data plane's API server at.
func APIServer(cluster string) string { return "https://" + cluster + ".api.test:443" }

// specMesh is the spec's view of the members, for the blocks' defaults (every other member).
func (w *World) specMesh(members []model.Member) *spec.Mesh {
	m := &spec.Mesh{Name: w.Mesh}
	for _, mem := range members {
		c := &spec.Cluster{Name: mem.Name, Region: mem.Region, KubeContext: mem.KubeContext}
		if mem.External {
			c.Network = spec.NetworkExternal
		}
		m.Clusters = append(m.Clusters, c)
	}
	return m
}

// contexts are the kube contexts of the members, by name.
func contexts(members []model.Member) map[string]string {
	out := map[string]string{}
	for _, m := range members {
		out[m.Name] = m.KubeContext
	}
	return out
}

// ControlPlaneInput observes the control_plane blocks and the recorded accounts and Secrets no block wants
// as the engine does (destroy: no block is wanted); nil when there is neither a block nor a record. A block
// whose cluster_role a data plane lacks (and no replicate block copies there) is left alone, as the engine
// leaves it with its diagnostic.
func (w *World) ControlPlaneInput(members []model.Member, st *state.State, destroy bool) *plan.ControlPlaneInput {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ControlPlanes) == 0 && len(st.ControlPlanes) == 0 {
		return nil
	}
	m, ctx := w.specMesh(members), contexts(members)
	in := &plan.ControlPlaneInput{Now: tokenClock, OrphanAccounts: map[string]plan.AccountObserved{},
		OrphanSecrets: map[string]*kubeobj.Object{}, LeftAlone: map[string]bool{}}
	wanted := map[string]bool{}
	for _, cp := range w.ControlPlanes {
		if destroy {
			break
		}
		p := plan.ControlPlaneObserved{Name: cp.Name, Cluster: cp.Cluster, KubeContext: ctx[cp.Cluster], Namespace: cp.SecretNamespace,
			SecretName: cp.SecretName, ClusterRole: cp.ClusterRole, TokenTTL: cp.TokenTTL, TokenFileDir: cp.TokenFileDir,
			Secret: w.object(cp.Cluster, "Secret", cp.SecretNamespace, cp.SecretName)}
		addrs := []string{plan.KubeconfigAddress(cp.Name)}
		ok := true
		name := plan.CPAccountName(cp.Name)
		for _, dp := range cp.Targets(m) {
			addrs = append(addrs, plan.CPAccountAddress(cp.Name, dp))
			d := plan.DataPlaneObserved{Cluster: dp, KubeContext: ctx[dp], Endpoint: plan.KubeconfigDataPlane{Server: APIServer(dp)},
				Account: plan.AccountObserved{ServiceAccount: w.object(dp, "ServiceAccount", plan.CPAccountNamespace, name),
					Binding: w.object(dp, "ClusterRoleBinding", "", name)},
				Role: w.object(dp, "ClusterRole", "", cp.ClusterRole), RoleFrom: w.replicatedRole(cp.ClusterRole, dp)}
			ok = ok && (d.Role != nil || d.RoleFrom != "")
			p.DataPlanes = append(p.DataPlanes, d)
		}
		for _, a := range addrs {
			wanted[a] = true
			in.LeftAlone[a] = !ok
		}
		if ok {
			in.Planes = append(in.Planes, p)
		}
	}
	for _, addr := range slices.Sorted(maps.Keys(st.ControlPlanes)) {
		if wanted[addr] {
			continue
		}
		rec := st.ControlPlanes[addr]
		if rec.Kind == "Secret" {
			in.OrphanSecrets[addr] = w.object(rec.Cluster, rec.Kind, rec.Namespace, rec.Name)
			continue
		}
		in.OrphanAccounts[addr] = plan.AccountObserved{ServiceAccount: w.object(rec.Cluster, rec.Kind, rec.Namespace, rec.Name),
			Binding: w.object(rec.Cluster, "ClusterRoleBinding", "", rec.Name)}
	}
	return in
}

// replicatedRole is the address of the replica that copies ClusterRole role into cluster, if a replicate
// block of the world does.
func (w *World) replicatedRole(role, cluster string) string {
	for _, r := range w.Replicates {
		if r.Kind == "ClusterRole" && r.Obj == role && slices.Contains(r.Targets, cluster) {
			return plan.ReplicaAddress(r.Name, cluster)
		}
	}
	return ""
}

type cpAccountExecutor struct{ w *World }

func init() {
	executors.Register(func(w *World) apply.Executor { return cpAccountExecutor{w} }, plan.KindCPAccount)
}

// Execute makes a data plane's ServiceAccount and ClusterRoleBinding what the change says (a binding to
// another role is replaced: its roleRef cannot change), or deletes both, the binding first; neither is
// touched unless meshd's.
func (e cpAccountExecutor) Execute(_ context.Context, ch plan.Change, _ apply.Known) (apply.Outcome, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch.Action == plan.Delete {
		a := ch.Before.(plan.CPAccount)
		if a.BindingUID != "" {
			if err := w.deleteObserved(a.Cluster, "ClusterRoleBinding", "", a.Name, a.BindingUID); err != nil {
				return apply.Outcome{}, err
			}
		}
		if a.UID != "" {
			if err := w.deleteObserved(a.Cluster, "ServiceAccount", a.Namespace, a.Name, a.UID); err != nil {
				return apply.Outcome{}, err
			}
		}
		return apply.Outcome{Record: func(st *state.State) { st.RemoveControlPlane(ch.Address) }}, nil
	}
	a := ch.After.(plan.CPAccount)
	sa, _ := kubeobj.New("ServiceAccount", a.Namespace, a.Name, nil)
	sa.Labels = maps.Clone(a.Labels)
	if err := w.writeObject(a.Cluster, sa); err != nil {
		return apply.Outcome{}, err
	}
	want := plan.CPBinding(a)
	if cur := w.object(a.Cluster, want.Kind, "", want.Name); cur != nil && kubeobj.NeedsReplace(want, *cur) {
		if err := w.deleteObserved(a.Cluster, want.Kind, "", want.Name, cur.UID); err != nil {
			return apply.Outcome{}, err
		}
	}
	if err := w.writeObject(a.Cluster, want); err != nil {
		return apply.Outcome{}, err
	}
	rec := a.Record()
	return apply.Outcome{Record: func(st *state.State) { st.SetControlPlane(ch.Address, rec) }}, nil
}

type kubeconfigExecutor struct{ w *World }

func init() {
	executors.Register(func(w *World) apply.Executor { return kubeconfigExecutor{w} }, plan.KindKubeconfig)
}

// Execute writes or deletes the control plane's kubeconfig Secret as the kube provider's executor does: it
// refuses a Secret created, deleted or replaced since the plan, or not meshd's; keeps the tokens the plan
// does not renew; and requests the others from the data planes' ServiceAccounts (TokenRequest), which must
// be meshd's.
func (e kubeconfigExecutor) Execute(_ context.Context, ch plan.Change, _ apply.Known) (apply.Outcome, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch.Action == plan.Delete {
		k := ch.Before.(plan.Kubeconfig)
		if err := w.deleteObserved(k.Cluster, "Secret", k.Namespace, k.Name, k.UID); err != nil {
			return apply.Outcome{}, err
		}
		return apply.Outcome{Record: func(st *state.State) { st.RemoveControlPlane(ch.Address) }}, nil
	}
	k := ch.After.(plan.Kubeconfig)
	cur := w.object(k.Cluster, "Secret", k.Namespace, k.Name)
	switch {
	case ch.Action == plan.Create && cur != nil:
		return apply.Outcome{}, fmt.Errorf("cluster %s: Secret %s/%s exists now; nothing written, plan again", k.Cluster, k.Namespace, k.Name)
	case ch.Action == plan.Update && (cur == nil || cur.UID != k.UID):
		return apply.Outcome{}, fmt.Errorf("cluster %s: Secret %s/%s was deleted or replaced; nothing written, plan again", k.Cluster, k.Namespace, k.Name)
	}
	want, err := w.kubeconfigSecret(k, cur)
	if err != nil {
		return apply.Outcome{}, err
	}
	if err := w.writeObject(k.Cluster, want); err != nil {
		return apply.Outcome{}, err
	}
	rec := k.Record()
	return apply.Outcome{Record: func(st *state.State) { st.SetControlPlane(ch.Address, rec) }}, nil
}

// kubeconfigSecret is the Secret to write: the tokens of cur kept, unless renewed, the others new.
func (w *World) kubeconfigSecret(k plan.Kubeconfig, cur *kubeobj.Object) (kubeobj.Object, error) {
	tokens, records := k.KeptTokens(cur)
	for _, dp := range k.DataPlanes {
		if _, kept := tokens[dp.Cluster]; kept {
			continue
		}
		sa := w.object(dp.Cluster, "ServiceAccount", plan.CPAccountNamespace, plan.CPAccountName(k.ControlPlane))
		if sa == nil || !model.OwnedBy(sa.Labels, w.Mesh) {
			return kubeobj.Object{}, fmt.Errorf("cluster %s: meshd's ServiceAccount %s/%s is missing; nothing written, plan again",
				dp.Cluster, plan.CPAccountNamespace, plan.CPAccountName(k.ControlPlane))
		}
		tokens[dp.Cluster] = w.id("token", plan.CPAccountAddress(k.ControlPlane, dp.Cluster))
		records[dp.Cluster] = plan.TokenRecord{Issued: tokenClock, Expires: tokenClock.Add(k.TokenTTL), TTL: k.TokenTTL, AccountUID: sa.UID}
	}
	return k.Secret(tokens, records)
}

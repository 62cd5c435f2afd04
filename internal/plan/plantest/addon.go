package plantest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
)

// The members' EKS CoreDNS add-ons (World.Addons, by cluster) and the add-on API, as its stand-in in the
// sandbox answers it (shared/testing.md): UpdateAddon sets the configuration and, with resolveConflicts
// OVERWRITE, writes the add-on's Corefile into the cluster's coredns ConfigMap as field manager "eks":
// configurationValues.corefile, else the add-on's default, which in the world is the Corefile the cluster
// had before meshd (Cluster.Corefile). With PRESERVE, which meshd's executor uses as the AWS provider's
// does, the ConfigMap is left alone. So an add-on update takes meshd's blocks out of the ConfigMap unless
// meshd's configurationValues carry them (dns { corefile_via = "eks_addon" }: World.CorefileVia).

// withAddons hands the add-ons to the DNS part of the plan, as the engine does; without add-ons in the
// world, in stays as it is.
func (w *World) withAddons(in *plan.DNSInput) *plan.DNSInput {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.Addons != nil {
		in.CorefileVia, in.Addons = w.CorefileVia, maps.Clone(w.Addons)
	}
	return in
}

// UpdateAddon is an UpdateAddon call by someone else (Terraform or eksctl applying their configuration):
// the configuration of cluster's add-on becomes values and, with overwrite (resolveConflicts OVERWRITE),
// the add-on writes its Corefile into the ConfigMap.
func (w *World) UpdateAddon(cluster, values string, overwrite bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.Addons[cluster]
	if !ok {
		return
	}
	a.ConfigurationValues = values
	w.Addons[cluster] = a
	if !overwrite {
		return
	}
	text := w.originalCorefile[cluster]
	if c, err := corefile.ParseAddonConfig(values); err == nil {
		if configured, has, err := c.Corefile(); err == nil && has {
			text = configured
		}
	}
	o := w.DNS[cluster]
	cm := cloneConfigMap(o.CoreDNS)
	if cm == nil {
		cm = &model.ConfigMap{}
	}
	cm.Data = map[string]string{plan.CorefileKey: text}
	if !slices.Contains(cm.Managers, plan.EKSManager) {
		cm.Managers = append(cm.Managers, plan.EKSManager)
	}
	o.CoreDNS = cm
	w.DNS[cluster] = o
}

// AddonValues is the configuration of cluster's add-on now.
func (w *World) AddonValues(cluster string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.Addons[cluster].ConfigurationValues
}

type addonExecutor struct{ w *World }

func init() {
	executors.Register(func(w *World) apply.Executor { return addonExecutor{w} }, plan.KindAddonCorefile)
}

// Execute writes meshd's blocks into the add-on's configurationValues.corefile, or takes them out, as the
// AWS provider's executor does: it refuses a configuration other than the one planned, puts the blocks into
// the add-on's default Corefile (the ConfigMap's without meshd's blocks) when the configuration has no
// corefile, and updates the add-on with PRESERVE only when the configuration changes.
func (e addonExecutor) Execute(_ context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	before, _ := ch.Before.(plan.AddonCorefile)
	after, ok := ch.After.(plan.AddonCorefile)
	if ch.Action != plan.Update || !ok {
		return apply.Outcome{}, fmt.Errorf("%s: cannot %s an add-on's configuration", ch.Address, ch.Action.Verb())
	}
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	a, found := w.Addons[after.Cluster]
	switch {
	case !found && after.RemoveAll:
		return apply.Outcome{Record: func(st *state.State) { st.RemoveAddon(after.Cluster) }}, nil
	case !found:
		return apply.Outcome{}, fmt.Errorf("EKS cluster %s has no %s add-on any more: plan again", after.EKSCluster, model.CoreDNSAddon)
	case corefile.Hash(a.ConfigurationValues) != before.ConfigHash:
		return apply.Outcome{}, fmt.Errorf("the %s add-on configuration of EKS cluster %s changed since the plan: plan again", a.Name, after.EKSCluster)
	}
	out, record, err := w.addonConfig(a.ConfigurationValues, before, after, known)
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("%s: %w", ch.Address, err)
	}
	a.ConfigurationValues = out
	w.Addons[after.Cluster] = a
	return apply.Outcome{Record: record}, nil
}

// addonConfig is the configuration the change writes, and its record.
func (w *World) addonConfig(values string, before, after plan.AddonCorefile, known apply.Known) (string, func(*state.State), error) {
	if after.RemoveAll {
		out, _, err := corefile.RemoveAddonConfig(values, w.Mesh, before.Owned, before.Restore)
		return out, func(st *state.State) { st.RemoveAddon(after.Cluster) }, err
	}
	blocks, err := plan.Corefile{Blocks: after.Blocks}.Resolved(known)
	if err != nil {
		return "", nil, err
	}
	c, err := corefile.ParseAddonConfig(values)
	if err != nil {
		return "", nil, err
	}
	base := ""
	if _, has, err := c.Corefile(); err != nil {
		return "", nil, err
	} else if !has {
		cm := w.DNS[after.Cluster].CoreDNS
		if cm == nil {
			return "", nil, errors.New("no ConfigMap to read the add-on's default Corefile from")
		}
		if base, _, err = corefile.Remove(cm.Data[plan.CorefileKey], w.Mesh, after.ConfigMapOwned); err != nil {
			return "", nil, err
		}
	}
	out, _, rep, err := corefile.MergeAddonConfig(values, base, w.Mesh, before.Owned, blocks)
	if err != nil {
		return "", nil, err
	}
	if len(rep.Conflicts) > 0 {
		return "", nil, fmt.Errorf("the add-on's corefile now serves %s in a block meshd did not write; left alone", rep.Conflicts[0].Zone)
	}
	rec := after.Record(out)
	return out, func(st *state.State) { st.SetAddon(after.Cluster, rec) }, nil
}

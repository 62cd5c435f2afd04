package engine

import (
	"context"
	"fmt"

	"github.com/hashicorp/hcl/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

func init() {
	registerObserver(observer{name: "addons", order: 40, kinds: []plan.Kind{plan.KindAddonCorefile},
		on: func(o *observation) bool { return o.dnsOn }, observe: (*observation).observeAddons})
}

// observeAddons reads the EKS CoreDNS add-ons: AWS, observed with the rest of AWS or reused with it.
func (o *observation) observeAddons(ctx context.Context) (hcl.Diagnostics, error) {
	o.addons, _ = awsPart(o.v, "addons", func() (addonObservation, error) {
		ctx, cancel := o.e.awsObserveContext(ctx, o.v.scope)
		defer cancel()
		a := o.e.observeAddons(ctx, o.m, o.st, o.destroy)
		return a, a.err
	})
	return cloneDiags(o.addons.diags), o.addons.err
}

// addonObserver is the AWS side's view of the members' EKS CoreDNS add-ons (the AWS provider; a stub
// without it leaves the add-ons alone).
type addonObserver interface {
	ObserveAddons(ctx context.Context, targets []awsprovider.AddonTarget) (map[string]model.Addon, error)
}

// addonObservation is what observeAddons found, for the DNS part of the plan.
type addonObservation struct {
	addons map[string]model.Addon // nil: not observed
	diags  hcl.Diagnostics
	err    error
}

// into hands the add-ons to the planner.
func (o addonObservation) into(dns *plan.DNSInput, m *spec.Mesh) {
	dns.CorefileVia = m.CorefileVia
	dns.Addons = o.addons
}

// observeAddons looks up the CoreDNS add-on of every spec cluster that names an eks_cluster and of every
// add-on the state records meshd's blocks in (a cluster that left the mesh). With corefile_via =
// "eks_addon" it also checks that each add-on's version takes a corefile in its configuration: one that
// does not is an error against dns.corefile_via (for meshd, PartialDNS, a warning: that add-on is left
// alone and the rest corrected).
func (e *Engine) observeAddons(ctx context.Context, m *spec.Mesh, st *state.State, destroy bool) addonObservation {
	obs, ok := e.AWS.(addonObserver)
	if !ok {
		return addonObservation{}
	}
	via := m.CorefileVia == spec.CorefileViaEKSAddon && !destroy
	var targets []awsprovider.AddonTarget
	seen := map[string]bool{}
	for _, c := range m.Clusters {
		if c.EKSCluster != "" {
			targets = append(targets, awsprovider.AddonTarget{Cluster: c.Name, Region: c.Region, EKSCluster: c.EKSCluster, Schema: via})
			seen[c.Name] = true
		}
	}
	for name, rec := range st.Addons {
		if !seen[name] {
			targets = append(targets, awsprovider.AddonTarget{Cluster: name, Region: rec.Region, EKSCluster: rec.EKSCluster})
		}
	}
	addons, err := obs.ObserveAddons(ctx, targets)
	if err != nil {
		return addonObservation{err: err}
	}
	out := addonObservation{addons: addons}
	if !via {
		return out
	}
	sev := hcl.DiagError
	if e.PartialDNS {
		sev = hcl.DiagWarning
	}
	for _, c := range m.Clusters {
		if c.EKSCluster == "" {
			continue
		}
		a, found := addons[c.Name]
		switch {
		case !found:
			r := c.AttrRange("eks_cluster")
			out.diags = append(out.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "No EKS CoreDNS add-on",
				Detail: fmt.Sprintf(`corefile_via = "eks_addon", but EKS cluster %q (cluster %q) has no %s add-on: its CoreDNS is not managed by EKS, so meshd writes its blocks into the ConfigMap only.`,
					c.EKSCluster, c.Name, model.CoreDNSAddon), Subject: &r})
		case a.SchemaChecked && !a.SchemaHasCorefile:
			r := m.AttrRange("dns.corefile_via")
			out.diags = append(out.diags, &hcl.Diagnostic{Severity: sev, Summary: "EKS add-on version takes no corefile",
				Detail: fmt.Sprintf(`corefile_via = "eks_addon", but the configuration schema of the %s add-on %s of EKS cluster %q (cluster %q) has no corefile property, so meshd cannot put its blocks there. Update the add-on to a version whose schema has corefile (aws eks describe-addon-configuration), or set corefile_via = "configmap".`,
					a.Name, a.Version, c.EKSCluster, c.Name), Subject: &r})
		}
	}
	return out
}

// corefileReader reads the Corefile of a cluster's coredns ConfigMap, for the AWS side's add-on executor
// (the add-on's default Corefile is that text without meshd's blocks).
func corefileReader(clients func() kubeClients) func(ctx context.Context, kubeContext string) (string, error) {
	return func(ctx context.Context, kubeContext string) (string, error) {
		c, err := clients().Client(kubeContext)
		if err != nil {
			return "", err
		}
		cm, err := c.CoreV1().ConfigMaps(plan.DNSNamespace).Get(ctx, plan.CoreDNSConfigMap, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		text, ok := cm.Data[plan.CorefileKey]
		if !ok {
			return "", fmt.Errorf("%s/%s has no %s", plan.DNSNamespace, plan.CoreDNSConfigMap, plan.CorefileKey)
		}
		return text, nil
	}
}

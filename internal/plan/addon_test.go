package plan_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/planview"
)

// addonPlan plans the converged DNS world with cluster a's CoreDNS an EKS add-on holding values.
func (w *dnsWorld) addonPlan(via string, a model.Addon, destroy bool) *plan.Plan {
	in := w.world.DNSInput("namespace")
	in.CorefileVia = via
	in.Addons = map[string]model.Addon{"a": a}
	return plan.Compute(plan.Input{Mesh: "tidb", Members: w.members, Observed: w.world.Observed, State: w.st,
		Destroy: destroy, DNS: in})
}

func addonOf(values string) model.Addon {
	return model.Addon{Cluster: "a", Region: "us-west-1", EKSCluster: "a", Name: "coredns", Version: "v1.11.3-eksbuild.2",
		Status: "ACTIVE", ConfigurationValues: values, SchemaChecked: true, SchemaHasCorefile: true}
}

func TestAddonCorefilePlans(t *testing.T) {
	const secret = "AKIAIOSFODNN7SECRETTOKEN"
	user := `{"replicaCount":2,"corefile":"` + strings.ReplaceAll(strings.ReplaceAll(corefile.EKSDefault, "\n", `\n`), `"`, `\"`) + `# ` + secret + `\n"}`
	w := newDNSWorld().converge(t)

	// corefile_via = "configmap": no change, and the plan says what an add-on update would do.
	p := w.addonPlan("", addonOf(""), false)
	if p.HasChanges() || len(p.Addons) != 1 {
		t.Fatalf("configmap mode: changes %v, notes %v", p.HasChanges(), p.Addons)
	}
	if n := p.Addons[0]; n.HasCorefile || len(n.Lost) != 2 || !strings.Contains(n.OnOverwrite, "puts back the add-on's default Corefile") {
		t.Errorf("note for an add-on without corefile: %+v", n)
	}
	if n := w.addonPlan("", addonOf(user), false).Addons[0]; !n.HasCorefile || !strings.Contains(n.OnOverwrite, "writes its configured corefile") {
		t.Errorf("note for an add-on with its own corefile: %+v", n)
	}

	// corefile_via = "eks_addon": one change, carrying zones and hashes, never the text.
	p = w.addonPlan("eks_addon", addonOf(user), false)
	ch := p.Find(plan.AddonCorefileAddress("a"))
	if ch == nil || len(p.Changes) != 1 {
		t.Fatalf("eks_addon mode: want one change at addon_corefile[a], got %d", len(p.Changes))
	}
	after := ch.After.(plan.AddonCorefile)
	if len(after.Blocks) != 2 || !after.HasCorefile || after.Restore.HadCorefile != true || after.ConfigHash == "" {
		t.Errorf("after: %+v", after)
	}
	var human, js bytes.Buffer
	_ = planview.RenderHuman(&human, p)
	_ = planview.RenderJSON(&js, p)
	for _, out := range []string{human.String(), js.String()} {
		if strings.Contains(out, secret) || strings.Contains(out, "lameduck") {
			t.Fatalf("a plan holds the add-on's Corefile text:\n%s", out)
		}
	}
	if !strings.Contains(human.String(), "once this plan is applied, an add-on update with resolveConflicts=OVERWRITE keeps meshd's blocks") {
		t.Errorf("the note does not say that an update keeps the blocks once applied:\n%s", human.String())
	}

	// A version whose schema has no corefile: nothing planned for it (the engine reports it).
	old := addonOf("")
	old.SchemaHasCorefile = false
	if p := w.addonPlan("eks_addon", old, false); p.HasChanges() {
		t.Error("a change planned for an add-on version without corefile")
	}

	// With meshd's blocks in the add-on (recorded), "configmap" and destroy take them out, restoring the
	// configuration exactly.
	var blocks []corefile.Block
	for _, b := range after.Blocks {
		blocks = append(blocks, corefile.Block{Zone: b.Zone, Upstreams: b.Upstreams})
	}
	written, _, _, err := corefile.MergeAddonConfig(user, "", "tidb", nil, blocks)
	if err != nil {
		t.Fatal(err)
	}
	w.st.SetAddon("a", after.Record(written))
	if p := w.addonPlan("eks_addon", addonOf(written), false); p.HasChanges() {
		t.Errorf("a second plan changes the add-on again: %v", p.Changes)
	}
	for _, tc := range []struct {
		via     string
		destroy bool
	}{{"configmap", false}, {"eks_addon", true}} {
		p := w.addonPlan(tc.via, addonOf(written), tc.destroy)
		ch := p.Find(plan.AddonCorefileAddress("a"))
		if ch == nil {
			t.Fatalf("via %s, destroy %v: no removal planned", tc.via, tc.destroy)
		}
		if a := ch.After.(plan.AddonCorefile); !a.RemoveAll || !a.Restores || len(a.Removed) != 2 {
			t.Errorf("via %s, destroy %v: removal %+v", tc.via, tc.destroy, a)
		}
	}
	// The add-on gone: its record is forgotten.
	in := w.world.DNSInput("namespace")
	in.Addons = map[string]model.Addon{}
	if p := plan.Compute(plan.Input{Mesh: "tidb", Members: w.members, Observed: w.world.Observed, State: w.st, Destroy: true, DNS: in}); len(p.ForgetAddons) != 1 {
		t.Errorf("forget: %v", p.ForgetAddons)
	}
}

func TestAddonRepeatHintNamesTheOtherTools(t *testing.T) {
	h := plan.RepeatHint(plan.KindAddonCorefile)
	if !strings.Contains(h, "Terraform") || !strings.Contains(h, "eksctl") {
		t.Errorf("hint %q names neither Terraform nor eksctl", h)
	}
}

package plantest_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/kindio"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// drifts are how someone undoes a change of each built-in kind: the object the change made is deleted (or,
// for a Corefile, the ConfigMap's text reverted; for a load balancer's Service, meshd's annotation taken
// off; for an add-on, its configuration reset by an add-on update). A kind registered in kindio needs no
// entry: its Touches names the object, which is deleted through the world's fake client.
var drifts = map[plan.Kind]func(w *plantest.World, ch plan.Change){
	plan.KindPeering: func(w *plantest.World, ch plan.Change) {
		p := ch.After.(plan.Peering)
		if got, ok := w.PeeringBetween(p.Requester.VPCID, p.Accepter.VPCID); ok {
			got.Status = model.PeeringDeleted
			w.Observed.Peerings[got.ID] = got
		}
	},
	plan.KindRoute: func(w *plantest.World, ch plan.Change) {
		r := ch.After.(plan.Route)
		w.DeleteRoute(r.RouteTableID, r.DestinationCIDR)
	},
	plan.KindSGRule: func(w *plantest.World, ch plan.Change) {
		r := ch.After.(plan.SGRule)
		for _, rule := range w.Observed.Rules[r.GroupID] {
			if rule.Tags[model.TagID] == ch.Address {
				w.DeleteRule(r.GroupID, rule.ID)
			}
		}
	},
	plan.KindDNSService: func(w *plantest.World, ch plan.Change) { w.DeleteService(ch.After.(plan.DNSService).Cluster) },
	plan.KindCorefile:   func(w *plantest.World, ch plan.Change) { w.RevertCorefile(ch.After.(plan.Corefile).Cluster) },
	// Re-applying the node-local-dns manifest.
	plan.KindNodeLocalDNS: func(w *plantest.World, ch plan.Change) { w.RevertNodeLocal(ch.After.(plan.NodeLocalDNS).Cluster) },
	plan.KindReplica: func(w *plantest.World, ch plan.Change) {
		r := ch.After.(plan.Replica)
		w.DeleteObject(r.Cluster, r.ObjectKind, r.Namespace, r.Name)
	},
	// The ServiceAccount, the kubeconfig Secret, a secondary's binding: deleted.
	plan.KindCPAccount:          deleteWorldObject,
	plan.KindKubeconfig:         deleteWorldObject,
	plan.KindTargetGroupBinding: deleteWorldObject,
	// A kubectl apply of the user's manifest, which lacks meshd's annotation.
	plan.KindLBService: func(w *plantest.World, ch plan.Change) {
		s := ch.After.(plan.LBService)
		w.RemoveServiceAnnotation(s.Cluster, s.Namespace, s.Name, plan.AnnotationMultiClusterTargetGroup)
	},
	// Terraform applying its own configuration of the add-on (the one before meshd), with OVERWRITE.
	plan.KindAddonCorefile: func(w *plantest.World, ch plan.Change) {
		a := ch.After.(plan.AddonCorefile)
		w.UpdateAddon(a.Cluster, addonValues[a.Cluster], true)
	},
}

// deleteWorldObject deletes the object a change touched (KindInfo.Touches) from the world's objects.
func deleteWorldObject(w *plantest.World, ch plan.Change) {
	if ref, ok := plan.Touched(ch); ok {
		w.DeleteObject(ref.Cluster, ref.Kind, ref.Namespace, ref.Name)
	}
}

// updatedOnDestroy are the kinds whose objects are the user's (a Corefile, an add-on's configuration):
// destroy takes meshd's blocks out of them, an update.
var updatedOnDestroy = map[plan.Kind]bool{plan.KindCorefile: true, plan.KindAddonCorefile: true, plan.KindNodeLocalDNS: true}

// The members' EKS CoreDNS add-ons before meshd, by cluster: a's has no configuration, c's one of the
// user's without a corefile; b runs its own CoreDNS.
var addonValues = map[string]string{"a": "", "c": `{"replicaCount":2}`}

// The load balancer's Service as the user deployed it: its attributes annotation has an entry of the user's.
var lbAnnotations = map[string]string{
	"service.beta.kubernetes.io/aws-load-balancer-type": "external",
	plan.AnnotationLBAttributes:                         "load_balancing.cross_zone.enabled=true",
}

// TestEveryKindConforms takes every registered kind through the simulated world, driven by the registry:
// the mesh is created and applied (every kind makes at least one change), the next plan is empty; for each
// kind, one of its objects is undone, the plan repairs exactly that kind's drift and the plan after is
// empty; destroy leaves no record, and the world none of meshd's objects. At every step `state list`
// (plan.StateEntries) lists exactly the records the state file holds. It runs under each topology: the
// peering kinds and the Transit Gateway kinds are planned each under their own.
func TestEveryKindConforms(t *testing.T) {
	t.Run("peering", func(t *testing.T) { conforms(t, false) })
	t.Run("transit_gateway", func(t *testing.T) { conforms(t, true) })
}

func conforms(t *testing.T, transitGateway bool) {
	w, members := plantest.NewWorld("tidb", []plantest.Cluster{
		{Name: "a", Region: "us-west-2", CIDRs: []string{"10.1.0.0/16"}, RouteTables: 1},
		{Name: "b", Region: "us-west-2", CIDRs: []string{"10.2.0.0/16"}, RouteTables: 2},
		{Name: "c", Region: "us-east-1", CIDRs: []string{"10.3.0.0/16"}, RouteTables: 1},
	})
	// Cluster-domain mode, so that the NodeLocal DNSCache that b runs needs meshd's blocks.
	w.ForwardBy = spec.ForwardByClusterDomain
	for i := range members {
		members[i].Namespace = "ns-" + members[i].Name
		members[i].ClusterDomain = members[i].Name + ".local"
	}
	w.PutNodeLocal("b", plantest.NodeLocalCorefile("b.local"))
	if transitGateway {
		w.TransitGateways = &plan.TGWInput{Gateways: map[string]plan.TGWConfig{}}
	}
	otherTopology := plantest.TopologyKinds(transitGateway)
	src, err := kubeobj.New("Secret", "pingcap", "ca", map[string]any{"type": "Opaque", "data": kubeobj.SecretData(map[string][]byte{"ca.crt": []byte("cert")})})
	if err != nil {
		t.Fatal(err)
	}
	w.PutObject("a", src)
	w.Replicates = []plantest.Replicate{{Name: "ca", Cluster: "a", Kind: "Secret", Namespace: "pingcap", Obj: "ca", Targets: []string{"b", "c"}}}
	// A KubeBlocks control plane in a, its data planes b and c, which have its pod role.
	role, err := kubeobj.New("ClusterRole", "", "kb-pods", map[string]any{"rules": []any{
		map[string]any{"apiGroups": []any{""}, "resources": []any{"pods"}, "verbs": []any{"get", "list"}}}})
	if err != nil {
		t.Fatal(err)
	}
	w.PutObject("b", role)
	w.PutObject("c", role)
	w.ControlPlanes = []*spec.ControlPlane{{Name: "kb", Cluster: "a", SecretNamespace: "kb-system", SecretName: "kb-kubeconfig",
		ClusterRole: "kb-pods", TokenTTL: time.Hour}}
	// A Service in a whose load balancer's target group b and c join.
	w.PutService("a", "shop", "web", "LoadBalancer", 80, "8080", lbAnnotations)
	w.PutService("b", "shop", "web", "ClusterIP", 80, "8080", nil)
	w.PutService("c", "shop", "web", "ClusterIP", 80, "8080", nil)
	w.LoadBalancers = []*spec.LoadBalancer{{Name: "web", Primary: "a", Namespace: "shop", Service: "web", DeletionProtection: true}}
	// meshd's Corefile blocks go into the add-ons' configuration too.
	w.CorefileVia = spec.CorefileViaEKSAddon
	w.Addons = map[string]model.Addon{}
	for _, m := range members {
		if values, ok := addonValues[m.Name]; ok {
			w.Addons[m.Name] = model.Addon{Cluster: m.Name, Region: m.Region, EKSCluster: m.Name, Name: model.CoreDNSAddon,
				Version: "v1.11.3-eksbuild.2", Status: "ACTIVE", ConfigurationValues: values, SchemaChecked: true, SchemaHasCorefile: true}
		}
	}
	st := state.New("tidb")
	ctx := context.Background()

	compute := func(destroy bool) *plan.Plan {
		t.Helper()
		p := plan.Compute(w.Input(members, st, destroy))
		if len(p.Conflicts) > 0 {
			t.Fatalf("conflicts: %+v", p.Conflicts)
		}
		return p
	}
	run := func(step string, destroy bool) *plan.Plan {
		t.Helper()
		p := compute(destroy)
		if err := apply.Run(ctx, p, st, apply.Options{Executors: w.Executors()}).Err(); err != nil {
			t.Fatalf("%s: apply: %v", step, err)
		}
		listAgrees(t, step, st)
		return p
	}
	empty := func(step string, destroy bool) {
		t.Helper()
		if p := compute(destroy); p.HasChanges() {
			t.Errorf("%s: the next plan is not empty: %v", step, changeLines(p))
		}
	}

	created := map[plan.Kind]plan.Change{}
	for _, ch := range run("create", false).Changes {
		if ch.Action.IsChange() && ch.Action != plan.Delete { // a create, or an update of an object that was there (a Corefile)
			if _, ok := created[ch.Kind]; !ok {
				created[ch.Kind] = ch
			}
		}
	}
	empty("after create", false)

	for _, k := range plan.Kinds() {
		if _, other := otherTopology[k.Kind]; other {
			continue
		}
		t.Run(string(k.Kind), func(t *testing.T) {
			ch, ok := created[k.Kind]
			if !ok {
				t.Fatalf("the first apply made no %s", k.Kind)
			}
			drift, ok := drifts[k.Kind]
			if tgw, isTGW := plantest.TGWDrifts[k.Kind]; isTGW {
				drift, ok = tgw, true
			}
			if !ok {
				if _, isKube := kindio.KubeOf(k.Kind); !isKube || k.Touches == nil {
					t.Fatalf("kind %s: the world cannot undo its objects (no drift here, no kindio Kubernetes I/O)", k.Kind)
				}
				drift = func(w *plantest.World, ch plan.Change) { deleteTouched(t, w, ch) }
			}
			drift(w, ch)
			p := run("repair "+ch.Address, false)
			if !slices.ContainsFunc(p.Changes, func(c plan.Change) bool { return c.Address == ch.Address && c.Action.IsChange() }) {
				t.Errorf("after %s was undone, the plan does not repair it: %v", ch.Address, changeLines(p))
			}
			empty("after the repair of "+ch.Address, false)
		})
	}

	p := run("destroy", true)
	for k := range created {
		want := plan.Delete
		if updatedOnDestroy[k] {
			want = plan.Update
		}
		if !slices.ContainsFunc(p.Changes, func(c plan.Change) bool { return c.Kind == k && c.Action == want }) {
			t.Errorf("destroy makes no %s %s: %v", want, k, changeLines(p))
		}
	}
	if entries := plan.StateEntries(st); len(entries) != 0 {
		t.Errorf("after destroy the state still lists %v", addresses(entries))
	}
	empty("after destroy", true)
	for _, m := range members {
		if got, want := w.Corefile(m.Name), w.OriginalCorefile(m.Name); got != want {
			t.Errorf("after destroy %s's Corefile is\n%s\nwant\n%s", m.Name, got, want)
		}
		if got, want := w.NodeLocal(m.Name); got != want {
			t.Errorf("after destroy %s's NodeLocal DNSCache Corefile is\n%s\nwant\n%s", m.Name, got, want)
		}
		for key, o := range w.Objects[m.Name] {
			if model.OwnedBy(o.Labels, w.Mesh) {
				t.Errorf("after destroy %s still has meshd's %s", m.Name, key)
			}
		}
	}
	for cluster, want := range addonValues {
		if got := w.AddonValues(cluster); got != want {
			t.Errorf("after destroy the add-on configuration of %s is %q, want %q as before meshd", cluster, got, want)
		}
	}
	if got := w.Service("a", "shop", "web").Annotations; !maps.Equal(got, lbAnnotations) {
		t.Errorf("after destroy the load balancer's Service has the annotations %v, want %v as before meshd", got, lbAnnotations)
	}
}

// listAgrees: plan.StateEntries lists one entry per record of the state file (counted in its JSON, so
// that a record no kind lists fails), and no address twice.
func listAgrees(t *testing.T, step string, st *state.State) {
	t.Helper()
	data, err := state.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	records, err := plantest.StateRecords(data)
	if err != nil {
		t.Fatal(err)
	}
	entries := addresses(plan.StateEntries(st))
	if len(entries) != records {
		t.Errorf("%s: the state holds %d records, state list shows %d: %v", step, records, len(entries), entries)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(entries)))) != len(entries) {
		t.Errorf("%s: state list shows an address twice: %v", step, entries)
	}
}

// deleteTouched deletes the object a change touched (KindInfo.Touches) through the world's fake client of
// its cluster, as kubectl delete would.
func deleteTouched(t *testing.T, w *plantest.World, ch plan.Change) {
	t.Helper()
	ref, ok := plan.Touched(ch)
	if !ok {
		t.Fatalf("%s touches no object", ch.Address)
	}
	c := w.KubeClient(ref.Cluster)
	ctx := context.Background()
	var err error
	switch ref.APIVersion + " " + ref.Kind {
	case "v1 ConfigMap":
		err = c.CoreV1().ConfigMaps(ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{})
	case "v1 Secret":
		err = c.CoreV1().Secrets(ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{})
	case "v1 Service":
		err = c.CoreV1().Services(ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{})
	case "v1 ServiceAccount":
		err = c.CoreV1().ServiceAccounts(ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{})
	default:
		k, lerr := kubeobj.Lookup(ref.Kind)
		if lerr != nil {
			t.Fatalf("%s: %v", ch.Address, lerr)
		}
		err = c.Resource(k.GVR).Namespace(ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{})
	}
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("deleting what %s touched: %v", ch.Address, err)
	}
}

func addresses(entries []state.Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Address)
	}
	return out
}

func changeLines(p *plan.Plan) []string {
	var out []string
	for _, ch := range p.Changes {
		if ch.Action.IsChange() {
			out = append(out, string(ch.Action)+" "+ch.Address+": "+ch.Reason)
		}
	}
	return out
}

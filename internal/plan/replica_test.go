package plan_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/planview"
	"github.com/meshd-io/meshd/internal/state"
)

// The replica fixture: replicate "tidb-ca" copies the TiDB CA Secret pingcap/cluster1-ca-secret of cluster a
// into b and c; replicate "kb-role" copies KubeBlocks' aggregated ClusterRole of a into b.
const (
	caReplicate   = "tidb-ca"
	caName        = "cluster1-ca-secret"
	caNamespace   = "pingcap"
	roleReplicate = "kb-role"
	roleName      = "kubeblocks-cluster-pod-role"
	lastApplied   = "kubectl.kubernetes.io/last-applied-configuration"
)

// caValues are the Secret's values: no plan, rendered either way, may hold one, raw or base64.
var caValues = map[string]string{
	"ca.crt":  "-----BEGIN CERTIFICATE-----\nca-cert-value-do-not-print\n-----END CERTIFICATE-----\n",
	"tls.crt": "-----BEGIN CERTIFICATE-----\ntls-cert-value-do-not-print\n-----END CERTIFICATE-----\n",
	"tls.key": "-----BEGIN EC PRIVATE KEY-----\ntls-key-value-do-not-print\n-----END EC PRIVATE KEY-----\n",
}

// caSecret is the source Secret as observed, with the given type and tls.key, as cert-manager keeps it and
// someone once applied it with kubectl (whose last-applied annotation holds the data).
func caSecret(t *testing.T, typ, key string) kubeobj.Object {
	t.Helper()
	data := map[string][]byte{}
	for k, v := range caValues {
		data[k] = []byte(v)
	}
	data["tls.key"] = []byte(key)
	o, err := kubeobj.New("Secret", caNamespace, caName, map[string]any{"type": typ, "data": kubeobj.SecretData(data)})
	if err != nil {
		t.Fatal(err)
	}
	o.Labels = map[string]string{"app.kubernetes.io/component": "tidb-ca"}
	o.Annotations = map[string]string{
		"cert-manager.io/certificate-name": "cluster1-ca",
		"cert-manager.io/issuer-name":      "selfsigned",
		"tidb.pingcap.com/note":            "kept",
		lastApplied:                        lastAppliedOf(o),
	}
	o.UID = "uid-source"
	return o
}

// lastAppliedOf is kubectl's last-applied annotation of o: the whole object, data values included.
func lastAppliedOf(o kubeobj.Object) string {
	var data []string
	if d, ok := o.Content["data"].(map[string]any); ok {
		for _, k := range []string{"ca.crt", "tls.crt", "tls.key"} {
			data = append(data, fmt.Sprintf("%q:%q", k, d[k]))
		}
	}
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":%q},"data":{%s}}`, o.Name, strings.Join(data, ","))
}

func source(t *testing.T) kubeobj.Object {
	return caSecret(t, "kubernetes.io/tls", caValues["tls.key"])
}

// aggregatedRole is KubeBlocks' ClusterRole: aggregated, with the rules the controller filled in.
func aggregatedRole(t *testing.T) kubeobj.Object {
	t.Helper()
	o, err := kubeobj.New("ClusterRole", "", roleName, map[string]any{
		"rules": []any{
			map[string]any{"apiGroups": []any{""}, "resources": []any{"pods"}, "verbs": []any{"get", "list"}},
			map[string]any{"apiGroups": []any{"apps.kubeblocks.io"}, "resources": []any{"clusters"}, "verbs": []any{"get"}},
		},
		"aggregationRule": map[string]any{"clusterRoleSelectors": []any{
			map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/required-by": "pod"}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	o.Labels = map[string]string{"app.kubernetes.io/name": "kubeblocks"}
	return o
}

// ownedCopy is the copy meshd wrote in cluster of src.
func ownedCopy(src kubeobj.Object, cluster string) *kubeobj.Object {
	c, _ := plan.DesiredCopy(src, "a", src.Namespace)
	c = kubeobj.Own(c, "tidb")
	c.UID = "uid-copy-" + cluster
	return &c
}

// foreignCopy is an object of the copy's kind and name someone else made, with kubectl apply.
func foreignCopy(src kubeobj.Object, cluster string) *kubeobj.Object {
	c := *ownedCopy(src, cluster)
	c.Labels = map[string]string{"app.kubernetes.io/component": "tidb-ca"}
	c.Annotations = map[string]string{lastApplied: lastAppliedOf(c)}
	return &c
}

func caRecord(cluster string) state.ReplicaRecord {
	return state.ReplicaRecord{Cluster: cluster, KubeContext: "ctx-" + cluster, Kind: "Secret", Namespace: caNamespace, Name: caName}
}

// caInput replicates src (nil: missing) into the targets, each with the copy observed there (nil: none).
func caInput(src *kubeobj.Object, copies map[string]*kubeobj.Object) *plan.ReplicaInput {
	s := plan.ReplicaSource{Replicate: caReplicate, Cluster: "a", KubeContext: "ctx-a", Kind: "Secret",
		Namespace: caNamespace, Name: caName, Object: src, Missing: src == nil}
	for _, cluster := range []string{"b", "c"} {
		if cp, ok := copies[cluster]; ok {
			s.Targets = append(s.Targets, plan.ReplicaTarget{Cluster: cluster, KubeContext: "ctx-" + cluster, Namespace: caNamespace, Copy: cp})
		}
	}
	return &plan.ReplicaInput{Sources: []plan.ReplicaSource{s}}
}

// replicaPlan plans the copies alone: no members, so no network changes (the replica part reads none).
func replicaPlan(in *plan.ReplicaInput, st *state.State, adopt, destroy bool) *plan.Plan {
	return plan.Compute(plan.Input{Mesh: "tidb", Adopt: adopt, Observed: model.NewObserved(),
		State: st, Destroy: destroy, Replicas: in})
}

// replicaLines renders the replica changes as "<action> <address>: <reason>", conflicts as
// "! <address>: <summary>", warnings as "warning: <text>" and the records to forget as "forget <address>".
func replicaLines(p *plan.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		if c.Kind == plan.KindReplica {
			out = append(out, fmt.Sprintf("%s %s: %s", c.Action, c.Address, c.Reason))
		}
	}
	for _, c := range p.Conflicts {
		out = append(out, fmt.Sprintf("! %s: %s", c.Address, c.Summary))
	}
	for _, w := range p.Warnings {
		out = append(out, "warning: "+w)
	}
	for _, a := range p.ForgetReplicas {
		out = append(out, "forget "+a)
	}
	for _, a := range slices.Sorted(maps.Keys(p.RecordReplicas)) {
		r := p.RecordReplicas[a]
		out = append(out, fmt.Sprintf("record %s: %s %s/%s in %s", a, r.Kind, r.Namespace, r.Name, r.Cluster))
	}
	return out
}

func TestReplicas(t *testing.T) {
	src := source(t)
	renewed := caSecret(t, "kubernetes.io/tls", "-----BEGIN EC PRIVATE KEY-----\nold-key-value\n-----END EC PRIVATE KEY-----\n")
	opaque := caSecret(t, "Opaque", caValues["tls.key"])
	role := aggregatedRole(t)
	b, c := plan.ReplicaAddress(caReplicate, "b"), plan.ReplicaAddress(caReplicate, "c")
	const (
		adoptReason   = "exists, not owned: adopt (label as meshd's) and make it the source's copy"
		conflictB     = "Cluster b already has a Secret pingcap/cluster1-ca-secret that meshd did not create"
		flattenReason = " (an aggregated ClusterRole is copied flattened: the target has no roles to aggregate)"
	)

	cases := map[string]struct {
		reason   string
		in       *plan.ReplicaInput
		recorded map[string]state.ReplicaRecord
		adopt    bool
		destroy  bool
		want     []string
	}{
		"no copies": {
			reason: "A copy missing in a target is created.",
			in:     caInput(&src, map[string]*kubeobj.Object{"b": nil, "c": nil}),
			want:   []string{"+ " + b + ": copy missing", "+ " + c + ": copy missing"},
		},
		"copy deleted outside meshd": {
			reason:   "A recorded copy that is gone is created again, and the plan says someone deleted it.",
			in:       caInput(&src, map[string]*kubeobj.Object{"b": nil, "c": ownedCopy(src, "c")}),
			recorded: map[string]state.ReplicaRecord{b: caRecord("b"), c: caRecord("c")},
			want:     []string{"+ " + b + ": copy was deleted outside meshd"},
		},
		"identical": {
			reason:   "meshd's copies with the source's content: nothing to do.",
			in:       caInput(&src, map[string]*kubeobj.Object{"b": ownedCopy(src, "b"), "c": ownedCopy(src, "c")}),
			recorded: map[string]state.ReplicaRecord{b: caRecord("b"), c: caRecord("c")},
		},
		"other data": {
			reason:   "A copy of the CA before its renewal is updated in place; the reason names the key, not its value.",
			in:       caInput(&src, map[string]*kubeobj.Object{"b": ownedCopy(renewed, "b"), "c": ownedCopy(src, "c")}),
			recorded: map[string]state.ReplicaRecord{b: caRecord("b"), c: caRecord("c")},
			want:     []string{"~ " + b + ": the copy's annotations[meshd.io/content-hash], data[tls.key] differ from the source"},
		},
		"other type": {
			reason:   "A Secret's type cannot change in place: the copy is replaced.",
			in:       caInput(&src, map[string]*kubeobj.Object{"b": ownedCopy(opaque, "b"), "c": ownedCopy(src, "c")}),
			recorded: map[string]state.ReplicaRecord{b: caRecord("b"), c: caRecord("c")},
			want:     []string{"-/+ " + b + ": the copy's type cannot change in place"},
		},
		"foreign copy": {
			reason: "An object meshd did not make stands where the copy goes: a conflict, nothing written.",
			in:     caInput(&src, map[string]*kubeobj.Object{"b": foreignCopy(src, "b"), "c": nil}),
			want:   []string{"+ " + c + ": copy missing", "! " + b + ": " + conflictB},
		},
		"foreign copy, adopt": {
			reason: "With adopt = true the object is taken over.",
			in:     caInput(&src, map[string]*kubeobj.Object{"b": foreignCopy(src, "b"), "c": ownedCopy(src, "c")}),
			adopt:  true,
			want:   []string{"> " + b + ": " + adoptReason, "record " + c + ": Secret pingcap/cluster1-ca-secret in c"},
		},
		"foreign copy of another type, adopt": {
			reason: "Adopting an object whose type cannot change replaces it; only the type is named as what cannot change.",
			in:     caInput(&src, map[string]*kubeobj.Object{"b": foreignCopy(opaque, "b"), "c": ownedCopy(src, "c")}),
			adopt:  true,
			want:   []string{"-/+ " + b + ": exists, not owned: adopt by replacing it with the source's copy (its type cannot change in place)", "record " + c + ": Secret pingcap/cluster1-ca-secret in c"},
		},
		"missing source": {
			reason:   "A CA must not vanish because its source did: no change, a warning, the records kept.",
			in:       caInput(nil, map[string]*kubeobj.Object{"b": ownedCopy(src, "b"), "c": nil}),
			recorded: map[string]state.ReplicaRecord{b: caRecord("b"), c: caRecord("c")},
			want: []string{"warning: The source of replicate \"tidb-ca\", Secret pingcap/cluster1-ca-secret in cluster a, does not exist: " +
				"its copies are kept as they are until it is back."},
		},
		"aggregated ClusterRole": {
			reason: "An aggregated ClusterRole is created as its current rules.",
			in: &plan.ReplicaInput{Sources: []plan.ReplicaSource{{Replicate: roleReplicate, Cluster: "a", KubeContext: "ctx-a",
				Kind: "ClusterRole", Name: roleName, Object: &role, Targets: []plan.ReplicaTarget{{Cluster: "b", KubeContext: "ctx-b"}}}}},
			want: []string{"+ " + plan.ReplicaAddress(roleReplicate, "b") + ": copy missing" + flattenReason},
		},
		"orphans": {
			reason: "Recorded copies no block wants: meshd's is deleted, a gone one or someone else's forgotten, one not observed left alone.",
			in: &plan.ReplicaInput{Orphans: map[string]*kubeobj.Object{
				"replica[old-ca:b]": ownedCopy(src, "b"),
				"replica[old-ca:c]": nil,
				"replica[theirs:b]": foreignCopy(src, "b"),
				// replica[unread:c] could not be read: no entry.
			}},
			recorded: map[string]state.ReplicaRecord{
				"replica[old-ca:b]": caRecord("b"), "replica[old-ca:c]": caRecord("c"),
				"replica[theirs:b]": caRecord("b"), "replica[unread:c]": caRecord("c"),
			},
			want: []string{"- replica[old-ca:b]: no longer replicated there", "forget replica[old-ca:c]", "forget replica[theirs:b]"},
		},
		"renamed block": {
			reason: "A block renamed from old-name: its copies are the new address's, recorded there, never deleted and made again.",
			in: &plan.ReplicaInput{
				Sources: caInput(&src, map[string]*kubeobj.Object{"b": ownedCopy(src, "b")}).Sources,
				Orphans: map[string]*kubeobj.Object{"replica[old-name:b]": ownedCopy(src, "b")},
			},
			recorded: map[string]state.ReplicaRecord{"replica[old-name:b]": caRecord("b")},
			want:     []string{"forget replica[old-name:b]", "record " + b + ": Secret pingcap/cluster1-ca-secret in b"},
		},
		"copy moves": {
			reason: "The block's namespace changed: the copy is made in the new one and the recorded one, meshd's, goes (-/+).",
			in: func() *plan.ReplicaInput {
				in := caInput(&src, map[string]*kubeobj.Object{"b": nil})
				in.Sources[0].Targets[0].Namespace = "pingcap-new"
				in.Previous = map[string]*kubeobj.Object{b: ownedCopy(src, "b")}
				return in
			}(),
			recorded: map[string]state.ReplicaRecord{b: caRecord("b")},
			want:     []string{"-/+ " + b + ": the copy moves from Secret pingcap/cluster1-ca-secret to Secret pingcap-new/cluster1-ca-secret"},
		},
		"destroy": {
			reason: "Destroy deletes every recorded copy that is meshd's and creates none, whatever the blocks ask.",
			in: &plan.ReplicaInput{
				Sources: caInput(&src, map[string]*kubeobj.Object{"b": nil, "c": nil}).Sources,
				Orphans: map[string]*kubeobj.Object{b: ownedCopy(src, "b"), c: ownedCopy(src, "c"), "replica[theirs:b]": foreignCopy(src, "b")},
			},
			recorded: map[string]state.ReplicaRecord{b: caRecord("b"), c: caRecord("c"), "replica[theirs:b]": caRecord("b")},
			destroy:  true,
			want:     []string{"- " + b + ": destroy", "- " + c + ": destroy", "forget replica[theirs:b]"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st := state.New("tidb")
			for addr, rec := range tc.recorded {
				st.SetReplica(addr, rec)
			}
			p := replicaPlan(tc.in, st, tc.adopt, tc.destroy)
			if diff := cmp.Diff(tc.want, replicaLines(p)); diff != "" {
				t.Errorf("%s\nplan (-want, +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// TestReplicaResources checks what the changes carry for apply: the source to read again, the hash its
// copy must have, the UID a write to an observed object is pinned to, Adopting and Flattened.
func TestReplicaResources(t *testing.T) {
	src := source(t)
	opaque := caSecret(t, "Opaque", caValues["tls.key"])
	role := aggregatedRole(t)
	want, _ := plan.DesiredCopy(src, "a", caNamespace)
	hash := kubeobj.ContentHash(want)
	b := plan.ReplicaAddress(caReplicate, "b")

	p := replicaPlan(caInput(&src, map[string]*kubeobj.Object{"b": nil}), state.New("tidb"), false, false)
	created := p.Find(b)
	if created == nil {
		t.Fatalf("no change at %s", b)
	}
	wantAfter := plan.Replica{Replicate: caReplicate, Cluster: "b", KubeContext: "ctx-b", APIVersion: "v1", ObjectKind: "Secret",
		Namespace: caNamespace, Name: caName, SourceCluster: "a", SourceContext: "ctx-a", SourceNamespace: caNamespace,
		Labels:      map[string]string{"app.kubernetes.io/component": "tidb-ca", model.LabelManagedBy: model.ManagedByMeshd, model.LabelMesh: "tidb"},
		Annotations: want.Annotations, Keys: []string{"ca.crt", "tls.crt", "tls.key"}, ContentHash: hash, Sensitive: true}
	if diff := cmp.Diff(wantAfter, created.After); diff != "" {
		t.Errorf("create: After (-want, +got):\n%s", diff)
	}
	if created.Before != nil {
		t.Errorf("create: Before = %#v, want nil", created.Before)
	}
	if got := created.After.(plan.Replica).Record(); got != caRecord("b") {
		t.Errorf("create: Record() = %+v, want %+v", got, caRecord("b"))
	}

	p = replicaPlan(caInput(&src, map[string]*kubeobj.Object{"b": foreignCopy(opaque, "b")}), state.New("tidb"), true, false)
	replaced := p.Find(b)
	if replaced == nil || replaced.Action != plan.Replace {
		t.Fatalf("adopting an Opaque Secret: %v, want a replacement", replicaLines(p))
	}
	before, after := replaced.Before.(plan.Replica), replaced.After.(plan.Replica)
	if !after.Adopting || after.UID != "uid-copy-b" || before.UID != "uid-copy-b" || after.ContentHash != hash {
		t.Errorf("adopting replacement: After Adopting %v UID %q hash %q, Before UID %q; want true, uid-copy-b, %s, uid-copy-b",
			after.Adopting, after.UID, after.ContentHash, before.UID, hash)
	}
	if before.SourceCluster != "a" || before.SourceNamespace != caNamespace || before.Cluster != "b" {
		t.Errorf("adopting replacement: Before source %s/%s in %s, want a/pingcap in b", before.SourceCluster, before.SourceNamespace, before.Cluster)
	}

	p = replicaPlan(&plan.ReplicaInput{Sources: []plan.ReplicaSource{{Replicate: roleReplicate, Cluster: "a", KubeContext: "ctx-a",
		Kind: "ClusterRole", Name: roleName, Object: &role, Targets: []plan.ReplicaTarget{{Cluster: "b", KubeContext: "ctx-b"}}}}},
		state.New("tidb"), false, false)
	flat := p.Find(plan.ReplicaAddress(roleReplicate, "b"))
	if flat == nil {
		t.Fatal("no change for the ClusterRole")
	}
	if r := flat.After.(plan.Replica); !r.Flattened || r.Namespace != "" || r.Detail != "2 rule(s)" || r.Sensitive {
		t.Errorf("ClusterRole copy: Flattened %v, namespace %q, detail %q, sensitive %v; want true, none, 2 rule(s), false",
			r.Flattened, r.Namespace, r.Detail, r.Sensitive)
	}
}

func TestDesiredCopy(t *testing.T) {
	src := source(t)
	cp, flattened := plan.DesiredCopy(src, "a", "pingcap-b")
	if flattened {
		t.Error("a Secret is flattened")
	}
	wantAnnotations := map[string]string{
		"tidb.pingcap.com/note":       "kept",
		plan.AnnotationReplicatedFrom: "a/pingcap/cluster1-ca-secret",
		plan.AnnotationContentHash:    "sha256:" + kubeobj.ContentHash(src),
	}
	if diff := cmp.Diff(wantAnnotations, cp.Annotations); diff != "" {
		t.Errorf("Secret copy annotations: cert-manager's and kubectl's stripped, the source and hash added (-want, +got):\n%s", diff)
	}
	if cp.Namespace != "pingcap-b" || cp.Name != caName || cp.Kind != "Secret" || cp.APIVersion != "v1" {
		t.Errorf("Secret copy is %s (%s), want Secret pingcap-b/%s (v1)", cp.Ref(), cp.APIVersion, caName)
	}
	if diff := cmp.Diff(src.Labels, cp.Labels); diff != "" {
		t.Errorf("Secret copy labels (-want, +got):\n%s", diff)
	}
	if diff := cmp.Diff(src.Content, cp.Content); diff != "" {
		t.Errorf("Secret copy content (-want, +got):\n%s", diff)
	}
	if cp.UID != "" {
		t.Errorf("Secret copy has the source's UID %q", cp.UID)
	}
	if _, ok := src.Annotations[lastApplied]; !ok || len(src.Annotations) != 4 {
		t.Errorf("DesiredCopy changed the source's annotations: %v", slicesOfKeys(src.Annotations))
	}

	// On other kinds cert-manager's annotations are nobody's bookkeeping: they are copied; kubectl's are not.
	cm, err := kubeobj.New("ConfigMap", caNamespace, "tidb-config", map[string]any{"data": map[string]any{"config.toml": "x = 1"}})
	if err != nil {
		t.Fatal(err)
	}
	cm.Annotations = map[string]string{"cert-manager.io/inject-ca-from": "pingcap/ca", lastApplied: `{"data":{"config.toml":"x = 1"}}`}
	cmCopy, _ := plan.DesiredCopy(cm, "a", caNamespace)
	wantAnnotations = map[string]string{
		"cert-manager.io/inject-ca-from": "pingcap/ca",
		plan.AnnotationReplicatedFrom:    "a/pingcap/tidb-config",
		plan.AnnotationContentHash:       "sha256:" + kubeobj.ContentHash(cm),
	}
	if diff := cmp.Diff(wantAnnotations, cmCopy.Annotations); diff != "" {
		t.Errorf("ConfigMap copy annotations (-want, +got):\n%s", diff)
	}

	role := aggregatedRole(t)
	roleCopy, flattened := plan.DesiredCopy(role, "a", "")
	if !flattened {
		t.Error("an aggregated ClusterRole is not flattened")
	}
	if _, ok := roleCopy.Content["aggregationRule"]; ok {
		t.Error("the ClusterRole copy keeps its aggregationRule: the target's controller would empty its rules")
	}
	if diff := cmp.Diff(role.Content["rules"], roleCopy.Content["rules"]); diff != "" {
		t.Errorf("ClusterRole copy rules (-want, +got):\n%s", diff)
	}
	if _, ok := role.Content["aggregationRule"]; !ok {
		t.Error("DesiredCopy removed the source's aggregationRule")
	}
	if got := roleCopy.Annotations[plan.AnnotationReplicatedFrom]; got != "a/"+roleName {
		t.Errorf("ClusterRole copy replicated-from %q, want a/%s", got, roleName)
	}
	if got, want := roleCopy.Annotations[plan.AnnotationContentHash], "sha256:"+kubeobj.ContentHash(roleCopy); got != want {
		t.Errorf("ClusterRole copy content-hash %q, want the flattened copy's %q", got, want)
	}
}

func slicesOfKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// TestReplicaPlanShowsNoSecret renders a plan with every kind of replica change, human and JSON, and
// looks for the Secret's values, raw and base64: the observed copies carry kubectl's last-applied
// annotation, which holds them.
func TestReplicaPlanShowsNoSecret(t *testing.T) {
	src := source(t)
	opaque := caSecret(t, "Opaque", caValues["tls.key"])
	renewed := caSecret(t, "kubernetes.io/tls", "-----BEGIN EC PRIVATE KEY-----\nold-key-value-do-not-print\n-----END EC PRIVATE KEY-----\n")
	edited := ownedCopy(renewed, "c")
	edited.Annotations[lastApplied] = lastAppliedOf(*edited)
	orphan := ownedCopy(src, "e")
	orphan.Annotations[lastApplied] = lastAppliedOf(*orphan)

	in := caInput(&src, map[string]*kubeobj.Object{"b": foreignCopy(opaque, "b"), "c": edited})
	in.Sources[0].Targets = append(in.Sources[0].Targets, plan.ReplicaTarget{Cluster: "d", KubeContext: "ctx-d", Namespace: caNamespace})
	in.Orphans = map[string]*kubeobj.Object{"replica[old-ca:e]": orphan}
	st := state.New("tidb")
	st.SetReplica("replica[old-ca:e]", caRecord("e"))
	p := replicaPlan(in, st, true, false)
	if got := p.Summary(); got != (plan.Summary{Add: 2, Change: 1, Destroy: 2}) {
		t.Fatalf("summary %+v, want a create, an update, a replacement and a delete:\n%s", got, strings.Join(replicaLines(p), "\n"))
	}

	var human, js bytes.Buffer
	if err := planview.RenderHuman(&human, p); err != nil {
		t.Fatal(err)
	}
	if err := planview.RenderJSON(&js, p); err != nil {
		t.Fatal(err)
	}
	values := []string{"do-not-print"}
	for _, v := range caValues {
		values = append(values, v, base64.StdEncoding.EncodeToString([]byte(v)))
	}
	values = append(values, base64.StdEncoding.EncodeToString([]byte("-----BEGIN EC PRIVATE KEY-----\nold-key-value-do-not-print\n-----END EC PRIVATE KEY-----\n")))
	for what, out := range map[string]string{"RenderHuman": human.String(), "RenderJSON": js.String()} {
		for _, v := range values {
			if strings.Contains(out, v) {
				t.Errorf("%s shows a Secret value (%.20q...):\n%s", what, v, out)
				break
			}
		}
		for _, s := range []string{"ca.crt", "tls.crt", "tls.key", "sha256:"} {
			if !strings.Contains(out, s) {
				t.Errorf("%s does not show %q:\n%s", what, s, out)
			}
		}
	}
}

// replicaWorld is the simulated world's objects (plantest.World.Objects), whose executor for KindReplica
// writes copies as the kube provider's does: it reads the source again and refuses a changed one.
type replicaWorld struct{ *plantest.World }

func (w replicaWorld) get(cluster, kind, namespace, name string) *kubeobj.Object {
	return w.Object(cluster, kind, namespace, name)
}

func (w replicaWorld) put(cluster string, o kubeobj.Object) { w.PutObject(cluster, o) }

// input observes the world as the engine does for replicate "tidb-ca" from a to b and c.
func (w replicaWorld) input(st *state.State, wanted bool) *plan.ReplicaInput {
	in := &plan.ReplicaInput{Orphans: map[string]*kubeobj.Object{}}
	if wanted {
		copies := map[string]*kubeobj.Object{}
		for _, c := range []string{"b", "c"} {
			copies[c] = w.get(c, "Secret", caNamespace, caName)
		}
		in = caInput(w.get("a", "Secret", caNamespace, caName), copies)
		in.Orphans = map[string]*kubeobj.Object{}
	}
	for addr, rec := range st.Replicas {
		if !wanted || !strings.HasPrefix(addr, "replica["+caReplicate+":") {
			in.Orphans[addr] = w.get(rec.Cluster, rec.Kind, rec.Namespace, rec.Name)
		}
	}
	return in
}

// TestReplicaApply runs plan, apply, plan: the copies are made and recorded, a second plan is empty, a
// renewed source reaches the copies, and destroy removes them and their records, leaving the source.
func TestReplicaApply(t *testing.T) {
	world, _ := plantest.NewWorld("tidb", nil)
	w := replicaWorld{world}
	w.put("a", source(t))
	st := state.New("tidb")
	run := func(destroy bool) *plan.Plan {
		t.Helper()
		p := replicaPlan(w.input(st, !destroy), st, false, destroy)
		res := apply.Run(context.Background(), p, st, apply.Options{Executors: w.Executors()})
		if err := res.Err(); err != nil {
			t.Fatalf("apply: %v", err)
		}
		return p
	}
	empty := func(when string) {
		t.Helper()
		if lines := replicaLines(replicaPlan(w.input(st, true), st, false, false)); len(lines) != 0 {
			t.Errorf("%s, the next plan is not empty: %v", when, lines)
		}
	}

	run(false)
	if diff := cmp.Diff(map[string]state.ReplicaRecord{
		plan.ReplicaAddress(caReplicate, "b"): caRecord("b"), plan.ReplicaAddress(caReplicate, "c"): caRecord("c"),
	}, st.Replicas); diff != "" {
		t.Errorf("recorded copies (-want, +got):\n%s", diff)
	}
	empty("after the copies are made")

	w.put("a", caSecret(t, "kubernetes.io/tls", "-----BEGIN EC PRIVATE KEY-----\nrenewed\n-----END EC PRIVATE KEY-----\n"))
	p := run(false)
	if got := p.Summary(); got != (plan.Summary{Change: 2}) {
		t.Errorf("after the source's renewal: %v, want two updates", replicaLines(p))
	}
	empty("after the renewal reached the copies")

	p = run(true)
	if got := p.Summary(); got != (plan.Summary{Destroy: 2}) {
		t.Errorf("destroy: %v, want two deletes", replicaLines(p))
	}
	if len(st.Replicas) != 0 || w.get("b", "Secret", caNamespace, caName) != nil || w.get("c", "Secret", caNamespace, caName) != nil {
		t.Errorf("after destroy: records %v, copies in b %v, c %v; want none", st.Replicas,
			w.get("b", "Secret", caNamespace, caName) != nil, w.get("c", "Secret", caNamespace, caName) != nil)
	}
	if w.get("a", "Secret", caNamespace, caName) == nil {
		t.Error("destroy deleted the source")
	}
}

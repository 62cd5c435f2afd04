package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshd-io/meshd/internal/cli"
)

// replicateEnv is a sandbox with the objects of the two replication runbooks: the TiDB CA Secret in
// tidb-1, shaped as cert-manager makes it, and KubeBlocks' aggregated ClusterRole.
type replicateEnv struct {
	*e2e
	t       testing.TB
	secrets [][]byte // the Secret's values, searched for in every output
}

const (
	caNamespace = "pingcap"
	caSecret    = "cluster1-ca-secret"
	kbRole      = "kubeblocks-cluster-pod-role"
)

func newReplicateEnv(t testing.TB) *replicateEnv {
	e := newE2E(t)
	r := &replicateEnv{e2e: e, t: t}
	e.setenv(t)
	ctx := context.Background()
	for _, c := range e.sb.Clusters {
		r.ensureNamespace(c.Name, caNamespace)
	}
	c1 := e.sb.Clients[e.sb.Clusters[0].Name]
	owner, err := c1.CoreV1().ConfigMaps(caNamespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ca-owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.writeCA("first")
	// The owner reference (cert-manager's Certificate, here a stand-in object) must not travel to the copies.
	s, err := c1.CoreV1().Secrets(caNamespace).Get(ctx, caSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}}
	if _, err := c1.CoreV1().Secrets(caNamespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// An aggregated ClusterRole as the aggregation controller leaves it: the rules it gathered are set.
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: kbRole, Labels: map[string]string{"app.kubernetes.io/name": "kubeblocks"}},
		AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
			{MatchLabels: map[string]string{"apps.kubeblocks.io/aggregate-to-pod": "true"}}}},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"apps.kubeblocks.io"}, Resources: []string{"clusters"}, Verbs: []string{"get"}},
		},
	}
	if _, err := c1.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return r
}

// setenv gives this process the sandbox's environment: meshctl runs in it.
func (e *e2e) setenv(t testing.TB) {
	e.sb.SetEnv(t)
}

func (r *replicateEnv) client(cluster string) kubernetes.Interface { return r.sb.Clients[cluster] }

func (r *replicateEnv) ensureNamespace(cluster, name string) {
	_, err := r.client(cluster).CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		r.t.Fatal(err)
	}
}

// writeCA creates or renews the CA Secret in tidb-1 with values unique to generation, which every output
// is later searched for.
func (r *replicateEnv) writeCA(generation string) {
	ctx := context.Background()
	data := map[string][]byte{
		"ca.crt":  []byte("-----BEGIN CERTIFICATE-----\nMESHD-TEST-CA-" + generation + "-c2VjcmV0\n-----END CERTIFICATE-----\n"),
		"tls.crt": []byte("-----BEGIN CERTIFICATE-----\nMESHD-TEST-CRT-" + generation + "\n-----END CERTIFICATE-----\n"),
		"tls.key": []byte("-----BEGIN PRIVATE KEY-----\nMESHD-TEST-KEY-" + generation + "\n-----END PRIVATE KEY-----\n"),
	}
	for _, v := range data {
		r.secrets = append(r.secrets, v)
	}
	secrets := r.client(r.sb.Clusters[0].Name).CoreV1().Secrets(caNamespace)
	cur, err := secrets.Get(ctx, caSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: caSecret, Labels: map[string]string{"app.kubernetes.io/component": "tidb-ca"},
				Annotations: map[string]string{
					"cert-manager.io/certificate-name":                 "cluster1-ca",
					"cert-manager.io/issuer-name":                      "selfsigned",
					"kubectl.kubernetes.io/last-applied-configuration": `{"kind":"Secret"}`,
					"team.example.com/owner":                           "dba",
				}},
			Type: corev1.SecretTypeTLS, Data: data,
		}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			r.t.Fatal(err)
		}
		return
	}
	if err != nil {
		r.t.Fatal(err)
	}
	cur.Data = data
	if _, err := secrets.Update(ctx, cur, metav1.UpdateOptions{FieldManager: "cert-manager"}); err != nil {
		r.t.Fatal(err)
	}
}

// spec writes the spec: the three clusters (network only: DNS is another test's) and the blocks given.
func (r *replicateEnv) spec(adopt bool, blocks ...string) {
	var b strings.Builder
	fmt.Fprintf(&b, "mesh \"tidb\" {\n  adopt = %v\n  dns {\n    enabled = false\n  }\n}\n", adopt)
	for _, c := range r.sb.Clusters {
		fmt.Fprintf(&b, "\ncluster %q {\n  region       = %q\n  kube_context = %q\n  eks_cluster  = %q\n  namespace    = %q\n}\n",
			c.Name, c.Region, c.Context, c.Name, c.Namespace)
	}
	for _, blk := range blocks {
		b.WriteString("\n" + blk)
	}
	r.writeFile("mesh.hcl", b.String())
}

const (
	caBlock = `replicate "tidb-ca" {
  from {
    cluster   = "tidb-1"
    kind      = "Secret"
    namespace = "pingcap"
    name      = "cluster1-ca-secret"
  }
  to = ["tidb-2", "tidb-3"]
}
`
	roleBlock = `replicate "kubeblocks-pod-role" {
  from {
    cluster = "tidb-1"
    kind    = "ClusterRole"
    name    = "kubeblocks-cluster-pod-role"
  }
}
`
)

// meshctl runs meshctl against the sandbox and returns stdout and stderr.
func (r *replicateEnv) meshctl(want int, args ...string) (string, string) {
	r.t.Helper()
	var out, errb bytes.Buffer
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
	// Flags before a saved plan's path (the flag package stops at the first argument).
	full := append([]string{args[0], "--spec", r.e2e.spec, "--state", r.state, "--kubeconfig", r.sb.Kubeconfig}, args[1:]...)
	if code := app.Main(context.Background(), full); code != want {
		r.t.Fatalf("meshctl %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// noSecrets fails when any of the Secret's values, raw or base64, occurs in text.
func (r *replicateEnv) noSecrets(where, text string) {
	r.t.Helper()
	for _, v := range r.secrets {
		for _, form := range []string{string(v), base64.StdEncoding.EncodeToString(v), strings.Split(string(v), "\n")[1]} {
			if strings.Contains(text, form) {
				r.t.Errorf("%s contains a value of the Secret (%.30q...)", where, form)
			}
		}
	}
}

func (r *replicateEnv) copyOf(cluster string) *corev1.Secret {
	s, err := r.client(cluster).CoreV1().Secrets(caNamespace).Get(context.Background(), caSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *replicateEnv) source() *corev1.Secret { return r.copyOf(r.sb.Clusters[0].Name) }

// checkCopy asserts that cluster's copy has the source's type and data, its labels and non-private
// annotations, meshd's labels and source annotation, and none of the server-set or controller fields.
func (r *replicateEnv) checkCopy(cluster string) {
	r.t.Helper()
	src, cp := r.source(), r.copyOf(cluster)
	if cp == nil {
		r.t.Fatalf("%s has no copy of the CA Secret", cluster)
	}
	if cp.Type != src.Type || !mapsEqualBytes(cp.Data, src.Data) {
		r.t.Errorf("%s's copy: type %s and %d keys; want the source's type %s and data", cluster, cp.Type, len(cp.Data), src.Type)
	}
	if cp.Labels["app.kubernetes.io/component"] != "tidb-ca" || cp.Labels["app.kubernetes.io/managed-by"] != "meshd" || cp.Labels["meshd.io/mesh"] != "tidb" {
		r.t.Errorf("%s's copy labels %v: want the source's and meshd's", cluster, cp.Labels)
	}
	if cp.Annotations["team.example.com/owner"] != "dba" || cp.Annotations["meshd.io/replicated-from"] != "tidb-1/pingcap/cluster1-ca-secret" ||
		!strings.HasPrefix(cp.Annotations["meshd.io/content-hash"], "sha256:") {
		r.t.Errorf("%s's copy annotations %v: want the source's own, the source and the content hash", cluster, cp.Annotations)
	}
	for k := range cp.Annotations {
		if strings.HasPrefix(k, "cert-manager.io/") || k == "kubectl.kubernetes.io/last-applied-configuration" {
			r.t.Errorf("%s's copy carries the annotation %s", cluster, k)
		}
	}
	if len(cp.OwnerReferences) != 0 || len(cp.Finalizers) != 0 || cp.UID == src.UID {
		r.t.Errorf("%s's copy carries ownerReferences %v, finalizers %v", cluster, cp.OwnerReferences, cp.Finalizers)
	}
}

func mapsEqualBytes(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestReplicateOnSandbox runs both replication runbooks through meshctl and meshd on the sandbox's real API
// servers: the TiDB CA Secret and KubeBlocks' aggregated ClusterRole, renewal, drift, a foreign object, bad
// input, destroy, and that the Secret's values appear in no output.
func TestReplicateOnSandbox(t *testing.T) {
	r := newReplicateEnv(t)
	ctx := context.Background()
	c1, c2, c3 := r.sb.Clusters[0].Name, r.sb.Clusters[1].Name, r.sb.Clusters[2].Name

	// Bad input changes nothing: a missing target namespace is an error with its position, a missing source
	// a warning (its copies, of which there are none yet, would be kept).
	r.spec(false, strings.Replace(caBlock, `to = ["tidb-2", "tidb-3"]`, "to        = [\"tidb-2\"]\n  namespace = \"nope\"", 1))
	_, stderr := r.meshctl(1, "plan")
	if !strings.Contains(stderr, "Target namespace missing") || !strings.Contains(stderr, "mesh.hcl:") || !strings.Contains(stderr, `"tidb-2"`) {
		t.Errorf("missing target namespace: stderr does not name it with its position:\n%s", stderr)
	}
	r.spec(false, strings.Replace(caBlock, "cluster1-ca-secret", "no-such-secret", 1))
	out, stderr := r.meshctl(0, "apply", "--auto-approve")
	if !strings.Contains(stderr+out, "Replicated object missing") || !strings.Contains(stderr+out, "mesh.hcl:") {
		t.Errorf("missing source: no warning with its position:\n%s\n%s", out, stderr)
	}
	if r.copyOf(c2) != nil {
		t.Fatal("a copy was made although the spec had errors")
	}

	// A Secret of the same name as a copy, made by someone else in tidb-3: a conflict, left alone.
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: caSecret, Namespace: caNamespace}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte("theirs"), "tls.key": []byte("theirs"), "mine": []byte("theirs")}}
	if _, err := r.client(c3).CoreV1().Secrets(caNamespace).Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The TiDB and KubeBlocks cases. The foreign Secret is a conflict: plan and apply refuse, nothing changes.
	r.spec(false, caBlock, roleBlock)
	human, _ := r.meshctl(1, "plan")
	if !strings.Contains(human, "Conflict: Cluster tidb-3 already has a Secret pingcap/cluster1-ca-secret that meshd did not create") {
		t.Errorf("plan does not report the foreign Secret as a conflict:\n%s", human)
	}
	r.meshctl(1, "apply", "--auto-approve")
	if cp := r.copyOf(c3); cp == nil || string(cp.Data["mine"]) != "theirs" || cp.Labels["app.kubernetes.io/managed-by"] != "" {
		t.Errorf("the foreign Secret in tidb-3 was changed: %v", cp)
	}
	if r.copyOf(c2) != nil {
		t.Error("apply made a copy although the plan had a conflict")
	}

	// adopt = true takes it over: plan (human, JSON, saved), apply, copies as the runbooks make them.
	r.spec(true, caBlock, roleBlock)
	human, _ = r.meshctl(2, "plan", "--detailed-exitcode")
	jsonOut, _ := r.meshctl(2, "plan", "--json", "--detailed-exitcode")
	saved := filepath.Join(r.dir, "replicate.plan")
	r.meshctl(2, "plan", "--out", saved, "--detailed-exitcode")
	savedText, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"+ replica[tidb-ca:tidb-2]", "> replica[tidb-ca:tidb-3]", `"ca.crt, tls.crt, tls.key"`, "(sensitive: sha256:", "flattened"} {
		if !strings.Contains(human, want) {
			t.Errorf("plan does not show %q:\n%s", want, human)
		}
	}
	r.noSecrets("plan text", human)
	r.noSecrets("plan JSON", jsonOut)
	r.noSecrets("saved plan", string(savedText))
	applyOut, applyErr := r.meshctl(0, "apply", saved)
	r.noSecrets("apply output", applyOut+applyErr)
	r.checkCopy(c2)
	r.checkCopy(c3)
	if _, ok := r.copyOf(c3).Data["mine"]; ok {
		t.Error("the adopted copy keeps a key the source does not have")
	}
	for _, c := range []string{c2, c3} {
		role, err := r.client(c).RbacV1().ClusterRoles().Get(ctx, kbRole, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if role.AggregationRule != nil || len(role.Rules) != 2 || role.Rules[0].Resources[0] != "pods" {
			t.Errorf("%s's copy of the aggregated role: aggregationRule %v, rules %v; want the rules, flattened", c, role.AggregationRule, role.Rules)
		}
	}
	r.spec(false, caBlock, roleBlock)
	r.meshctl(0, "plan", "--detailed-exitcode")

	// The source disappears for a moment: the copies stay, with a warning at the from block.
	src := r.source()
	if err := r.client(c1).CoreV1().Secrets(caNamespace).Delete(ctx, caSecret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	out, stderr = r.meshctl(0, "apply", "--auto-approve")
	if !strings.Contains(stderr+out, "Replicated object missing") || !strings.Contains(stderr+out, "mesh.hcl:30,3-7") {
		t.Errorf("missing source: no warning at the from block (mesh.hcl:30,3-7):\n%s\n%s", out, stderr)
	}
	if r.copyOf(c2) == nil || r.copyOf(c3) == nil {
		t.Fatal("a copy was deleted because its source disappeared")
	}
	src.ResourceVersion, src.UID, src.OwnerReferences = "", "", nil
	if _, err := r.client(c1).CoreV1().Secrets(caNamespace).Create(ctx, src, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A renamed block keeps its copies: nothing is deleted, the next plan is empty.
	r.spec(false, strings.Replace(caBlock, `replicate "tidb-ca"`, `replicate "tidb-ca-renamed"`, 1), roleBlock)
	before := r.copyOf(c2).UID
	r.meshctl(0, "apply", "--auto-approve")
	if cp := r.copyOf(c2); cp == nil || cp.UID != before {
		t.Error("renaming the block deleted and made again tidb-2's copy")
	}
	r.meshctl(0, "plan", "--detailed-exitcode")
	r.spec(false, caBlock, roleBlock)
	r.meshctl(0, "apply", "--auto-approve")

	// The CA is renewed: the plan updates both copies, apply makes them equal again.
	r.writeCA("second")
	human, _ = r.meshctl(2, "plan", "--detailed-exitcode")
	for _, c := range []string{c2, c3} {
		if !strings.Contains(human, "~ replica[tidb-ca:"+c+"]") {
			t.Errorf("after the renewal the plan does not update %s's copy:\n%s", c, human)
		}
	}
	r.noSecrets("plan text after renewal", human)
	r.meshctl(0, "apply", "--auto-approve")
	r.checkCopy(c2)
	r.checkCopy(c3)

	// meshd keeps it true from its watches (the interval is an hour): a renewal, a deleted and an edited copy.
	m := r.start("--interval", "1h", "--state", r.state)
	r.writeCA("third")
	r.waitFor(30*time.Second, "both copies renewed by meshd", func() bool {
		return r.sameAsSource(c2) && r.sameAsSource(c3)
	})
	if err := r.client(c2).CoreV1().Secrets(caNamespace).Delete(ctx, caSecret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitFor(30*time.Second, "tidb-2's deleted copy restored", func() bool { return r.copyOf(c2) != nil && r.sameAsSource(c2) })
	edited := r.copyOf(c3)
	edited.Data["ca.crt"] = []byte("edited by hand")
	if _, err := r.client(c3).CoreV1().Secrets(caNamespace).Update(ctx, edited, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	r.waitFor(30*time.Second, "tidb-3's edited copy restored", func() bool { return r.sameAsSource(c3) })
	r.checkCopy(c2)
	r.checkCopy(c3)
	r.kill(m, syscall.SIGTERM)
	log, err := os.ReadFile(m.log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "replica[tidb-ca:tidb-2]") {
		t.Error("meshd's log does not mention the replica it corrected")
	}
	r.noSecrets("meshd's log", string(log))
	var events strings.Builder
	for _, c := range r.sb.Clusters {
		list, err := r.client(c.Name).CoreV1().Events("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range list.Items {
			fmt.Fprintf(&events, "%s %s %s\n", ev.InvolvedObject.Name, ev.Reason, ev.Message)
		}
	}
	if !strings.Contains(events.String(), "DriftCorrected") {
		t.Errorf("no Event records meshd's corrections:\n%s", events.String())
	}
	r.noSecrets("Events", events.String())

	// A block removed and a target removed from to: those copies go, the others stay.
	r.spec(false, strings.Replace(caBlock, `to = ["tidb-2", "tidb-3"]`, `to = ["tidb-2"]`, 1))
	human, _ = r.meshctl(2, "plan", "--detailed-exitcode")
	for _, want := range []string{"- replica[tidb-ca:tidb-3]", "- replica[kubeblocks-pod-role:tidb-2]", "- replica[kubeblocks-pod-role:tidb-3]"} {
		if !strings.Contains(human, want) {
			t.Errorf("after removing a target and a block the plan does not show %q:\n%s", want, human)
		}
	}
	r.meshctl(0, "apply", "--auto-approve")
	if r.copyOf(c3) != nil || !r.sameAsSource(c2) {
		t.Errorf("after removing tidb-3 from to: tidb-3 copy %v, tidb-2 copy current %v", r.copyOf(c3) != nil, r.sameAsSource(c2))
	}
	for _, c := range []string{c2, c3} {
		if _, err := r.client(c).RbacV1().ClusterRoles().Get(ctx, kbRole, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s's role copy after its block was removed: %v", c, err)
		}
	}

	// Destroy removes exactly the copies: the sources stay.
	r.meshctl(0, "destroy", "--auto-approve")
	for _, c := range []string{c2, c3} {
		if r.copyOf(c) != nil {
			t.Errorf("%s's copy survived destroy", c)
		}
	}
	if r.source() == nil {
		t.Error("destroy deleted the source Secret")
	}
	if _, err := r.client(c1).RbacV1().ClusterRoles().Get(ctx, kbRole, metav1.GetOptions{}); err != nil {
		t.Errorf("destroy touched the source role: %v", err)
	}
}

// sameAsSource reports whether cluster's copy holds the source's current data.
func (r *replicateEnv) sameAsSource(cluster string) bool {
	cp := r.copyOf(cluster)
	return cp != nil && mapsEqualBytes(cp.Data, r.source().Data) && slices.Contains([]string{"meshd"}, cp.Labels["app.kubernetes.io/managed-by"])
}

package kubeobj_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/sandbox/crds"
	"github.com/meshd-io/meshd/internal/testenv"
)

const (
	mesh = "tidb"
	ns   = "default"
	// theirLabel is someone else's label on an object meshd owns: meshd's writes keep it.
	theirLabel = "someone.else/label"
	// secretValue is recognisable in any message that leaks it.
	secretValue = "hunter2-do-not-print-me"
)

type cluster struct {
	srv  *testenv.APIServer
	kube kubeclient.Interface
	c    *kubeobj.Client
}

// TestAgainstAPIServer runs the client against one real kube-apiserver (its start is most of the cost, so
// the kinds share it): a round trip per kind, the ownership checks and the UID precondition.
func TestAgainstAPIServer(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := testenv.StartAPIServer(t, etcd.ClientURL, "kubeobj")
	kube, err := kubeclient.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	cl := &cluster{srv: srv, kube: kube, c: kubeobj.NewClient(kube, mesh)}

	t.Run("Secret", cl.testSecret)
	t.Run("ConfigMap", cl.testConfigMap)
	t.Run("ClusterRole", cl.testAggregatedClusterRole)
	t.Run("RoleBinding", cl.testRoleBinding)
	t.Run("ServiceAccount", cl.testServiceAccountToken)
	t.Run("TargetGroupBinding", cl.testTargetGroupBinding)
	t.Run("Ownership", cl.testOwnership)
	t.Run("StaleUID", cl.testStaleUID)
	t.Run("ErrorsQuotingSecrets", cl.testErrorsQuotingSecrets)
}

func object(t *testing.T, kind, namespace, name string, content map[string]any) kubeobj.Object {
	t.Helper()
	o, err := kubeobj.New(kind, namespace, name, content)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// roundTrip creates want, checks the observed object shows no drift, has someone else label it, updates it
// to changed, checks again (and that their label survived), deletes it, and returns nothing left behind.
func (cl *cluster) roundTrip(t *testing.T, want, changed kubeobj.Object) {
	t.Helper()
	ctx := context.Background()
	if _, err := cl.c.Create(ctx, want); err != nil {
		t.Fatal(err)
	}
	observed := cl.get(t, want)
	if diff := kubeobj.Diff(kubeobj.Own(want, mesh), observed); len(diff) != 0 {
		t.Errorf("after create, %s differs from what meshd wrote in %v (server defaults must not drift)", want.Ref(), diff)
	}
	if !slices.Contains(observed.Managers, model.FieldManager) {
		t.Errorf("%s: field managers %v, want %q among them", want.Ref(), observed.Managers, model.FieldManager)
	}
	cl.labelAsSomeoneElse(t, want)

	if _, err := cl.c.Update(ctx, changed); err != nil {
		t.Fatal(err)
	}
	observed = cl.get(t, want)
	if diff := kubeobj.Diff(kubeobj.Own(changed, mesh), observed); len(diff) != 0 {
		t.Errorf("after update, %s differs from what meshd wrote in %v", want.Ref(), diff)
	}
	if got := observed.Labels[theirLabel]; got != "kept" {
		t.Errorf("after update, %s has %s=%q, want someone else's label kept", want.Ref(), theirLabel, got)
	}

	if err := cl.c.Delete(ctx, observed); err != nil {
		t.Fatal(err)
	}
	if o, err := cl.c.Get(ctx, want.Kind, want.Namespace, want.Name); err != nil || o != nil {
		t.Errorf("after delete, Get %s = %v, %v; want nil, nil", want.Ref(), o, err)
	}
}

func (cl *cluster) get(t *testing.T, o kubeobj.Object) kubeobj.Object {
	t.Helper()
	got, err := cl.c.Get(context.Background(), o.Kind, o.Namespace, o.Name)
	if err != nil || got == nil {
		t.Fatalf("Get %s: %v, %v", o.Ref(), got, err)
	}
	return *got
}

// raw is the resource of o's kind, to act as someone other than meshd.
func (cl *cluster) raw(t *testing.T, o kubeobj.Object) dynamic.ResourceInterface {
	t.Helper()
	k, err := kubeobj.Lookup(o.Kind)
	if err != nil {
		t.Fatal(err)
	}
	if k.Namespaced {
		return cl.kube.Resource(k.GVR).Namespace(o.Namespace)
	}
	return cl.kube.Resource(k.GVR)
}

// labelAsSomeoneElse adds theirLabel as a kubectl user would, not through kubeobj.
func (cl *cluster) labelAsSomeoneElse(t *testing.T, o kubeobj.Object) {
	t.Helper()
	r := cl.raw(t, o)
	u, err := r.Get(context.Background(), o.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	labels := u.GetLabels()
	labels[theirLabel] = "kept"
	u.SetLabels(labels)
	if _, err := r.Update(context.Background(), u, metav1.UpdateOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
}

// assertNoSecret fails if s holds any of values, raw or base64.
func assertNoSecret(t *testing.T, what, s string, values ...string) {
	t.Helper()
	for _, v := range values {
		values = append(values, base64.StdEncoding.EncodeToString([]byte(v)))
	}
	for _, v := range values {
		if strings.Contains(s, v) {
			t.Errorf("%s contains a Secret value or token: %s", what, s)
		}
	}
}

// testSecret: a kubernetes.io/tls Secret with a real (self-signed) certificate and key, and a recognisable
// extra value that no message may show.
func (cl *cluster) testSecret(t *testing.T) {
	certPEM, keyPEM := selfSigned(t)
	tls := func(extra string) map[string]any {
		return map[string]any{"type": "kubernetes.io/tls", "data": kubeobj.SecretData(map[string][]byte{
			"ca.crt":  certPEM,
			"tls.crt": certPEM,
			"tls.key": keyPEM,
			"extra":   []byte(extra),
		})}
	}
	want := object(t, "Secret", ns, "meshd-tls", tls(secretValue))
	changed := object(t, "Secret", ns, "meshd-tls", tls("rotated-"+secretValue))
	cl.roundTrip(t, want, changed)

	// Type is immutable: the planner must see delete+create, and an Update is refused by the API server.
	ctx := context.Background()
	created, err := cl.c.Create(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	opaque := object(t, "Secret", ns, "meshd-tls", map[string]any{"type": "Opaque", "data": want.Content["data"]})
	if !kubeobj.NeedsReplace(opaque, created) {
		t.Errorf("NeedsReplace(Opaque, %s) = false, want true: a Secret's type cannot change", created.Content["type"])
	}
	if _, err = cl.c.Update(ctx, opaque); err == nil {
		t.Errorf("Update changed a Secret's type")
	} else {
		assertNoSecret(t, "the type-change error", err.Error(), secretValue, string(keyPEM))
	}
	if _, err = cl.c.Create(ctx, want); !apierrors.IsAlreadyExists(err) {
		t.Errorf("Create twice: %v, want AlreadyExists", err)
	} else {
		assertNoSecret(t, "the AlreadyExists error", err.Error(), secretValue, string(keyPEM))
	}
	if s := kubeobj.Summary(created); !strings.Contains(s, "keys [ca.crt extra tls.crt tls.key]") {
		t.Errorf("Summary = %q, want the key names", s)
	}
	assertNoSecret(t, "Summary", kubeobj.Summary(created), secretValue, string(keyPEM))

	// The API server's own errors never quote Secret data, so a check on them could not fail: an admission
	// webhook that does quote it is ErrorsQuotingSecrets (webhook_test.go).
	if err := cl.c.Delete(ctx, created); err != nil {
		t.Fatal(err)
	}
}

// selfSigned returns a PEM certificate and its PEM private key.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "meshd-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func (cl *cluster) testConfigMap(t *testing.T) {
	want := object(t, "ConfigMap", ns, "meshd-config", map[string]any{"data": map[string]string{"a": "1"}})
	want.Annotations = map[string]string{"meshd.io/id": "config[a]"}
	changed := object(t, "ConfigMap", ns, "meshd-config", map[string]any{"data": map[string]string{"a": "2", "b": "3"}})
	changed.Annotations = want.Annotations
	cl.roundTrip(t, want, changed)
}

func (cl *cluster) testAggregatedClusterRole(t *testing.T) {
	aggregated := func(label string) map[string]any {
		return map[string]any{"aggregationRule": map[string]any{"clusterRoleSelectors": []any{
			map[string]any{"matchLabels": map[string]any{"meshd.io/aggregate-to": label}}}}}
	}
	want := object(t, "ClusterRole", "", "meshd-aggregate", aggregated("reader"))
	changed := object(t, "ClusterRole", "", "meshd-aggregate", aggregated("writer"))
	cl.roundTrip(t, want, changed)
}

func (cl *cluster) testRoleBinding(t *testing.T) {
	binding := func(subjects ...any) map[string]any {
		return map[string]any{
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
			"subjects": subjects,
		}
	}
	sa := map[string]any{"kind": "ServiceAccount", "name": "meshd", "namespace": ns}
	// The API server defaults a User subject's apiGroup: a field meshd leaves out must not show as drift.
	user := map[string]any{"kind": "User", "name": "meshd-operator"}
	want := object(t, "RoleBinding", ns, "meshd-view", binding(sa))
	changed := object(t, "RoleBinding", ns, "meshd-view", binding(sa, user))
	cl.roundTrip(t, want, changed)
}

func (cl *cluster) testServiceAccountToken(t *testing.T) {
	want := object(t, "ServiceAccount", ns, "meshd-member", nil)
	changed := want
	changed.Annotations = map[string]string{"meshd.io/id": "member[a]"}
	cl.roundTrip(t, want, changed)

	ctx := context.Background()
	if _, err := cl.c.Create(ctx, want); err != nil {
		t.Fatal(err)
	}
	const ttl = 15 * time.Minute
	before := time.Now()
	token, expiry, err := cl.c.CreateToken(ctx, ns, "meshd-member", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if d := expiry.Sub(before.Add(ttl)); d < -time.Minute || d > time.Minute {
		t.Errorf("token expiry %s is %s off now+%s", expiry, d, ttl)
	}
	// The token authenticates: the API server knows who it is (403, it may do nothing) rather than
	// refusing it (401). A made-up token gets the 401, so the check can tell them apart.
	for tok, wantUnauthorized := range map[string]bool{token: false, "not-a-token": true} {
		kube, err := kubeclient.NewForConfig(&rest.Config{Host: cl.srv.Host, BearerToken: tok, TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if got := apierrors.IsUnauthorized(err); got != wantUnauthorized {
			t.Errorf("GET namespace with the token (made up: %v): %v", wantUnauthorized, err)
		}
		if !wantUnauthorized && err != nil && !apierrors.IsForbidden(err) {
			t.Errorf("GET namespace with the ServiceAccount's token: %v, want 200 or 403", err)
		}
	}
	if _, _, err := cl.c.CreateToken(ctx, ns, "meshd-member", 5*time.Minute); err == nil {
		t.Errorf("CreateToken accepted a ttl below the API server's minimum")
	}
	_, _, err = cl.c.CreateToken(ctx, ns, "no-such-account", ttl)
	if !apierrors.IsNotFound(err) {
		t.Errorf("CreateToken for a missing ServiceAccount: %v, want NotFound", err)
	} else {
		assertNoSecret(t, "CreateToken's error", err.Error(), token)
	}
	if err := cl.c.Delete(ctx, cl.get(t, want)); err != nil {
		t.Fatal(err)
	}
}

func (cl *cluster) testTargetGroupBinding(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := testenv.InstallCRD(ctx, cl.srv.RESTConfig(), crds.TargetGroupBinding); err != nil {
		t.Fatal(err)
	}
	spec := func(port any) map[string]any {
		return map[string]any{"spec": map[string]any{
			"targetGroupARN":          "arn:aws:elasticloadbalancing:us-west-1:123456789012:targetgroup/k8s-dns/0123456789abcdef",
			"targetType":              "ip",
			"ipAddressType":           "ipv4",
			"vpcID":                   "vpc-0b15ed35c02af5288",
			"multiClusterTargetGroup": true,
			"serviceRef":              map[string]any{"name": "across-cluster-dns-tcp", "port": port},
			"networking": map[string]any{"ingress": []any{map[string]any{
				"from":  []any{map[string]any{"ipBlock": map[string]any{"cidr": "10.2.0.0/16"}}},
				"ports": []any{map[string]any{"protocol": "TCP", "port": 53}},
			}}},
		}}
	}
	want := object(t, "TargetGroupBinding", ns, "k8s-dns", spec(53))
	changed := object(t, "TargetGroupBinding", ns, "k8s-dns", spec("dns-tcp"))
	cl.roundTrip(t, want, changed)

	bad := object(t, "TargetGroupBinding", ns, "k8s-bad", map[string]any{"spec": map[string]any{
		"targetType": "lambda", "serviceRef": map[string]any{"name": "s", "port": 53}}})
	if _, err := cl.c.Create(ctx, bad); !apierrors.IsInvalid(err) {
		t.Errorf("Create with targetType lambda: %v, want Invalid (the CRD's enum)", err)
	}
}

// testOwnership: an object without meshd's labels for this mesh (someone else's, or another mesh's) is
// never modified or deleted.
func (cl *cluster) testOwnership(t *testing.T) {
	ctx := context.Background()
	for name, labels := range map[string]map[string]string{
		"unlabelled":   nil,
		"another mesh": {model.LabelManagedBy: model.ManagedByMeshd, model.LabelMesh: "other"},
		"helm's":       {model.LabelManagedBy: "Helm", model.LabelMesh: mesh},
	} {
		t.Run(name, func(t *testing.T) {
			theirs := object(t, "ConfigMap", ns, "theirs-"+strings.ReplaceAll(strings.ReplaceAll(name, " ", "-"), "'", ""),
				map[string]any{"data": map[string]any{"k": "theirs"}})
			theirs.Labels = labels
			u, err := theirs.ToUnstructured()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.raw(t, theirs).Create(ctx, u, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			mine := theirs
			mine.Content = map[string]any{"data": map[string]any{"k": "meshd's"}}
			if _, err := cl.c.Update(ctx, mine); !errors.Is(err, kubeobj.ErrNotOwned) {
				t.Errorf("Update of %s: %v, want ErrNotOwned", theirs.Ref(), err)
			}
			observed := cl.get(t, theirs)
			if err := cl.c.Delete(ctx, observed); !errors.Is(err, kubeobj.ErrNotOwned) {
				t.Errorf("Delete of %s: %v, want ErrNotOwned", theirs.Ref(), err)
			}
			after := cl.get(t, theirs)
			if diff := cmp.Diff(theirs.Content, after.Content); diff != "" || after.UID != observed.UID {
				t.Errorf("%s was modified or replaced (-want, +got content):\n%s", theirs.Ref(), diff)
			}
		})
	}
}

// testStaleUID: a delete planned against an object that was since deleted and created again leaves the new
// one alone.
func (cl *cluster) testStaleUID(t *testing.T) {
	ctx := context.Background()
	want := object(t, "ConfigMap", ns, "meshd-recreated", map[string]any{"data": map[string]any{"k": "v"}})
	first, err := cl.c.Create(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.raw(t, want).Delete(ctx, want.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	second, err := cl.c.Create(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.c.Delete(ctx, first); !errors.Is(err, kubeobj.ErrReplaced) {
		t.Errorf("Delete with the first object's UID: %v, want ErrReplaced", err)
	}
	if got := cl.get(t, want); got.UID != second.UID {
		t.Errorf("the recreated object is gone or replaced: UID %s, want %s", got.UID, second.UID)
	}
	if err := cl.c.Delete(ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := cl.c.Delete(ctx, second); err != nil {
		t.Errorf("Delete of an object already gone: %v, want nil", err)
	}
}

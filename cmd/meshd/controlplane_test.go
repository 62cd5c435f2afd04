package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshd-io/meshd/internal/cli"
	"github.com/meshd-io/meshd/internal/testenv"
)

// cpEnv is the replication sandbox with a KubeBlocks control plane in tidb-1 and data planes tidb-2 and
// tidb-3, meshctl run with a clock the test moves, and every output kept for the secret search.
type cpEnv struct {
	*replicateEnv
	kubectl string
	mount   string       // where the test mounts the Secret, as a kubelet would
	offset  atomic.Int64 // the clock's lead over real time
	outputs []string
	values  []string // every token and kubeconfig the Secret held
}

const (
	kbNamespace = "kb-system"
	kbSecret    = "kubeblocks-data-planes"
)

func (e *cpEnv) now() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) }

// meshctl runs meshctl with the test's clock; stdout and stderr are kept for noSecrets.
func (e *cpEnv) meshctl(want int, args ...string) (string, string) {
	e.t.Helper()
	var out, errb bytes.Buffer
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Clock: e.now}
	full := append([]string{args[0], "--spec", e.e2e.spec, "--state", e.state, "--kubeconfig", e.sb.Kubeconfig}, args[1:]...)
	code := app.Main(context.Background(), full)
	e.outputs = append(e.outputs, out.String(), errb.String())
	if code != want {
		e.t.Fatalf("meshctl %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// cpSpec writes the spec: the data planes reach their API servers at api_server, the pod role is replicated
// from the control plane, and the control_plane block (its attributes after cluster) as given.
func (e *cpEnv) cpSpec(blocks ...string) {
	var b strings.Builder
	b.WriteString("mesh \"tidb\" {\n  dns {\n    enabled = false\n  }\n}\n")
	for i, c := range e.sb.Clusters {
		fmt.Fprintf(&b, "\ncluster %q {\n  region       = %q\n  kube_context = %q\n  eks_cluster  = %q\n  namespace    = %q\n", c.Name, c.Region, c.Context, c.Name, c.Namespace)
		if i > 0 {
			fmt.Fprintf(&b, "  api_server   = %q\n", e.sb.APIServers[c.Name].Host)
		}
		b.WriteString("}\n")
	}
	b.WriteString("\n" + roleBlock)
	for _, blk := range blocks {
		b.WriteString("\n" + blk)
	}
	e.writeFile("mesh.hcl", b.String())
}

func (e *cpEnv) cpBlock(dataPlanes string) string {
	return fmt.Sprintf(`control_plane "kubeblocks" {
  cluster        = "tidb-1"
  data_planes    = %s
  secret         = "%s/%s"
  cluster_role   = "kubeblocks-cluster-pod-role"
  token_ttl      = "1h"
  token_file_dir = %q
}
`, dataPlanes, kbNamespace, kbSecret, e.mount)
}

// secret reads the kubeconfig Secret (nil when there is none).
func (e *cpEnv) secret() *corev1.Secret {
	s, err := e.client("tidb-1").CoreV1().Secrets(kbNamespace).Get(context.Background(), kbSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// mountSecret writes the Secret's keys into the mount directory as files, as a kubelet does (and removes
// the files of keys it no longer has), and records the values for the secret search.
func (e *cpEnv) mountSecret() *corev1.Secret {
	e.t.Helper()
	s := e.secret()
	if s == nil {
		e.t.Fatal("no kubeconfig Secret")
	}
	if err := os.RemoveAll(e.mount); err != nil {
		e.t.Fatal(err)
	}
	if err := os.MkdirAll(e.mount, 0o700); err != nil {
		e.t.Fatal(err)
	}
	for k, v := range s.Data {
		if err := os.WriteFile(filepath.Join(e.mount, k), v, 0o600); err != nil {
			e.t.Fatal(err)
		}
		e.values = append(e.values, string(v))
	}
	return s
}

// kubectlRun runs the real kubectl on the mounted kubeconfig in a data plane's context.
func (e *cpEnv) kubectlRun(context string, args ...string) (string, error) {
	full := append([]string{"--kubeconfig", filepath.Join(e.mount, "kubeconfig"), "--context", context, "--request-timeout", "20s"}, args...)
	out, err := exec.Command(e.kubectl, full...).CombinedOutput()
	return string(out), err
}

// clientFromMount is a client-go client from clientcmd on the mounted files, as KubeBlocks builds its own.
func (e *cpEnv) clientFromMount(context string) kubernetes.Interface {
	e.t.Helper()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: filepath.Join(e.mount, "kubeconfig")},
		&clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		e.t.Fatalf("clientcmd on the mounted kubeconfig, context %s: %v", context, err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// tokenClient authenticates to a data plane with a bare token.
func (e *cpEnv) tokenClient(cluster, token string) kubernetes.Interface {
	c, err := kubernetes.NewForConfig(&rest.Config{Host: e.sb.APIServers[cluster].Host, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// canListPods checks that the mounted kubeconfig reaches a data plane with the bound role's rights, through
// kubectl and through client-go, and nothing more.
func (e *cpEnv) canListPods(cluster string) {
	e.t.Helper()
	if out, err := e.kubectlRun(cluster, "get", "pods", "--all-namespaces"); err != nil {
		e.t.Errorf("kubectl --context %s get pods: %v\n%s", cluster, err, out)
	}
	out, err := e.kubectlRun(cluster, "get", "secrets", "--all-namespaces")
	if err == nil || !strings.Contains(out, "Forbidden") {
		e.t.Errorf("kubectl --context %s get secrets: %v, want Forbidden\n%s", cluster, err, out)
	}
	c := e.clientFromMount(cluster)
	ctx := context.Background()
	if _, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err != nil {
		e.t.Errorf("client-go on the mounted kubeconfig, %s: listing Pods: %v", cluster, err)
	}
	_, err = c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "not-allowed"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		e.t.Errorf("client-go on the mounted kubeconfig, %s: creating a namespace: %v, want Forbidden", cluster, err)
	}
}

// account reports whether a data plane has the control plane's ServiceAccount and ClusterRoleBinding.
func (e *cpEnv) account(cluster string) (sa, binding bool) {
	ctx := context.Background()
	_, err := e.client(cluster).CoreV1().ServiceAccounts("kube-system").Get(ctx, "meshd-cp-kubeblocks", metav1.GetOptions{})
	sa = err == nil
	_, err = e.client(cluster).RbacV1().ClusterRoleBindings().Get(ctx, "meshd-cp-kubeblocks", metav1.GetOptions{})
	return sa, err == nil
}

// TestControlPlaneOnSandbox: meshctl writes KubeBlocks' data-plane kubeconfig Secret on the sandbox's real
// API servers; a real kubectl and client-go read it as mounted; tokens rotate at 80% of their lifetime;
// a data plane removed loses its account and its token stops working; a foreign Secret is a conflict and a
// missing role a diagnostic; destroy leaves nothing; no token or kubeconfig reaches any output or Event.
func TestControlPlaneOnSandbox(t *testing.T) {
	kubectl := testenv.Require(t, testenv.BinKubectl)
	e := &cpEnv{replicateEnv: newReplicateEnv(t), kubectl: kubectl, mount: filepath.Join(t.TempDir(), "multicluster")}
	e.ensureNamespace("tidb-1", kbNamespace)
	ctx := context.Background()

	// A cluster_role that no data plane has and nothing replicates: a diagnostic at cluster_role, nothing made.
	e.cpSpec(strings.Replace(e.cpBlock(`["tidb-2", "tidb-3"]`), "kubeblocks-cluster-pod-role", "no-such-role", 1))
	_, stderr := e.meshctl(1, "plan")
	if !strings.Contains(stderr, "ClusterRole missing") || !strings.Contains(stderr, "mesh.hcl:") || !strings.Contains(stderr, `"no-such-role"`) {
		t.Errorf("a missing cluster_role: stderr does not name it with its position:\n%s", stderr)
	}

	// Without api_server a data plane is reached at its EKS endpoint, with EKS's CA (DescribeCluster).
	e.cpSpec(e.cpBlock(`["tidb-2", "tidb-3"]`))
	e.writeFile("mesh.hcl", strings.Replace(e.readSpec(), fmt.Sprintf("  api_server   = %q\n", e.sb.APIServers["tidb-3"].Host), "", 1))
	jsonOut, _ := e.meshctl(0, "plan", "--json")
	desc, err := eks.NewFromConfig(e.sb.AWSConfig(e.sb.Clusters[2].Region)).DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String("tidb-3")})
	if err != nil {
		t.Fatal(err)
	}
	if ep := aws.ToString(desc.Cluster.Endpoint); ep == "" || !strings.Contains(jsonOut, `"server": "`+ep+`"`) {
		t.Errorf("the plan does not reach tidb-3 at its EKS endpoint %q:\n%.2000s", ep, jsonOut)
	}

	// Apply: the role is replicated in the same apply, the accounts are made, the Secret written.
	e.cpSpec(e.cpBlock(`["tidb-2", "tidb-3"]`))
	out, _ := e.meshctl(0, "plan")
	for _, want := range []string{"cp_account[kubeblocks:tidb-2]", "cp_account[kubeblocks:tidb-3]", "kubeconfig[kubeblocks]",
		"new token for 1h0m0s (the Secret is new)", "kubeconfig, tidb-2.token, tidb-3.token", "(sensitive: sha256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("the first plan lacks %q:\n%s", want, out)
		}
	}
	e.meshctl(0, "apply", "--auto-approve")
	s := e.mountSecret()
	if s.Type != "kubernetes.kubeconfig" || len(s.Data) != 3 || s.Labels["app.kubernetes.io/managed-by"] != "meshd" {
		t.Errorf("the Secret: type %s, %d keys, labels %v", s.Type, len(s.Data), s.Labels)
	}
	for _, dp := range []string{"tidb-2", "tidb-3"} {
		e.canListPods(dp)
	}
	kubeconfig, token2, token3 := string(s.Data["kubeconfig"]), string(s.Data["tidb-2.token"]), string(s.Data["tidb-3.token"])
	if strings.Contains(kubeconfig, token2) || !strings.Contains(kubeconfig, filepath.Join(e.mount, "tidb-2.token")) {
		t.Errorf("the kubeconfig must name the token file, not carry the token")
	}
	out, _ = e.meshctl(0, "plan", "--detailed-exitcode")
	if !strings.Contains(out, "No changes") || !strings.Contains(out, "The next control-plane token is due for renewal at ") {
		t.Errorf("a second plan is not empty, or does not say when the next token is due:\n%s", out)
	}
	jsonOut, _ = e.meshctl(0, "plan", "--json")
	if !json.Valid([]byte(jsonOut)) || !strings.Contains(jsonOut, `"next_renewal"`) {
		t.Errorf("plan --json has no next_renewal:\n%.400s", jsonOut)
	}

	// Rotation: 50 minutes on, past 80% of the hour, apply renews both tokens; the kubeconfig key stays.
	e.offset.Store(int64(50 * time.Minute))
	out, _ = e.meshctl(0, "plan")
	if !strings.Contains(out, "token of tidb-2 renewed: 80% of its lifetime has passed") || !strings.Contains(out, "expires ") {
		t.Errorf("the plan 50 minutes on does not renew the token with its expiry:\n%s", out)
	}
	e.meshctl(0, "apply", "--auto-approve")
	e.offset.Store(0)
	s = e.mountSecret()
	if string(s.Data["kubeconfig"]) != kubeconfig {
		t.Errorf("rotation changed the kubeconfig key")
	}
	if string(s.Data["tidb-2.token"]) == token2 || string(s.Data["tidb-3.token"]) == token3 {
		t.Errorf("rotation kept a token")
	}
	if _, err := e.tokenClient("tidb-2", string(s.Data["tidb-2.token"])).CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("the renewed token does not authenticate: %v", err)
	}
	e.canListPods("tidb-2")
	token3 = string(s.Data["tidb-3.token"])

	// A foreign Secret where a second control plane wants its own: a conflict, never written.
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses", Namespace: kbNamespace}, StringData: map[string]string{"kubeconfig": "theirs"}}
	if _, err := e.client("tidb-1").CoreV1().Secrets(kbNamespace).Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	other := strings.NewReplacer(`"kubeblocks"`, `"other"`, kbSecret, "someone-elses").Replace(e.cpBlock(`["tidb-2"]`))
	e.cpSpec(e.cpBlock(`["tidb-2", "tidb-3"]`), other)
	out, _ = e.meshctl(1, "plan")
	if !strings.Contains(out, "Conflict: Cluster tidb-1 already has a Secret kb-system/someone-elses that meshd did not create") {
		t.Errorf("a foreign Secret is not a conflict:\n%s", out)
	}
	e.meshctl(1, "apply", "--auto-approve")
	if got, _ := e.client("tidb-1").CoreV1().Secrets(kbNamespace).Get(ctx, "someone-elses", metav1.GetOptions{}); string(got.Data["kubeconfig"]) != "theirs" {
		t.Errorf("the foreign Secret was written")
	}

	// A data plane removed: its account goes, its context and token key leave the Secret, its token dies.
	e.cpSpec(e.cpBlock(`["tidb-2"]`))
	e.meshctl(0, "apply", "--auto-approve")
	if sa, b := e.account("tidb-3"); sa || b {
		t.Errorf("tidb-3 keeps ServiceAccount %v, binding %v", sa, b)
	}
	s = e.mountSecret()
	if _, ok := s.Data["tidb-3.token"]; ok || strings.Contains(string(s.Data["kubeconfig"]), "tidb-3") {
		t.Errorf("the Secret keeps tidb-3: keys %v", slices.Sorted(maps.Keys(s.Data)))
	}
	err = poll(20*time.Second, func() error {
		_, err := e.tokenClient("tidb-3", token3).CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if !apierrors.IsUnauthorized(err) {
			return fmt.Errorf("the removed data plane's token: %v, want Unauthorized", err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	e.canListPods("tidb-2")

	// Destroy leaves nothing of meshd's.
	e.meshctl(0, "destroy", "--auto-approve")
	if e.secret() != nil {
		t.Errorf("destroy left the Secret")
	}
	for _, dp := range []string{"tidb-2", "tidb-3"} {
		if sa, b := e.account(dp); sa || b {
			t.Errorf("destroy left %s's ServiceAccount %v, binding %v", dp, sa, b)
		}
	}
	st, _ := os.ReadFile(e.state)
	if strings.Contains(string(st), "control_planes") {
		t.Errorf("the state still records control-plane objects:\n%s", st)
	}

	// No token, no kubeconfig in any output, the state or an Event.
	for i, o := range e.outputs {
		e.noValues(fmt.Sprintf("meshctl output %d", i), o)
	}
	e.noValues("the state", string(st))
	for _, c := range e.sb.Clusters {
		evs, err := e.client(c.Name).CoreV1().Events("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(evs)
		e.noValues("the Events of "+c.Name, string(b))
	}
}

// noValues fails when a token or kubeconfig the Secret held, raw or base64, occurs in text.
func (e *cpEnv) noValues(where, text string) {
	e.t.Helper()
	if len(e.values) == 0 {
		e.t.Fatal("no values recorded to search for")
	}
	for _, v := range e.values {
		for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
			if strings.Contains(text, form) {
				e.t.Errorf("%s contains a value of the kubeconfig Secret (%.20q...)", where, form)
			}
		}
	}
}

func (e *cpEnv) readSpec() string {
	b, err := os.ReadFile(filepath.Join(e.e2e.spec, "mesh.hcl"))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// poll retries f until it succeeds or d has passed, returning its last error.
func poll(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

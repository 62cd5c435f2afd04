package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshd-io/meshd/internal/cli"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
)

// TestLeastPrivilegeOnSandbox runs meshd as an identity that holds exactly what `meshctl rbac` prints for
// the spec (a token user with no other right): meshctl apply, an empty second plan, meshd correcting a
// reverted Corefile, a deleted copy of a replicated Secret and a deleted control-plane binding, and destroy
// all work; and the same identity may not read kube-system's Secrets, list Secrets, mint a token for
// kube-system/default, delete the cluster-admin binding, patch a Service or update a ConfigMap that is not
// meshd's.
func TestLeastPrivilegeOnSandbox(t *testing.T) {
	kubectl := testenv.Require(t, testenv.BinKubectl)
	r := newReplicateEnv(t)
	e := r.e2e
	ctx := context.Background()
	r.ensureNamespace("tidb-1", kbNamespace)
	var b strings.Builder
	b.WriteString("mesh \"tidb\" {\n  dns {\n    forward_by = \"namespace\"\n  }\n}\n")
	for i, c := range e.sb.Clusters {
		fmt.Fprintf(&b, "\ncluster %q {\n  region       = %q\n  kube_context = %q\n  eks_cluster  = %q\n  namespace    = %q\n", c.Name, c.Region, c.Context, c.Name, c.Namespace)
		if i > 0 {
			fmt.Fprintf(&b, "  api_server   = %q\n", e.sb.APIServers[c.Name].Host)
		}
		b.WriteString("}\n")
	}
	b.WriteString("\n" + caBlock + "\n" + roleBlock + "\n" + fmt.Sprintf(`control_plane "kubeblocks" {
  cluster        = "tidb-1"
  data_planes    = ["tidb-2", "tidb-3"]
  secret         = "%s/%s"
  cluster_role   = %q
  token_ttl      = "1h"
  token_file_dir = "/var/run/secrets/kubeblocks.io/multicluster"
}
`, kbNamespace, kbSecret, kbRole))
	e.writeFile("mesh.hcl", b.String())

	// The unprivileged identity's kubeconfig: the same contexts as the sandbox's, another user.
	byContext := map[string]*testenv.APIServer{}
	for _, c := range e.sb.Clusters {
		byContext[c.Context] = e.sb.APIServers[c.Name].Unprivileged()
	}
	kubeconfig := filepath.Join(e.dir, "meshd-kubeconfig")
	if err := testenv.WriteMultiKubeconfig(kubeconfig, byContext); err != nil {
		t.Fatal(err)
	}
	run := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
		full := append([]string{args[0], "--spec", e.spec}, args[1:]...)
		if code := app.Main(ctx, full); code != want {
			t.Fatalf("meshctl %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	// Before any RBAC, the identity can do nothing: apply fails, naming what it was refused.
	out := run(cli.ExitError, "plan", "--state", e.state, "--kubeconfig", kubeconfig)
	flat := strings.Join(strings.Fields(out), " ") // the diagnostics are wrapped
	for _, c := range e.sb.Clusters {
		for _, part := range []string{fmt.Sprintf("Permission missing in cluster %q", c.Name),
			`get services "across-cluster-dns-tcp" in namespace kube-system`, "/mesh.hcl --cluster " + c.Name} {
			if !strings.Contains(flat, part) {
				t.Errorf("a plan without RBAC does not say %q:\n%s", part, out)
			}
		}
	}
	if n := strings.Count(out, "Error: "); n != len(e.sb.Clusters) {
		t.Errorf("a plan without RBAC gives %d errors, want one per cluster:\n%s", n, out)
	}

	// The RBAC meshctl rbac prints, applied by an admin with the real kubectl.
	for _, c := range e.sb.Clusters {
		yaml := run(cli.ExitOK, "rbac", "--cluster", c.Name)
		cmd := exec.Command(kubectl, "--kubeconfig", e.sb.Kubeconfig, "--context", c.Context, "apply", "-f", "-")
		cmd.Stdin = strings.NewReader(yaml)
		if got, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kubectl apply of meshctl rbac --cluster %s: %v\n%s\n%s", c.Name, err, got, yaml)
		}
	}

	run(cli.ExitOK, "apply", "--auto-approve", "--state", e.state, "--kubeconfig", kubeconfig)
	run(cli.ExitOK, "plan", "--detailed-exitcode", "--state", e.state, "--kubeconfig", kubeconfig)
	e.waitFor(60*time.Second, "every cluster to resolve every other after the unprivileged apply", e.resolvesAll)
	if r.copyOf("tidb-2") == nil || r.copyOf("tidb-3") == nil {
		t.Fatal("the CA Secret was not copied")
	}
	if _, err := r.client("tidb-1").CoreV1().Secrets(kbNamespace).Get(ctx, kbSecret, metav1.GetOptions{}); err != nil {
		t.Fatalf("the control plane's kubeconfig Secret: %v", err)
	}

	// meshd, as the same identity, corrects drift of each Kubernetes kind.
	m := e.start("--kubeconfig", kubeconfig, "--state", e.state, "--interval", "1h")
	e.revertCorefile("tidb-2")
	if err := r.client("tidb-3").CoreV1().Secrets(caNamespace).Delete(ctx, caSecret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := "meshd-cp-kubeblocks"
	if err := r.client("tidb-2").RbacV1().ClusterRoleBindings().Delete(ctx, binding, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(60*time.Second, "meshd to restore the Corefile, the copy and the binding", func() bool {
		_, err := r.client("tidb-2").RbacV1().ClusterRoleBindings().Get(ctx, binding, metav1.GetOptions{})
		return strings.Contains(e.corefile("tidb-2"), "pingcap-1.svc.cluster.local") && r.copyOf("tidb-3") != nil && err == nil
	})
	e.kill(m, syscall.SIGTERM)
	if log, _ := os.ReadFile(m.log); bytes.Contains(bytes.ToLower(log), []byte("forbidden")) {
		t.Errorf("meshd was refused something it needs:\n%s", tail(string(log), 4000))
	}

	// What the identity must not be able to do, in every member.
	for _, c := range e.sb.Clusters {
		client, err := kubernetes.NewForConfig(e.sb.APIServers[c.Name].Unprivileged().RESTConfig())
		if err != nil {
			t.Fatal(err)
		}
		for _, deny := range []authorizationv1.ResourceAttributes{
			{Verb: "get", Resource: "secrets", Namespace: "kube-system", Name: "any"},
			{Verb: "list", Resource: "secrets"},
			{Verb: "list", Resource: "secrets", Namespace: caNamespace},
			{Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: "kube-system", Name: "default"},
			{Verb: "delete", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings", Name: "cluster-admin"},
			{Verb: "bind", Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Name: "cluster-admin"},
			{Verb: "patch", Resource: "services", Namespace: "kube-system", Name: "kube-dns"},
			{Verb: "update", Resource: "services", Namespace: "default", Name: "kubernetes"},
			{Verb: "update", Resource: "configmaps", Namespace: "kube-system", Name: "kube-proxy"},
			{Verb: "get", Resource: "configmaps", Namespace: "kube-system", Name: "extension-apiserver-authentication"},
		} {
			if allowed(t, client, deny) {
				t.Errorf("%s: the meshd identity may %s %s/%s %s/%s", c.Name, deny.Verb, deny.Resource, deny.Subresource, deny.Namespace, deny.Name)
			}
		}
		// The check above can fail: the identity may do what meshd does.
		if !allowed(t, client, authorizationv1.ResourceAttributes{Verb: "update", Resource: "configmaps", Namespace: "kube-system", Name: "coredns"}) {
			t.Errorf("%s: the meshd identity may not update the coredns ConfigMap: the denials above prove nothing", c.Name)
		}
	}

	run(cli.ExitOK, "destroy", "--auto-approve", "--state", e.state, "--kubeconfig", kubeconfig)
	for _, c := range e.sb.Clusters {
		if got := e.corefile(c.Name); got != sandbox.DefaultEKSCorefile {
			t.Errorf("%s's Corefile after destroy differs from the original:\n%s", c.Name, got)
		}
	}
	if r.copyOf("tidb-2") != nil {
		t.Error("destroy left the copy of the CA Secret in tidb-2")
	}
	if _, err := r.client("tidb-1").CoreV1().Secrets(kbNamespace).Get(ctx, kbSecret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("destroy left the control plane's kubeconfig Secret (err %v)", err)
	}
	if _, err := r.client("tidb-2").CoreV1().ServiceAccounts("kube-system").Get(ctx, binding, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("destroy left the control plane's ServiceAccount in tidb-2 (err %v)", err)
	}
}

// allowed asks the API server whether the client's identity may do what attrs says.
func allowed(t *testing.T, c kubernetes.Interface, attrs authorizationv1.ResourceAttributes) bool {
	t.Helper()
	rev, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(),
		&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectAccessReview: %v", err)
	}
	return rev.Status.Allowed
}

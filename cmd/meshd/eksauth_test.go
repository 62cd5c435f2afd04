package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/meshd-io/meshd/internal/cli"
	"github.com/meshd-io/meshd/internal/ekstoken"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
)

// serversOnlyKubeconfig writes a kubeconfig whose contexts name the sandbox's API servers and no
// credentials at all: with kube_auth = "eks" meshd brings its own.
func serversOnlyKubeconfig(t *testing.T, sb *sandbox.Sandbox, path string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Config\nclusters:\n")
	for _, c := range sb.Clusters {
		fmt.Fprintf(&b, "- name: %s\n  cluster:\n    server: %s\n    insecure-skip-tls-verify: true\n", c.Name, sb.APIServers[c.Name].Host)
	}
	b.WriteString("users:\n- name: nobody\n  user: {}\ncontexts:\n")
	for _, c := range sb.Clusters {
		fmt.Fprintf(&b, "- name: %s\n  context:\n    cluster: %s\n    user: nobody\n", c.Context, c.Name)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

var insecureHTTP = &http.Client{Timeout: 30 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the sandbox's self-signed servers

// signedAt presigns as of a fixed time (a token made 16 minutes ago).
type signedAt struct {
	at time.Time
	s  *v4.Signer
}

func (p signedAt) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return p.s.PresignHTTP(ctx, creds, r, payloadHash, service, region, p.at, optFns...)
}

// TestEKSAuthOnSandbox: with kube_auth = "eks" and a kubeconfig whose contexts carry only the servers,
// meshctl apply and meshd (repairing a reverted Corefile) sign in to every member through the API servers'
// token webhook (the aws-iam-authenticator stand-in), as the identity the sandbox maps its credentials to
// (group meshd), holding only what meshctl rbac grants. tidb-3 is in a second account (its VPC, EKS cluster
// and NLB made there) and its cluster block has assume_role: its tokens are signed with the assumed role's
// credentials, whose role ARN the stand-in maps to group meshd, and no token of the default identity signs
// in there. An expired token and one made for another cluster are refused, with the default credentials
// and with the assumed role's (which the stand-in learns from moto to check the signature); no token
// appears in meshctl's output or meshd's log.
func TestEKSAuthOnSandbox(t *testing.T) {
	kubectl := testenv.Require(t, testenv.BinKubectl)
	const second = "tidb-3" // in the second account, reached with assume_role
	e := newE2EOn(t, sandbox.StartT(t, func(c *sandbox.Cluster) {
		if c.Name == second {
			c.AssumeRole = sandbox.SecondAccountRole
		}
	}))
	e.setenv(t)
	sb := e.sb
	ctx := context.Background()

	var b strings.Builder
	b.WriteString("mesh \"tidb\" {\n  dns {\n    forward_by = \"namespace\"\n  }\n}\n")
	for _, c := range sb.Clusters {
		fmt.Fprintf(&b, "\ncluster %q {\n  region       = %q\n  kube_context = %q\n  kube_auth    = \"eks\"\n  eks_cluster  = %q\n  namespace    = %q\n",
			c.Name, c.Region, c.Context, c.Name, c.Namespace)
		if c.AssumeRole != "" {
			fmt.Fprintf(&b, "  assume_role  = %q\n", c.AssumeRole)
		}
		b.WriteString("}\n")
	}
	// The second account holds tidb-3's VPC, not the default one.
	third, _ := sb.Cluster(second)
	vpcs, err := ec2.NewFromConfig(sb.ClusterAWSConfig(third)).DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{sb.Networks[second].VPCID}})
	if err != nil || len(vpcs.Vpcs) != 1 || aws.ToString(vpcs.Vpcs[0].OwnerId) != "111111111111" {
		t.Fatalf("%s's VPC in the second account: %v, %v", second, vpcs, err)
	}
	defaultARN, err := sb.DefaultARN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.writeFile("mesh.hcl", b.String())
	kubeconfig := filepath.Join(e.dir, "servers-only.kubeconfig")
	serversOnlyKubeconfig(t, sb, kubeconfig)

	var output strings.Builder // everything meshctl printed, searched for tokens at the end
	run := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
		full := append([]string{args[0], "--spec", e.spec}, args[1:]...)
		code := app.Main(ctx, full)
		output.WriteString(out.String() + errb.String())
		if code != want {
			t.Fatalf("meshctl %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}

	// The RBAC for the group the stand-in maps meshd's identity to, applied by an admin.
	for _, c := range sb.Clusters {
		yaml := run(cli.ExitOK, "rbac", "--cluster", c.Name)
		cmd := exec.Command(kubectl, "--kubeconfig", sb.Kubeconfig, "--context", c.Context, "apply", "-f", "-")
		cmd.Stdin = strings.NewReader(yaml)
		if got, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kubectl apply of meshctl rbac --cluster %s: %v\n%s", c.Name, err, got)
		}
	}

	run(cli.ExitOK, "apply", "--auto-approve", "--state", e.state, "--kubeconfig", kubeconfig)
	run(cli.ExitOK, "plan", "--detailed-exitcode", "--state", e.state, "--kubeconfig", kubeconfig)
	e.waitFor(60*time.Second, "every cluster to resolve every other after the apply", e.resolvesAll)
	// Who signed in where: the default identity to tidb-1 and tidb-2, the assumed role to tidb-3.
	checkSignIns := func(when string) {
		t.Helper()
		accepted := map[string]map[string]bool{}
		for _, r := range sb.IAM.Reviews() {
			if r.Refused == "" {
				if accepted[r.Cluster] == nil {
					accepted[r.Cluster] = map[string]bool{}
				}
				accepted[r.Cluster][r.ARN] = true
			}
		}
		for _, c := range sb.Clusters {
			want := defaultARN
			if c.AssumeRole != "" {
				want = c.AssumeRole
			}
			if !accepted[c.Name][want] || len(accepted[c.Name]) != 1 {
				t.Errorf("%s: tokens accepted by %s's webhook were signed by %v, want %s only", when, c.Name, accepted[c.Name], want)
			}
		}
	}
	checkSignIns("after meshctl apply")

	m := e.start("--kubeconfig", kubeconfig, "--state", e.state, "--interval", "1h")
	e.revertCorefile("tidb-2")
	e.waitFor(60*time.Second, "meshd to restore tidb-2's Corefile", func() bool {
		return strings.Contains(e.corefile("tidb-2"), "pingcap-1.svc.cluster.local")
	})
	e.kill(m, syscall.SIGTERM)
	checkSignIns("after meshd")
	log, _ := os.ReadFile(m.log)
	if bytes.Contains(bytes.ToLower(log), []byte("forbidden")) || bytes.Contains(bytes.ToLower(log), []byte("unauthorized")) {
		t.Errorf("meshd was refused something:\n%s", tail(string(log), 4000))
	}

	// Refused: a token for another cluster (its signature does not match tidb-1's name) and an expired one.
	creds := sb.AWSConfig(sb.Clusters[0].Region)
	status := func(cluster, token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, sb.APIServers[cluster].Host+"/api/v1/namespaces/kube-system/configmaps/coredns", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := insecureHTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	own, err := ekstoken.New(ctx, ekstoken.NewPresigner(creds), "tidb-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := ekstoken.New(ctx, ekstoken.NewPresigner(creds), "tidb-2", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	old := sts.NewPresignClient(sts.NewFromConfig(creds), func(o *sts.PresignOptions) {
		o.Presigner = signedAt{at: time.Now().Add(-16 * time.Minute), s: v4.NewSigner()}
	})
	expired, err := ekstoken.New(ctx, old, "tidb-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := status("tidb-1", own.Value); got != http.StatusOK {
		t.Errorf("tidb-1's own token: HTTP %d, want 200 (the checks below would prove nothing)", got)
	}
	if got := status("tidb-1", other.Value); got != http.StatusUnauthorized {
		t.Errorf("a token made for tidb-2, sent to tidb-1: HTTP %d, want 401", got)
	}
	if got := status("tidb-1", expired.Value); got != http.StatusUnauthorized {
		t.Errorf("a token signed 16 minutes ago: HTTP %d, want 401", got)
	}
	// The same with the assumed role's credentials, whose key the stand-in was never given.
	roleCfg := sb.ClusterAWSConfig(third)
	roleOwn, err := ekstoken.New(ctx, ekstoken.NewPresigner(roleCfg), second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roleOther, err := ekstoken.New(ctx, ekstoken.NewPresigner(roleCfg), "tidb-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roleOld := sts.NewPresignClient(sts.NewFromConfig(roleCfg), func(o *sts.PresignOptions) {
		o.Presigner = signedAt{at: time.Now().Add(-16 * time.Minute), s: v4.NewSigner()}
	})
	roleExpired, err := ekstoken.New(ctx, roleOld, second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := status(second, roleOwn.Value); got != http.StatusOK {
		t.Errorf("the assumed role's token for %s: HTTP %d, want 200", second, got)
	}
	if got := status(second, roleOther.Value); got != http.StatusUnauthorized {
		t.Errorf("the assumed role's token for tidb-1, sent to %s: HTTP %d, want 401", second, got)
	}
	if got := status(second, roleExpired.Value); got != http.StatusUnauthorized {
		t.Errorf("the assumed role's token signed 16 minutes ago: HTTP %d, want 401", got)
	}
	refusals := map[string][]string{}
	for _, r := range sb.IAM.Reviews() {
		if r.Refused != "" {
			refusals[r.Cluster] = append(refusals[r.Cluster], r.Refused)
		}
	}
	for _, cluster := range []string{"tidb-1", second} {
		joined := strings.Join(refusals[cluster], "\n")
		for _, want := range []string{"signature does not match", "expired"} {
			if !strings.Contains(joined, want) {
				t.Errorf("the stand-in's refusals at %s do not say %q:\n%s", cluster, want, joined)
			}
		}
	}

	// No token in what meshctl printed or meshd logged (each is "k8s-aws-v1." and base64url).
	for what, text := range map[string]string{"meshctl output": output.String(), "meshd log": string(log)} {
		if strings.Contains(text, ekstoken.Prefix) {
			t.Errorf("%s holds an EKS token", what)
		}
	}
}

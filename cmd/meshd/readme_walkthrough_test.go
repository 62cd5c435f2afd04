package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/meshd-io/meshd/internal/ekstoken"
	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/state"
	"github.com/meshd-io/meshd/internal/state/secretstate"
	"github.com/meshd-io/meshd/internal/testenv"
)

// The README's "Running against real AWS and EKS", walked through on the sandbox by
// TestREADMEWalkthroughOnSandbox. walkthrough lists every command the section shows, in its order: each is
// run as written (through sh, in a directory holding mesh.hcl), run with the sandbox's names put in where
// the README says to (NAME, NAME-admin, the access entry's effect), or only looked at, with the reason.
// TestREADMEWalkthroughMatchesREADME keeps the list and the section equal, so they cannot drift apart.
const readmeSection = "## Running against real AWS and EKS"

type readmeStep struct {
	cmd string                    // as the README shows it, whitespace collapsed
	run func(w *walk, cmd string) // nil: not run (why says why)
	why string
}

var walkthrough = []readmeStep{
	{cmd: "meshctl iam-policy", why: "named in prose; run below with its flags"},
	{cmd: "meshctl iam-policy --spec mesh.hcl > meshd-policy.json", run: (*walk).iamPolicy},
	{cmd: "aws iam put-role-policy --role-name meshd --policy-name meshd --policy-document file://meshd-policy.json", run: (*walk).putRolePolicy},
	{cmd: "aws eks get-token", why: "named in prose: meshd makes that token itself (kube_auth = \"eks\")"},
	{cmd: "eksctl utils write-kubeconfig --cluster tidb-1 --region us-west-1",
		why: "the sandbox has no eksctl; its kubeconfig has the contexts (admin), and the daemon's is the servers-only one the README describes for kube_auth = \"eks\" with kube_context"},
	{cmd: "aws eks create-access-entry --cluster-name tidb-1 --region us-west-1 --principal-arn arn:aws:iam::123456789012:role/meshd --kubernetes-groups meshd",
		run: (*walk).accessEntry},
	{cmd: "meshctl rbac", why: "named in prose; run below with its flags"},
	{cmd: "meshctl rbac --subject Group:NAME", why: "an alternative for a person's own group; the walk-through uses group meshd"},
	{cmd: "meshctl rbac --spec mesh.hcl --cluster NAME | kubectl --context NAME-admin apply -f -", run: (*walk).rbac},
	{cmd: "meshctl validate --spec mesh.hcl", run: (*walk).validate},
	{cmd: "meshctl plan --spec mesh.hcl --out mesh.plan", run: (*walk).plan},
	{cmd: "meshctl apply mesh.plan", run: (*walk).apply},
	{cmd: "meshctl verify --spec mesh.hcl", run: (*walk).verify},
	{cmd: "meshd --spec mesh.hcl", run: (*walk).daemon},
	{cmd: "helm install meshd charts/meshd -n meshd-system --create-namespace --set meshName=tidb --set serviceAccount.roleArn=arn:aws:iam::123456789012:role/meshd",
		why: "the walk-through applies the same chart rendered (deploy/meshd.yaml, next); helm install into a kube-apiserver is TestChartInstallsOnAPIServer"},
	{cmd: "kubectl apply -f deploy/meshd.yaml", run: (*walk).deploy},
	{cmd: "make deploy-manifest", why: "writes deploy/meshd.yaml from the chart; TestDeployManifestIsTheChart keeps them equal"},
	{cmd: "meshctl state push --state meshd.state.json --state-secret meshd-system/meshd-state --state-context MGMT", run: (*walk).statePush},
	{cmd: "make image", why: "builds and pushes an image: no registry here (meshd is run from the tree instead)"},
	{cmd: "skopeo copy --all oci:bin/meshd-image:latest docker://ghcr.io/YOU/meshd:latest", why: "pushes to a registry"},
	{cmd: "crane push bin/meshd-image ghcr.io/YOU/meshd:latest", why: "pushes to a registry"},
}

// commandPrefixes are how a command the section shows begins.
var commandPrefixes = []string{"meshctl ", "meshd ", "kubectl ", "aws ", "eksctl ", "make ", "skopeo ", "crane ", "helm "}

// readmeSectionText is the README section's text, from below its heading to the next one.
func readmeSectionText(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i := strings.Index(text, "\n"+readmeSection+"\n")
	if i < 0 {
		t.Fatalf("README.md has no %q section", readmeSection)
	}
	section := text[i+len(readmeSection)+2:]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	return section
}

// readmeCommands returns the commands the README section shows: its indented code blocks' lines (a
// trailing backslash joins the next line), then its inline code spans that begin as a command; whitespace
// collapsed.
func readmeCommands(t *testing.T) []string {
	section := readmeSectionText(t)
	isCommand := func(s string) bool {
		return slices.ContainsFunc(commandPrefixes, func(p string) bool { return strings.HasPrefix(s, p) })
	}
	collapse := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	var out []string
	// Code blocks: lines indented 4 more than the list item's text (7 spaces) after a blank line, and the
	// lines that follow them so indented.
	var prose strings.Builder
	lines := strings.Split(section, "\n")
	inBlock := false
	for k := 0; k < len(lines); k++ {
		line := lines[k]
		code := strings.HasPrefix(line, "       ") && strings.TrimSpace(line) != ""
		if code && (inBlock || (k > 0 && strings.TrimSpace(lines[k-1]) == "")) {
			inBlock = true
			cmd := strings.TrimSpace(line)
			for strings.HasSuffix(cmd, "\\") && k+1 < len(lines) {
				k++
				cmd = strings.TrimSuffix(cmd, "\\") + " " + strings.TrimSpace(lines[k])
			}
			if isCommand(cmd) {
				out = append(out, collapse(cmd))
			}
			continue
		}
		inBlock = false
		prose.WriteString(line + "\n")
	}
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(prose.String(), -1) {
		if s := collapse(m[1]); isCommand(s) {
			out = append(out, s)
		}
	}
	return out
}

// TestREADMEWalkthroughMatchesREADME: the walk-through's commands are the README section's, no more and no
// fewer, so that a command added to or changed in the section fails here until the walk-through follows it;
// and the commands it runs come in the section's order.
func TestREADMEWalkthroughMatchesREADME(t *testing.T) {
	got := readmeCommands(t)
	var listed []string
	for _, s := range walkthrough {
		listed = append(listed, s.cmd)
		if !slices.Contains(got, s.cmd) {
			t.Errorf("the walk-through has %q, which README.md's %q does not show", s.cmd, readmeSection)
		}
	}
	for _, c := range got {
		if !slices.Contains(listed, c) {
			t.Errorf("README.md's %q shows %q, which the walk-through (readme_walkthrough_test.go) neither runs nor lists", readmeSection, c)
		}
	}
	flat := strings.Join(strings.Fields(strings.ReplaceAll(readmeSectionText(t), "\\\n", " ")), " ")
	last, lastCmd := -1, ""
	for _, s := range walkthrough {
		if s.run == nil {
			continue
		}
		at := strings.Index(flat, s.cmd)
		if at < last {
			t.Errorf("the README shows %q before %q, the walk-through runs it after: follow the README's order", s.cmd, lastCmd)
		}
		last, lastCmd = at, s.cmd
	}
}

// walk is the state of a walk-through: the user's working directory and what the steps made.
type walk struct {
	t       *testing.T
	e       *e2e
	sb      *sandbox.Sandbox
	dir     string   // the user's working directory: mesh.hcl, meshd-policy.json, mesh.plan, meshd.state.json
	bin     string   // meshctl and meshd
	env     []string // the user's environment: the sandbox's AWS endpoints, credentials of role meshd
	members string   // the servers-only kubeconfig (kube_auth = "eks" with kube_context)
	roleARN string
	output  strings.Builder // everything the commands printed, searched for tokens at the end
}

// sh runs a command line as a user would, in the working directory with the binaries on PATH, and returns
// what it printed; want is the exit code expected.
func (w *walk) sh(want int, line string, env ...string) string {
	w.t.Helper()
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = w.dir
	cmd.Env = append(append(append(os.Environ(), w.env...), "PATH="+w.bin+":"+os.Getenv("PATH")), env...)
	out, err := cmd.CombinedOutput()
	w.output.Write(out)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatalf("%s: %v", line, err)
	}
	if code != want {
		w.t.Fatalf("%s: exit %d, want %d\n%s", line, code, want, out)
	}
	return string(out)
}

func (w *walk) iamPolicy(cmd string) {
	w.sh(0, cmd)
	data, err := os.ReadFile(filepath.Join(w.dir, "meshd-policy.json"))
	if err != nil {
		w.t.Fatal(err)
	}
	var doc struct {
		Version   string
		Statement []struct{ Action any }
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.Version != "2012-10-17" || len(doc.Statement) == 0 {
		w.t.Fatalf("meshd-policy.json is not an IAM policy (%v):\n%s", err, data)
	}
	if !strings.Contains(string(data), "ec2:CreateVpcPeeringConnection") {
		w.t.Errorf("meshd-policy.json lacks ec2:CreateVpcPeeringConnection:\n%s", data)
	}
}

// putRolePolicy runs the aws CLI against moto when it is installed, else makes the same call itself;
// either way the role's policy is then the file's.
func (w *walk) putRolePolicy(cmd string) {
	if _, err := exec.LookPath("aws"); err == nil {
		w.sh(0, cmd)
	} else {
		w.t.Logf("no aws CLI: PutRolePolicy made by the test")
		data, err := os.ReadFile(filepath.Join(w.dir, "meshd-policy.json"))
		if err != nil {
			w.t.Fatal(err)
		}
		w.iamCall("PutRolePolicy", url.Values{"RoleName": {"meshd"}, "PolicyName": {"meshd"}, "PolicyDocument": {string(data)}})
	}
	got, err := url.QueryUnescape(w.iamCall("GetRolePolicy", url.Values{"RoleName": {"meshd"}, "PolicyName": {"meshd"}}))
	if err != nil || !strings.Contains(got, "ec2:CreateVpcPeeringConnection") {
		w.t.Fatalf("role meshd's policy meshd after put-role-policy (%v):\n%s", err, got)
	}
}

// iamCall makes an IAM query-API call to moto (which routes by the credential scope and checks no
// signature) with the sandbox's own credentials; the module has no IAM SDK client.
func (w *walk) iamCall(action string, params url.Values) string {
	w.t.Helper()
	params.Set("Action", action)
	params.Set("Version", "2010-05-08")
	req, err := http.NewRequest(http.MethodPost, w.sb.MotoEndpoint+"/", strings.NewReader(params.Encode()))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/"+time.Now().UTC().Format("20060102")+
		"/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK && !strings.Contains(string(body), "EntityAlreadyExists") { // a retried create
		w.t.Fatalf("IAM %s: HTTP %d\n%s", action, resp.StatusCode, body)
	}
	return string(body)
}

// accessEntry does what the access entry does on EKS, for every member (the README shows tidb-1's): the
// stand-in maps the principal to the groups the command names.
func (w *walk) accessEntry(cmd string) {
	f := strings.Fields(cmd)
	arg := func(name string) string {
		i := slices.Index(f, name)
		if i < 0 || i+1 >= len(f) {
			w.t.Fatalf("%q has no %s", cmd, name)
		}
		return f[i+1]
	}
	principal, groups := arg("--principal-arn"), strings.Split(arg("--kubernetes-groups"), ",")
	if principal != w.roleARN {
		w.t.Fatalf("the access entry names %s, the role the walk-through signs in with is %s", principal, w.roleARN)
	}
	w.sb.IAM.Map(principal, sandbox.Identity{Username: principal, Groups: groups})
}

// rbac runs the pipe for each member, NAME its name and NAME-admin the sandbox's admin context for it.
func (w *walk) rbac(cmd string) {
	for _, c := range w.sb.Clusters {
		line := strings.ReplaceAll(strings.ReplaceAll(cmd, "NAME-admin", "'"+c.Context+"'"), "NAME", c.Name)
		out := w.sh(0, line, "KUBECONFIG="+w.sb.Kubeconfig)
		if !strings.Contains(out, "clusterrolebinding") && !strings.Contains(out, "rolebinding") {
			w.t.Errorf("%s applied no binding:\n%s", line, out)
		}
	}
}

func (w *walk) validate(cmd string) { w.sh(0, cmd) }

func (w *walk) plan(cmd string) {
	out := w.sh(0, cmd)
	if !strings.Contains(out, "to add") {
		w.t.Errorf("the plan adds nothing:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "mesh.plan")); err != nil {
		w.t.Fatal(err)
	}
}

func (w *walk) apply(cmd string) {
	out := w.sh(0, cmd)
	if !strings.Contains(out, "Apply complete!") {
		w.t.Fatalf("no Apply complete!:\n%s", out)
	}
	w.e.waitFor(90*time.Second, "every cluster to resolve every other after the apply", w.e.resolvesAll)
}

func (w *walk) verify(cmd string) { w.sh(0, cmd) } // exit 0: every layer of every pair passed

// daemon runs meshd as the README says ("same flags": the state and kubeconfig of the steps before), on
// free ports, and sees it restore a reverted Corefile.
func (w *walk) daemon(cmd string) {
	port, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		w.t.Fatal(err)
	}
	m := w.startMeshd(cmd+fmt.Sprintf(" --metrics-addr 127.0.0.1:%d --trigger-addr ''", port), port)
	w.e.revertCorefile("tidb-2")
	w.e.waitFor(60*time.Second, "meshd to restore tidb-2's Corefile", func() bool {
		return strings.Contains(w.e.corefile("tidb-2"), "pingcap-1.svc.cluster.local")
	})
	w.e.kill(m, syscall.SIGTERM)
}

func (w *walk) startMeshd(line string, port int) *meshdProc {
	w.t.Helper()
	m := &meshdProc{metrics: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{}),
		log: filepath.Join(w.e.dir, fmt.Sprintf("meshd-%d.log", len(w.e.meshds)))}
	logf, err := os.Create(m.log)
	if err != nil {
		w.t.Fatal(err)
	}
	m.cmd = exec.Command("sh", "-c", "exec "+line)
	m.cmd.Dir = w.dir
	m.cmd.Env = append(append(os.Environ(), w.env...), "PATH="+w.bin+":"+os.Getenv("PATH"))
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() { _ = m.cmd.Wait(); logf.Close(); close(m.done) }()
	w.e.meshds = append(w.e.meshds, m)
	w.e.waitFor(60*time.Second, "meshd ready", func() bool { return httpOK(m.metrics + "/readyz") })
	return m
}

// deploy applies deploy/meshd.yaml to the management cluster (tidb-1 here), creates its Secret and ConfigMap
// as the manifest's header says, and checks what it made.
func (w *walk) deploy(cmd string) {
	mgmt := "--context '" + w.sb.Clusters[0].Context + "'"
	admin := "KUBECONFIG=" + w.sb.Kubeconfig
	if err := os.Symlink(filepath.Join(repoRoot(w.t), "deploy"), filepath.Join(w.dir, "deploy")); err != nil {
		w.t.Fatal(err)
	}
	specs := filepath.Join(w.dir, "specs")
	if err := os.MkdirAll(specs, 0o755); err != nil {
		w.t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(w.dir, "mesh.hcl"))
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(specs, "mesh.hcl"), data, 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.sh(0, strings.Replace(cmd, "kubectl ", "kubectl "+mgmt+" ", 1), admin)
	w.sh(0, "kubectl "+mgmt+" -n meshd-system create secret generic meshd-kubeconfig --from-file=kubeconfig="+w.members, admin)
	w.sh(0, "kubectl "+mgmt+" -n meshd-system create configmap meshd-spec --from-file=specs/ --dry-run=client -o yaml | kubectl "+mgmt+" apply -f -", admin)
	out := w.sh(0, "kubectl "+mgmt+" -n meshd-system get deployment/meshd serviceaccount/meshd role/meshd rolebinding/meshd configmap/meshd-spec secret/meshd-kubeconfig -o name", admin)
	for _, want := range []string{"deployment.apps/meshd", "serviceaccount/meshd", "configmap/meshd-spec", "secret/meshd-kubeconfig"} {
		if !strings.Contains(out, want) {
			w.t.Errorf("the management cluster lacks %s:\n%s", want, out)
		}
	}
}

// statePush hands step 4's state file to the Secret the deployed meshd reads, in the management cluster
// the deploy step used (MGMT), with the admin's kubeconfig as for the deploy; the Secret then holds it.
func (w *walk) statePush(cmd string) {
	mgmt := w.sb.Clusters[0]
	w.sh(0, strings.Replace(cmd, "MGMT", "'"+mgmt.Context+"'", 1), "KUBECONFIG="+w.sb.Kubeconfig)
	local, err := state.NewLocal(filepath.Join(w.dir, "meshd.state.json")).Read(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	client, err := kubeclient.NewForConfig(w.sb.APIServers[mgmt.Name].RESTConfig())
	if err != nil {
		w.t.Fatal(err)
	}
	remote, err := secretstate.NewSecret(client, "meshd-system", "meshd-state", "test").Read(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	if remote.Lineage != local.Lineage || remote.Serial <= local.Serial || len(remote.Routes) != len(local.Routes) {
		w.t.Errorf("the Secret holds lineage %s serial %d with %d routes, want step 4's %s (serial after %d) with %d",
			remote.Lineage, remote.Serial, len(remote.Routes), local.Lineage, local.Serial, len(local.Routes))
	}
}

func repoRoot(t *testing.T) string {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestREADMEWalkthroughOnSandbox follows README.md's "Running against real AWS and EKS" on the sandbox, the
// aws-iam-authenticator stand-in behind each API server standing in for EKS's: meshctl and meshd run with
// the credentials of role meshd, which reaches the members only through the access entry and the RBAC the
// section's commands make, members with kube_auth = "eks" and contexts that carry only the servers. Each
// step's outcome is checked; no token appears in what the commands printed.
func TestREADMEWalkthroughOnSandbox(t *testing.T) {
	testenv.Require(t, testenv.BinKubectl)
	kubectl, err := testenv.Lookup(testenv.BinKubectl)
	if err != nil {
		t.Fatal(err)
	}
	sb := sandbox.StartT(t)
	e := newE2EOn(t, sb)
	ctx := context.Background()
	w := &walk{t: t, e: e, sb: sb, dir: t.TempDir(), bin: t.TempDir(), roleARN: "arn:aws:iam::123456789012:role/meshd"}

	// The binaries a user has: meshctl and meshd built from this tree, kubectl.
	if out, err := exec.Command("go", "build", "-o", w.bin, "../meshctl", ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.Symlink(kubectl, filepath.Join(w.bin, "kubectl")); err != nil {
		t.Fatal(err)
	}

	// What the section assumes exists: the role meshd (IRSA's), whose credentials the user's commands run
	// with here (as on a laptop with AWS_PROFILE for it), and the spec, each member with kube_auth = "eks"
	// and a kube_context naming its server (the README's way to reach an endpoint through another address).
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}`
	w.iamCall("CreateRole", url.Values{"RoleName": {"meshd"}, "AssumeRolePolicyDocument": {trust}})
	role, err := sts.NewFromConfig(sb.AWSConfig("us-east-1")).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(w.roleARN),
		RoleSessionName: aws.String("walkthrough"), DurationSeconds: aws.Int32(3600)})
	if err != nil {
		t.Fatal(err)
	}
	w.members = filepath.Join(w.dir, "members.kubeconfig")
	serversOnlyKubeconfig(t, sb, w.members)
	w.env = append(sb.Env(), "AWS_ACCESS_KEY_ID="+aws.ToString(role.Credentials.AccessKeyId),
		"AWS_SECRET_ACCESS_KEY="+aws.ToString(role.Credentials.SecretAccessKey),
		"AWS_SESSION_TOKEN="+aws.ToString(role.Credentials.SessionToken), "KUBECONFIG="+w.members,
		"AWS_DEFAULT_REGION=us-east-1") // aws CLI v1 reads no AWS_REGION: a configured profile's region
	var spec strings.Builder
	spec.WriteString("mesh \"tidb\" {\n  dns {\n    forward_by = \"namespace\"\n  }\n}\n")
	for _, c := range sb.Clusters {
		fmt.Fprintf(&spec, "\ncluster %q {\n  region       = %q\n  eks_cluster  = %q\n  kube_context = %q\n  kube_auth    = \"eks\"\n  namespace    = %q\n}\n",
			c.Name, c.Region, c.Name, c.Context, c.Namespace)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "mesh.hcl"), []byte(spec.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, s := range walkthrough {
		if s.run == nil {
			t.Logf("not run: %s (%s)", s.cmd, s.why)
			continue
		}
		t.Logf("$ %s", s.cmd)
		s.run(w, s.cmd)
		if t.Failed() {
			t.Fatalf("stopped at %q", s.cmd)
		}
	}

	// meshctl and meshd signed in as the role (its access entry), nowhere as the sandbox's own identity.
	for _, r := range sb.IAM.Reviews() {
		if r.Refused == "" && r.ARN != w.roleARN {
			t.Errorf("%s accepted a token of %s, not of the role the walk-through runs as", r.Cluster, r.ARN)
		}
	}
	logs := w.output.String()
	for _, m := range e.meshds {
		b, _ := os.ReadFile(m.log)
		logs += string(b)
	}
	if strings.Contains(logs, ekstoken.Prefix) || strings.Contains(logs, aws.ToString(role.Credentials.SecretAccessKey)) {
		t.Errorf("a token or the role's secret appears in what the commands printed")
	}
}

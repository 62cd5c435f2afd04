package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/meshd-io/meshd/internal/testenv"
)

const chartDir = "../../charts/meshd"

// fullValues turns every optional part of the chart on (and sets what a real install sets).
const fullValues = `
serviceAccount:
  roleArn: arn:aws:iam::123456789012:role/meshd
networkPolicy:
  enabled: true
  metricsFrom:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: monitoring
  egress:
    - ports:
        - port: 443
          protocol: TCP
serviceMonitor:
  enabled: true
  labels:
    release: kube-prometheus-stack
prometheusRule:
  enabled: true
  labels:
    release: kube-prometheus-stack
`

// The kinds the chart renders with its default values, and those the full values add.
var (
	chartDefaultKinds  = []string{"ConfigMap", "Deployment", "PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount"}
	chartOptionalKinds = []string{"NetworkPolicy", "PrometheusRule", "ServiceMonitor"}
)

// chartHelms are the Helm major versions the chart supports (charts/meshd/Chart.yaml says Helm 3 and 4), each
// a pinned helm of scripts/testenv.sh.
var chartHelms = []struct {
	name  string // the subtest's
	bin   testenv.Binary
	major string // what `helm version` must start with, so an override of the wrong major is caught
}{
	{"helm4", testenv.BinHelm, "v4."},
	{"helm3", testenv.BinHelm3, "v3."},
}

// forEachHelm runs f as a subtest under each Helm the chart supports, so that a template function, schema
// rule or install behaviour one of them lacks fails that Helm's subtest.
func forEachHelm(t *testing.T, f func(t *testing.T, h *helmCmd)) {
	for _, v := range chartHelms {
		t.Run(v.name, func(t *testing.T) {
			h := &helmCmd{t: t, binary: v.bin, bin: testenv.Require(t, v.bin), home: t.TempDir()}
			version := strings.TrimSpace(h.must("version", "--template", "{{.Version}}"))
			if !strings.HasPrefix(version, v.major) {
				t.Fatalf("%s (%s) is helm %s, want %s*", h.bin, v.bin.EnvVar(), version, v.major)
			}
			t.Logf("helm %s", version)
			f(t, h)
		})
	}
}

// helmCmd runs one pinned helm with its cache and configuration in a temporary home.
type helmCmd struct {
	t      *testing.T
	binary testenv.Binary
	bin    string
	home   string
}

func (h *helmCmd) run(args ...string) (string, error) {
	cmd := exec.Command(h.bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(h.home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(h.home, "config"), "HELM_DATA_HOME="+filepath.Join(h.home, "data"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (h *helmCmd) must(args ...string) string {
	h.t.Helper()
	out, err := h.run(args...)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *helmCmd) valuesFile(name, text string) string {
	h.t.Helper()
	p := filepath.Join(h.home, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// chartObject is one document of a rendered chart.
type chartObject struct {
	Kind, APIVersion, Name, Namespace string
	doc                               string
}

func (o chartObject) String() string { return o.Kind + "/" + o.Name }

func splitObjects(t *testing.T, text string) []chartObject {
	t.Helper()
	var out []chartObject
	for _, doc := range strings.Split(text, "\n---\n") {
		var head struct {
			Kind       string `json:"kind"`
			APIVersion string `json:"apiVersion"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		if head.Kind == "" {
			continue
		}
		out = append(out, chartObject{head.Kind, head.APIVersion, head.Metadata.Name, head.Metadata.Namespace, doc})
	}
	return out
}

func kinds(objs []chartObject) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Kind)
	}
	sort.Strings(out)
	return out
}

func find[T any](t *testing.T, objs []chartObject, kind string) *T {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind {
			v := new(T)
			if err := yaml.UnmarshalStrict([]byte(o.doc), v); err != nil {
				t.Fatalf("%s: %v", o, err)
			}
			return v
		}
	}
	t.Fatalf("no %s rendered", kind)
	return nil
}

// chartValues are the values a rendering was made with, as the checks need them.
type chartValues struct {
	namespace, mesh, stateSecret, serviceAccount, specConfigMap, kubeconfigSecret, roleARN string
}

var defaultChartValues = chartValues{namespace: "meshd-system", mesh: "tidb", stateSecret: "meshd-state", serviceAccount: "meshd",
	specConfigMap: "meshd-spec", kubeconfigSecret: "meshd-kubeconfig"}

// checkChartDeployment checks the rendered Deployment as TestDeployManifestArgs checks deploy/meshd.yaml, and
// what the values decide: its arguments parsed with meshd's own flag set (leader election on the Lease
// meshd-<mesh> in the release's namespace, the state Secret, the spec and kubeconfig mounts), the probes on
// the metrics port, non-root with a read-only root filesystem, the IRSA annotation.
func checkChartDeployment(t *testing.T, what string, objs []chartObject, v chartValues) {
	t.Helper()
	dep := find[appsv1.Deployment](t, objs, "Deployment")
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("%s: replicas %v, want 2", what, dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	var o options
	fs := flag.NewFlagSet("meshd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.register(fs)
	if err := fs.Parse(c.Args); err != nil {
		t.Fatalf("%s: meshd rejects the Deployment's args %q: %v", what, c.Args, err)
	}
	if fs.NArg() != 0 {
		t.Errorf("%s: arguments meshd does not read: %q", what, fs.Args())
	}
	if !o.leaderElect || o.leaseNamespace != v.namespace || o.leaseName != "meshd-"+v.mesh || o.stateSecret != v.namespace+"/"+v.stateSecret {
		t.Errorf("%s: leader election %v in %q on %q, state %q; want the Lease meshd-%s in %s and the state %s/%s",
			what, o.leaderElect, o.leaseNamespace, o.leaseName, o.stateSecret, v.mesh, v.namespace, v.namespace, v.stateSecret)
	}
	if host, _, err := net.SplitHostPort(o.triggerAddr); err != nil || !net.ParseIP(host).IsLoopback() {
		t.Errorf("%s: --trigger-addr %q: want loopback", what, o.triggerAddr)
	}
	host, port, err := net.SplitHostPort(o.metricsAddr)
	if err != nil || host != "" || len(c.Ports) != 1 || fmt.Sprint(c.Ports[0].ContainerPort) != port || c.Ports[0].Name != "metrics" {
		t.Errorf("%s: --metrics-addr %q and ports %v: want all interfaces on the port named metrics", what, o.metricsAddr, c.Ports)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[name]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port.String() != "metrics" {
			t.Errorf("%s: %s probe %+v, want GET %s on the metrics port", what, name, p, want)
		}
	}
	sc, psc := c.SecurityContext, pod.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: security contexts %+v / %+v: want non-root, read-only root filesystem, no privilege escalation", what, psc, sc)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: resources %+v", what, c.Resources)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	for _, vol := range pod.Volumes {
		switch {
		case vol.ConfigMap != nil:
			if vol.ConfigMap.Name != v.specConfigMap || vol.ConfigMap.Optional == nil || *vol.ConfigMap.Optional || mounts[vol.Name] != o.spec {
				t.Errorf("%s: spec volume %+v at %q, --spec %q: want the ConfigMap %s, not optional", what, vol.ConfigMap, mounts[vol.Name], o.spec, v.specConfigMap)
			}
		case vol.Secret != nil:
			if vol.Secret.SecretName != v.kubeconfigSecret || vol.Secret.Optional == nil || *vol.Secret.Optional || !strings.HasPrefix(o.kubeconfig, mounts[vol.Name]+"/") {
				t.Errorf("%s: kubeconfig volume %+v at %q, --kubeconfig %q: want the Secret %s, not optional", what, vol.Secret, mounts[vol.Name], o.kubeconfig, v.kubeconfigSecret)
			}
		}
	}
	if pod.ServiceAccountName != v.serviceAccount {
		t.Errorf("%s: service account %q, want %q", what, pod.ServiceAccountName, v.serviceAccount)
	}
	sa := find[corev1.ServiceAccount](t, objs, "ServiceAccount")
	if got := sa.Annotations["eks.amazonaws.com/role-arn"]; got != v.roleARN {
		t.Errorf("%s: IRSA annotation %q, want %q", what, got, v.roleARN)
	}
}

// managementRBAC decodes the Roles and RoleBindings of a YAML stream, without labels (the chart's).
func managementRBAC(t *testing.T, text string) []any {
	t.Helper()
	var out []any
	for _, o := range splitObjects(t, text) {
		switch o.Kind {
		case "Role":
			var r rbacv1.Role
			if err := yaml.UnmarshalStrict([]byte(o.doc), &r); err != nil {
				t.Fatal(err)
			}
			r.Labels = nil
			out = append(out, r)
		case "RoleBinding":
			var b rbacv1.RoleBinding
			if err := yaml.UnmarshalStrict([]byte(o.doc), &b); err != nil {
				t.Fatal(err)
			}
			b.Labels = nil
			out = append(out, b)
		case "ClusterRole", "ClusterRoleBinding":
			t.Errorf("the chart renders a %s: meshd needs none in the management cluster", o.Kind)
		}
	}
	return out
}

// buildMeshctl builds meshctl from this tree.
func buildMeshctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "meshctl")
	if out, err := exec.Command("go", "build", "-o", bin, "../meshctl").CombinedOutput(); err != nil {
		t.Fatalf("go build meshctl: %v\n%s", err, out)
	}
	return bin
}

// TestChartRenders: under Helm 4 and Helm 3, helm lint --strict passes and helm template renders, with the
// default values and with every optional part on (and with another mesh, namespace and names); the Deployment
// is checked with meshd's own flag set, and the Role and RoleBinding are exactly meshctl rbac --management's
// for the same names.
func TestChartRenders(t *testing.T) {
	forEachHelm(t, checkChartRenders)
}

func checkChartRenders(t *testing.T, h *helmCmd) {
	full := h.valuesFile("full.yaml", fullValues)
	h.must("lint", "--strict", chartDir)
	h.must("lint", "--strict", chartDir, "-f", full)
	// A value the schema refuses fails lint and template.
	if _, err := h.run("template", "meshd", chartDir, "--set", "policy=delete-all"); err == nil || !strings.Contains(err.Error(), "policy") {
		t.Errorf("a policy meshd does not know passed values.schema.json: %v", err)
	}

	meshctl := buildMeshctl(t) // once the helm is found, so a skip (-short, no helm) builds nothing
	spec := "../../specs/mesh.hcl"
	for _, tc := range []struct {
		name string
		args []string
		v    chartValues
		want []string
	}{
		{"defaults", nil, defaultChartValues, chartDefaultKinds},
		{"full", []string{"-f", full}, func() chartValues {
			v := defaultChartValues
			v.roleARN = "arn:aws:iam::123456789012:role/meshd"
			return v
		}(), slices.Sorted(slices.Values(append(slices.Clone(chartDefaultKinds), chartOptionalKinds...)))},
		{"another mesh", []string{"--set", "meshName=prod,state.secret=prod-state,serviceAccount.name=meshd-prod,spec.configMap=prod-spec,kubeconfig.secret=prod-members"},
			chartValues{namespace: "mesh-prod", mesh: "prod", stateSecret: "prod-state", serviceAccount: "meshd-prod", specConfigMap: "prod-spec", kubeconfigSecret: "prod-members"},
			chartDefaultKinds},
	} {
		out := h.must(append([]string{"template", "meshd", chartDir, "--namespace", tc.v.namespace}, tc.args...)...)
		objs := splitObjects(t, out)
		if diff := cmp.Diff(tc.want, kinds(objs)); diff != "" {
			t.Errorf("%s: rendered kinds (-want, +got):\n%s", tc.name, diff)
		}
		t.Logf("%s values: %d objects (%s)", tc.name, len(objs), strings.Join(kinds(objs), ", "))
		for _, o := range objs {
			if o.Namespace != tc.v.namespace {
				t.Errorf("%s: %s in namespace %q, want the release's %q", tc.name, o, o.Namespace, tc.v.namespace)
			}
		}
		checkChartDeployment(t, tc.name, objs, tc.v)

		rbacOut, err := exec.Command(meshctl, "rbac", "--spec", spec, "--management", "--leader-elect-name", "meshd-"+tc.v.mesh,
			"--leader-elect-namespace", tc.v.namespace, "--state-secret", tc.v.namespace+"/"+tc.v.stateSecret,
			"--subject", "ServiceAccount:"+tc.v.namespace+"/"+tc.v.serviceAccount).Output()
		if err != nil {
			t.Fatalf("meshctl rbac: %v", err)
		}
		if diff := cmp.Diff(managementRBAC(t, string(rbacOut)), managementRBAC(t, out)); diff != "" {
			t.Errorf("%s: the chart's RBAC is not meshctl rbac --management's (-meshctl, +chart):\n%s", tc.name, diff)
		}

		if tc.name == "full" {
			dash := find[corev1.ConfigMap](t, objs, "ConfigMap")
			if dash.Labels["grafana_dashboard"] != "1" || !strings.Contains(dash.Data["meshd.json"], "meshd_path_ok") {
				t.Errorf("the dashboard ConfigMap: labels %v, %d bytes of dashboard", dash.Labels, len(dash.Data["meshd.json"]))
			}
			rule := find[struct {
				metav1.TypeMeta   `json:",inline"`
				metav1.ObjectMeta `json:"metadata"`
				Spec              map[string]any `json:"spec"`
			}](t, objs, "PrometheusRule")
			alerts, err := os.ReadFile(filepath.Join(chartDir, "files", "alerts.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var file map[string]any
			if err := yaml.Unmarshal(alerts, &file); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(file, rule.Spec); diff != "" {
				t.Errorf("the PrometheusRule's spec is not files/alerts.yaml (-file, +rule):\n%s", diff)
			}
		}
	}
}

// TestDeployManifestIsTheChart: deploy/meshd.yaml is what `make deploy-manifest` writes, charts/meshd
// rendered with its default values by Helm 4 (the script's helm), and Helm 3 renders the same: the same text
// but for blank lines at the ends of documents, and the same objects.
func TestDeployManifestIsTheChart(t *testing.T) {
	forEachHelm(t, checkDeployManifest)
}

// trimDocEnds drops the whitespace that ends each document of a YAML stream. Helm 4 keeps a template's
// trailing blank lines, Helm 3 drops them; outside a block scalar kept with |+ (which decoding the objects
// would catch) they mean nothing.
func trimDocEnds(text string) string {
	docs := strings.Split(text, "\n---\n")
	for i, d := range docs {
		docs[i] = strings.TrimRight(d, " \n")
	}
	return strings.Join(docs, "\n---\n")
}

func checkDeployManifest(t *testing.T, h *helmCmd) {
	cmd := exec.Command("../../scripts/deploy-manifest.sh")
	cmd.Env = append(os.Environ(), "MESHD_HELM="+h.bin, "HELM_CACHE_HOME="+filepath.Join(h.home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(h.home, "config"), "HELM_DATA_HOME="+filepath.Join(h.home, "data"))
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/deploy-manifest.sh: %v", err)
	}
	got, err := os.ReadFile("../../deploy/meshd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if h.binary == testenv.BinHelm {
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("deploy/meshd.yaml is not the chart rendered with its defaults; run make deploy-manifest (-rendered, +file):\n%s", diff)
		}
		return
	}
	if diff := cmp.Diff(trimDocEnds(string(want)), trimDocEnds(string(got))); diff != "" {
		t.Errorf("%s renders the chart's defaults otherwise than deploy/meshd.yaml, beyond blank lines at the ends of documents (-rendered, +file):\n%s", h.binary, diff)
	}
	decode := func(text string) []map[string]any {
		var out []map[string]any
		for _, o := range splitObjects(t, text) {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(o.doc), &m); err != nil {
				t.Fatalf("%s: %v", o, err)
			}
			out = append(out, m)
		}
		return out
	}
	if diff := cmp.Diff(decode(string(want)), decode(string(got))); diff != "" {
		t.Errorf("%s renders other objects than deploy/meshd.yaml's (-rendered, +file):\n%s", h.binary, diff)
	}
}

// TestChartInstallsOnAPIServer: under Helm 4 and Helm 3, each with its own kube-apiserver, helm install
// creates every object the chart renders, with the defaults and with every optional part on. The Prometheus
// Operator's CRDs are needed only for the ServiceMonitor and the PrometheusRule: without them an install with
// either on fails, creating nothing, and the defaults install; once the CRDs exist, the full install succeeds.
func TestChartInstallsOnAPIServer(t *testing.T) {
	forEachHelm(t, checkChartInstalls)
}

func checkChartInstalls(t *testing.T, h *helmCmd) {
	etcd := testenv.StartEtcd(t)
	api := testenv.StartAPIServer(t, etcd.ClientURL, "management")
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := api.WriteKubeconfig(kubeconfig, ""); err != nil {
		t.Fatal(err)
	}
	cfg := api.RESTConfig()
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	install := func(ns string, args ...string) (string, error) {
		return h.run(append([]string{"install", "meshd", chartDir, "--kubeconfig", kubeconfig, "--namespace", ns, "--create-namespace", "--timeout", "2m"}, args...)...)
	}
	// checkCreated gets every object helm template renders for these values from the API server.
	checkCreated := func(ns string, args ...string) int {
		t.Helper()
		out := h.must(append([]string{"template", "meshd", chartDir, "--namespace", ns, "--kubeconfig", kubeconfig}, args...)...)
		objs := splitObjects(t, out)
		groups, err := restmapper.GetAPIGroupResources(discovery.NewDiscoveryClientForConfigOrDie(cfg))
		if err != nil {
			t.Fatal(err)
		}
		mapper := restmapper.NewDiscoveryRESTMapper(groups)
		for _, o := range objs {
			gv, err := schema.ParseGroupVersion(o.APIVersion)
			if err != nil {
				t.Fatal(err)
			}
			m, err := mapper.RESTMapping(gv.WithKind(o.Kind).GroupKind(), gv.Version)
			if err != nil {
				t.Errorf("%s: %v", o, err)
				continue
			}
			got, err := dyn.Resource(m.Resource).Namespace(ns).Get(ctx, o.Name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("%s in %s after helm install: %v", o, ns, err)
				continue
			}
			if got.GetLabels()["app.kubernetes.io/instance"] != "meshd" {
				t.Errorf("%s: labels %v", o, got.GetLabels())
			}
		}
		return len(objs)
	}

	full := h.valuesFile("full.yaml", fullValues)
	n := 0
	if _, err := install("meshd-system"); err != nil {
		t.Fatal(err)
	}
	n = checkCreated("meshd-system")
	t.Logf("defaults: helm install created %d objects", n)
	dep, err := dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace("meshd-system").Get(ctx, "meshd", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	containers, _, _ := unstructuredSlice(dep.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 || !slices.Contains(containers[0]["args"].([]any), any("--leader-elect-name=meshd-tidb")) {
		t.Errorf("the Deployment in the API server: containers %v", containers)
	}

	// Without the CRDs: each of the two parts alone fails the install, which creates nothing.
	for _, part := range []struct{ set, kind string }{{"serviceMonitor.enabled=true", "ServiceMonitor"}, {"prometheusRule.enabled=true", "PrometheusRule"}} {
		ns := "no-crd-" + strings.ToLower(part.kind)
		_, err := install(ns, "--set", part.set)
		if err == nil || !strings.Contains(err.Error(), part.kind) {
			t.Errorf("install with %s and no CRD: %v; want it refused, naming %s", part.set, err, part.kind)
		}
		if _, err := dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace(ns).Get(ctx, "meshd", metav1.GetOptions{}); err == nil {
			t.Errorf("the refused install with %s created the Deployment", part.set)
		}
	}

	// With the CRDs (minimal stand-ins for the Prometheus Operator's), every part installs.
	for _, f := range []string{"servicemonitor.yaml", "prometheusrule.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", "crds", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := testenv.InstallCRD(ctx, cfg, data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := install("monitoring-on", "-f", full); err != nil {
		t.Fatal(err)
	}
	n = checkCreated("monitoring-on", "-f", full)
	t.Logf("full values: helm install created %d objects", n)
	if n != len(chartDefaultKinds)+len(chartOptionalKinds) {
		t.Errorf("full values: %d objects, want %d", n, len(chartDefaultKinds)+len(chartOptionalKinds))
	}
}

func unstructuredSlice(obj map[string]any, fields ...string) ([]map[string]any, bool, error) {
	var cur any = obj
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false, nil
		}
		cur = m[f]
	}
	items, ok := cur.([]any)
	if !ok {
		return nil, false, nil
	}
	var out []map[string]any
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out, true, nil
}

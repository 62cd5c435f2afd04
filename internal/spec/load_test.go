package spec

import (
	"bufio"
	"bytes"
	"cmp"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"
)

const (
	invalidDir = "../../testdata/invalid"
	validDir   = "../../testdata/valid"
)

// diagKey is what an invalid-spec test compares of a diagnostic: where its subject starts and what it says.
type diagKey struct {
	File     string // base name of the subject's file; "" for a diagnostic about the path itself
	Line     int
	Severity string
	Summary  string
}

func keyOf(d *hcl.Diagnostic) diagKey {
	k := diagKey{Severity: "ERROR", Summary: d.Summary}
	if d.Severity == hcl.DiagWarning {
		k.Severity = "WARNING"
	}
	if d.Subject != nil {
		k.File = filepath.Base(d.Subject.Filename)
		k.Line = d.Subject.Start.Line
	}
	return k
}

func sortKeys(ks []diagKey) {
	slices.SortFunc(ks, func(a, b diagKey) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Severity, b.Severity), cmp.Compare(a.Summary, b.Summary))
	})
}

// markerRe matches the expectations written at the end of a line of an invalid spec:
// `# ERROR: <Summary>` or `# WARNING: <Summary>`, possibly several on one line.
var markerRe = regexp.MustCompile(`# (ERROR|WARNING): ([^#]*[^#\s])`)

// wantFromMarkers collects the expected diagnostics from the markers of the spec file at path, or of the *.hcl
// files of the directory at path.
func wantFromMarkers(t *testing.T, path string) []diagKey {
	t.Helper()
	files := []string{path}
	if info, err := os.Stat(path); err != nil {
		t.Fatal(err)
	} else if info.IsDir() {
		files, err = filepath.Glob(filepath.Join(path, "*.hcl"))
		if err != nil {
			t.Fatal(err)
		}
	}
	var want []diagKey
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(src))
		for line := 1; sc.Scan(); line++ {
			for _, m := range markerRe.FindAllStringSubmatch(sc.Text(), -1) {
				want = append(want, diagKey{File: filepath.Base(f), Line: line, Severity: m[1], Summary: m[2]})
			}
		}
	}
	return want
}

func TestLoadInvalid(t *testing.T) {
	type testCase struct {
		path      string
		pathLevel bool // diagnostics about the path itself carry no Subject: there is no source to point into
		want      []diagKey
	}
	cases := map[string]testCase{}
	entries, err := os.ReadDir(invalidDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		path := filepath.Join(invalidDir, e.Name())
		cases[e.Name()] = testCase{path: path, want: wantFromMarkers(t, path)}
	}
	// Cases whose expectation no spec file can carry.
	cases["no-hcl-files"] = testCase{
		path:      filepath.Join(invalidDir, "no-hcl-files"),
		pathLevel: true,
		want:      []diagKey{{Severity: "ERROR", Summary: "No spec files"}},
	}
	cases["path-does-not-exist"] = testCase{
		path:      filepath.Join(invalidDir, "does-not-exist.hcl"),
		pathLevel: true,
		want:      []diagKey{{Severity: "ERROR", Summary: "Spec not found"}},
	}
	if len(cases) < 24 {
		t.Errorf("only %d invalid cases; the suite is meant to cover at least 24", len(cases))
	}

	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if len(tc.want) == 0 {
				t.Fatalf("%s has no # ERROR: or # WARNING: marker", tc.path)
			}
			m, diags := Load(tc.path)
			if m == nil {
				t.Fatal("Load returned a nil Mesh")
			}
			got := make([]diagKey, 0, len(diags))
			for _, d := range diags {
				got = append(got, keyOf(d))
			}
			sortKeys(got)
			want := slices.Clone(tc.want)
			sortKeys(want)
			if diff := gocmp.Diff(want, got); diff != "" {
				var out bytes.Buffer
				_ = PrintDiagnostics(&out, m.Files, diags, false)
				t.Errorf("Load(%s) diagnostics (-want +got):\n%s\nprinted:\n%s", tc.path, diff, out.String())
			}

			if !tc.pathLevel && len(m.Files) == 0 {
				t.Error("Mesh.Files is empty: the caller could not print the diagnostics' sources")
			}
			for _, d := range diags {
				if d.Detail == "" || strings.HasSuffix(d.Summary, ".") {
					t.Errorf("diagnostic %q: want a Summary without a trailing period and a Detail, got Detail %q", d.Summary, d.Detail)
				}
				if d.Severity != hcl.DiagError || tc.pathLevel {
					continue
				}
				if d.Subject == nil || d.Subject.Filename == "" {
					t.Errorf("error %q has no Subject with a filename", d.Summary)
				} else if _, ok := m.Files[d.Subject.Filename]; !ok {
					t.Errorf("error %q points into %s, which is not in Mesh.Files", d.Summary, d.Subject.Filename)
				}
			}
		})
	}
}

func TestLoadValid(t *testing.T) {
	eks := func(name, region, eksName, ns string) *Cluster {
		return &Cluster{
			Name:          name,
			Region:        region,
			KubeContext:   "pingcap@" + name + "." + region + ".eksctl.io",
			KubeAuth:      KubeAuthKubeconfig,
			EKSCluster:    eksName,
			Namespace:     ns,
			ClusterDomain: DefaultClusterDomain,
		}
	}
	cases := map[string]struct {
		reason string
		want   *Mesh
	}{
		"eks.hcl": {
			reason: "Defaults fill what a minimal EKS spec leaves out.",
			want: &Mesh{
				Name:      "tidb",
				ForwardBy: ForwardByNamespace,
				Quotas:    DefaultQuotas,
				Clusters: []*Cluster{
					eks("tidb-1", "us-west-1", "tidb-1", "pingcap-1"),
					eks("tidb-2", "us-gov-west-1", "tidb_2", "pingcap-2"),
				},
			},
		},
		"eks-auth.hcl": {
			reason: "kube_auth is eks by default for a member with eks_cluster and no kube_context; set, it is kept; else kubeconfig.",
			want: &Mesh{
				Name:      "tidb",
				ForwardBy: ForwardByNamespace,
				Quotas:    DefaultQuotas,
				Clusters: []*Cluster{
					{Name: "tidb-1", Region: "us-west-1", KubeAuth: KubeAuthEKS, EKSCluster: "tidb-1", Namespace: "pingcap-1", ClusterDomain: DefaultClusterDomain},
					{Name: "tidb-2", Region: "us-west-2", KubeContext: "tidb-2-private", KubeAuth: KubeAuthEKS, VPCID: "vpc-0b15ed35c02af5288",
						SecurityGroupID: "sg-0cb299e7ec153c595", Namespace: "pingcap-2", ClusterDomain: DefaultClusterDomain,
						AssumeRole: "arn:aws:iam::111111111111:role/meshd"},
					eks("tidb-3", "us-east-1", "tidb-3", "pingcap-3"),
				},
			},
		},
		"vpc.hcl": {
			reason: "Networks named directly keep their lists in order; quotas and adopt are read.",
			want: &Mesh{
				Name:      "etcd",
				ForwardBy: ForwardByNamespace,
				Adopt:     true,
				Quotas:    Quotas{PeeringsPerVPC: 125, RoutesPerRouteTable: 1000, InboundRulesPerGroup: 200},
				Clusters: []*Cluster{
					{
						Name:        "dp-1",
						Region:      "eu-central-1",
						KubeContext: "dp-1",

						KubeAuth:        KubeAuthKubeconfig,
						VPCID:           "vpc-0b15ed35c02af5288",
						SecurityGroupID: "sg-0cb299e7ec153c595",
						RouteTableIDs:   []string{"rtb-0e4c2c6a8b5f3d1a7", "rtb-1a2b3c4d"},
						CIDRBlocks:      []string{"10.1.0.0/16", "100.64.0.0/20"},
						Namespace:       "etcd",
						ClusterDomain:   DefaultClusterDomain,
					},
					{
						Name:        "dp-2",
						Region:      "ap-southeast-2",
						KubeContext: "dp-2",

						KubeAuth:        KubeAuthKubeconfig,
						VPCID:           "vpc-1a2b3c4d",
						SecurityGroupID: "sg-5e6f7a8b",
						CIDRBlocks:      []string{"10.2.0.0/16"},
						Namespace:       "etcd-2",
						ClusterDomain:   DefaultClusterDomain,
					},
				},
			},
		},
		"cluster-domain.hcl": {
			reason: "In cluster_domain mode namespaces may repeat or be left out; one cluster keeps the default domain.",
			want: &Mesh{
				Name:      "kb",
				ForwardBy: ForwardByClusterDomain,
				Quotas:    DefaultQuotas,
				Clusters: []*Cluster{
					{Name: "east", Region: "us-east-1", KubeContext: "kind-east", KubeAuth: KubeAuthKubeconfig, VPCID: "vpc-00000001", SecurityGroupID: "sg-00000001", ClusterDomain: "east.local", Namespace: "kb"},
					{Name: "west", Region: "us-west-2", KubeContext: "kind-west", KubeAuth: KubeAuthKubeconfig, VPCID: "vpc-00000002", SecurityGroupID: "sg-00000002", ClusterDomain: "west.example.com", Namespace: "kb"},
					{Name: "central", Region: "ca-central-1", KubeContext: "kind-central", KubeAuth: KubeAuthKubeconfig, VPCID: "vpc-00000003", SecurityGroupID: "sg-00000003", ClusterDomain: DefaultClusterDomain},
				},
			},
		},
		"dns-disabled.hcl": {
			reason: "dns { enabled = false } turns the Kubernetes side off.",
			want: &Mesh{
				Name:        "net",
				ForwardBy:   ForwardByNamespace,
				DNSDisabled: true,
				Quotas:      DefaultQuotas,
				Clusters: []*Cluster{
					{Name: "a", Region: "us-west-1", KubeContext: "a", KubeAuth: KubeAuthKubeconfig, EKSCluster: "a", Namespace: "ns-a", ClusterDomain: DefaultClusterDomain},
					{Name: "b", Region: "us-west-2", KubeContext: "b", KubeAuth: KubeAuthKubeconfig, EKSCluster: "b", Namespace: "ns-b", ClusterDomain: DefaultClusterDomain},
				},
			},
		},
		"replicate.hcl": {
			reason: "Replicate blocks keep their source, to and namespace as written, in declaration order.",
			want: &Mesh{
				Name:      "tidb",
				ForwardBy: ForwardByNamespace,
				Quotas:    DefaultQuotas,
				Clusters: []*Cluster{
					{Name: "tidb-1", Region: "us-west-1", KubeContext: "a", KubeAuth: KubeAuthKubeconfig, EKSCluster: "tidb-1", Namespace: "pingcap-1", ClusterDomain: DefaultClusterDomain},
					{Name: "tidb-2", Region: "us-west-2", KubeContext: "b", KubeAuth: KubeAuthKubeconfig, EKSCluster: "tidb-2", Namespace: "pingcap-2", ClusterDomain: DefaultClusterDomain},
					{Name: "tidb-3", Region: "us-east-1", KubeContext: "c", KubeAuth: KubeAuthKubeconfig, EKSCluster: "tidb-3", Namespace: "pingcap-3", ClusterDomain: DefaultClusterDomain},
				},
				Replicates: []*Replicate{
					{Name: "tidb-ca", FromCluster: "tidb-1", FromKind: "Secret", FromNamespace: "pingcap-1", FromName: "cluster1-ca-secret", Namespace: "pingcap"},
					{Name: "kubeblocks-pod-role", FromCluster: "tidb-1", FromKind: "ClusterRole", FromName: "kubeblocks-cluster-pod-role", To: []string{"tidb-3"}},
				},
			},
		},
		"control-plane.hcl": {
			reason: "Control planes keep their data planes as written; defaults fill the rest; api_server is read.",
			want: &Mesh{
				Name:      "kb",
				ForwardBy: ForwardByNamespace,
				Quotas:    DefaultQuotas,
				Clusters: []*Cluster{
					{Name: "k8s-0", Region: "us-west-1", KubeContext: "k0", KubeAuth: KubeAuthKubeconfig, EKSCluster: "k8s-0", Namespace: "kb-0", ClusterDomain: DefaultClusterDomain},
					{Name: "k8s-1", Region: "us-west-2", KubeContext: "k1", KubeAuth: KubeAuthKubeconfig, EKSCluster: "k8s-1", Namespace: "kb-1", ClusterDomain: DefaultClusterDomain, APIServer: "https://10.1.0.10:443"},
					{Name: "k8s-2", Region: "us-east-1", KubeContext: "k2", KubeAuth: KubeAuthKubeconfig, EKSCluster: "k8s-2", Namespace: "kb-2", ClusterDomain: DefaultClusterDomain},
				},
				ControlPlanes: []*ControlPlane{
					{Name: "kubeblocks", Cluster: "k8s-0", DataPlanes: []string{"k8s-2", "k8s-1"}, SecretNamespace: "kb-system",
						SecretName: "kubeblocks-data-planes", ClusterRole: "kubeblocks-manager", TokenTTL: 2 * time.Hour},
					{Name: "defaults", Cluster: "k8s-1", SecretNamespace: "kb-system", SecretName: "data-planes",
						ClusterRole: "kubeblocks-cluster-pod-role", TokenTTL: DefaultTokenTTL, TokenFileDir: DefaultTokenFileDir},
				},
			},
		},
		"privileged.hcl": {
			reason: "allow_privileged = true lets replicate blocks use kube-* namespaces and control planes bind admin-like roles.",
			want: &Mesh{
				Name:            "ops",
				ForwardBy:       ForwardByNamespace,
				AllowPrivileged: true,
				Quotas:          DefaultQuotas,
				Clusters: []*Cluster{
					{Name: "a", Region: "us-west-1", KubeContext: "a", KubeAuth: KubeAuthKubeconfig, EKSCluster: "a", Namespace: "ops-a", ClusterDomain: DefaultClusterDomain},
					{Name: "b", Region: "us-west-2", KubeContext: "b", KubeAuth: KubeAuthKubeconfig, EKSCluster: "b", Namespace: "ops-b", ClusterDomain: DefaultClusterDomain},
				},
				Replicates: []*Replicate{
					{Name: "registry-credentials", FromCluster: "a", FromKind: "Secret", FromNamespace: "kube-system", FromName: "registry"},
					{Name: "bootstrap", FromCluster: "a", FromKind: "RoleBinding", FromNamespace: "ops-a", FromName: "bootstrap", Namespace: "kube-public"},
				},
				ControlPlanes: []*ControlPlane{
					{Name: "admin", Cluster: "a", SecretNamespace: "ops-a", SecretName: "data-planes", ClusterRole: "cluster-admin",
						TokenTTL: DefaultTokenTTL, TokenFileDir: DefaultTokenFileDir},
					{Name: "controller", Cluster: "b", SecretNamespace: "ops-b", SecretName: "data-planes", ClusterRole: "system:aggregate-to-admin",
						TokenTTL: DefaultTokenTTL, TokenFileDir: DefaultTokenFileDir},
				},
			},
		},
		"multi-file": {
			reason: "A directory's *.hcl files form one spec, clusters in file-name order; other files are ignored.",
			want: &Mesh{
				Name:      "tidb",
				ForwardBy: ForwardByNamespace,
				Quotas:    Quotas{PeeringsPerVPC: 50, RoutesPerRouteTable: 100, InboundRulesPerGroup: 60},
				Clusters: []*Cluster{
					eks("tidb-1", "us-west-1", "tidb-1", "pingcap-1"),
					eks("tidb-2", "us-west-2", "tidb-1", "pingcap-2"),
					eks("tidb-3", "us-east-1", "tidb-3", "pingcap-3"),
				},
			},
		},
	}

	entries, err := os.ReadDir(validDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := cases[e.Name()]; !ok {
			t.Errorf("%s has no case in TestLoadValid", e.Name())
		}
	}

	ignore := gocmp.Options{
		cmpopts.IgnoreFields(Mesh{}, "Files", "DeclRange", "Attrs"),
		cmpopts.IgnoreFields(Cluster{}, "BlockRanges"),
		cmpopts.IgnoreFields(Replicate{}, "BlockRanges", "FromDeclRange"),
		cmpopts.IgnoreFields(ControlPlane{}, "BlockRanges"),
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, diags := Load(filepath.Join(validDir, name))
			if len(diags) > 0 {
				var out bytes.Buffer
				_ = PrintDiagnostics(&out, got.Files, diags, false)
				t.Fatalf("%s\nLoad: unexpected diagnostics:\n%s", tc.reason, out.String())
			}
			if diff := gocmp.Diff(tc.want, got, ignore); diff != "" {
				t.Errorf("%s\nLoad (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// TestLoadRanges checks the ranges that diagnostics made later (by the planner) point at.
func TestLoadRanges(t *testing.T) {
	m, diags := Load(filepath.Join(validDir, "vpc.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	at := func(r hcl.Range) string { return r.String() }
	c := m.Cluster("dp-1")
	dp2 := m.Cluster("dp-2")
	file := filepath.Join(validDir, "vpc.hcl")
	got := map[string]string{
		"mesh":                            at(m.DeclRange),
		"mesh adopt":                      at(m.AttrRange("adopt")),
		"mesh quotas.peerings_per_vpc":    at(m.AttrRange("quotas.peerings_per_vpc")),
		"mesh dns.forward_by":             at(m.AttrRange("dns.forward_by")),
		"dp-1":                            at(c.DeclRange),
		"dp-1 region":                     at(c.AttrRange("region")),
		"dp-1 route_table_ids":            at(c.AttrRange("route_table_ids")),
		"dp-1 cidr_blocks[1]":             at(c.ElemRange("cidr_blocks", 1)),
		"dp-1 cluster_domain (defaulted)": at(c.AttrRange("cluster_domain")),
		"dp-2 route_table_ids[0] (unset)": at(dp2.ElemRange("route_table_ids", 0)),
	}
	want := map[string]string{
		"mesh":                            file + ":2,1-12",
		"mesh adopt":                      file + ":3,11-15",
		"mesh quotas.peerings_per_vpc":    file + ":10,31-34",
		"mesh dns.forward_by":             file + ":6,18-29",
		"dp-1":                            file + ":16,1-15",
		"dp-1 region":                     file + ":17,23-37",
		"dp-1 route_table_ids":            file + ":21,23-64",
		"dp-1 cidr_blocks[1]":             file + ":22,39-54",
		"dp-1 cluster_domain (defaulted)": file + ":16,1-15",
		"dp-2 route_table_ids[0] (unset)": file + ":26,1-15",
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("ranges (-want +got):\n%s", diff)
	}
}

func TestExampleSpec(t *testing.T) {
	m := loadClean(t, "../../specs/mesh.hcl")
	var got []string
	for _, c := range m.Clusters {
		got = append(got, strings.Join([]string{c.Name, c.Region, c.EKSCluster, c.KubeContext, c.Namespace}, " "))
	}
	want := []string{
		"tidb-1 us-west-1 tidb-1 pingcap@tidb-1.us-west-1.eksctl.io pingcap-1",
		"tidb-2 us-west-2 tidb-2 pingcap@tidb-2.us-west-2.eksctl.io pingcap-2",
		"tidb-3 us-east-1 tidb-3 pingcap@tidb-3.us-east-1.eksctl.io pingcap-3",
	}
	if m.Name != "tidb" || m.ForwardBy != ForwardByNamespace {
		t.Errorf("mesh %q forward_by %q, want tidb namespace", m.Name, m.ForwardBy)
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("clusters (-want +got):\n%s", diff)
	}
}

// TestReplicateTargets checks where the copies of the valid example's replicate blocks go: every member
// but the source when to is left out, in the block's namespace if set, and no namespace for a cluster-scoped
// kind; and the ranges a plan-time diagnostic points at.
func TestReplicateTargets(t *testing.T) {
	file := filepath.Join(validDir, "replicate.hcl")
	m, diags := Load(file)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	type where struct {
		Targets         []string
		Namespace       string
		Header          string
		NamespaceAt     string
		FromNamespaceAt string
	}
	got := map[string]where{}
	for _, r := range m.Replicates {
		got[r.Name] = where{Targets: r.Targets(m), Namespace: r.TargetNamespace(), Header: r.DeclRange.String(),
			NamespaceAt: r.AttrRange("namespace").String(), FromNamespaceAt: r.AttrRange("from.namespace").String()}
	}
	want := map[string]where{
		"tidb-ca": {Targets: []string{"tidb-2", "tidb-3"}, Namespace: "pingcap", Header: file + ":25,1-20",
			NamespaceAt: file + ":32,15-24", FromNamespaceAt: file + ":29,17-28"},
		"kubeblocks-pod-role": {Targets: []string{"tidb-3"}, Header: file + ":35,1-32",
			NamespaceAt: file + ":35,1-32", FromNamespaceAt: file + ":36,3-7"},
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("replicate targets (-want +got):\n%s", diff)
	}
}

func TestExampleSpecs(t *testing.T) {
	for _, path := range []string{"../../specs/tidb-tls.hcl", "../../specs/sandbox"} {
		m, diags := Load(path)
		if len(diags) > 0 {
			var out bytes.Buffer
			_ = PrintDiagnostics(&out, m.Files, diags, false)
			t.Fatalf("%s: unexpected diagnostics:\n%s", path, out.String())
		}
		r := m.Replicate("tidb-ca")
		if r == nil {
			t.Fatalf("%s: no replicate \"tidb-ca\"", path)
		}
		got := []string{r.FromCluster, r.FromKind, r.FromNamespace, r.FromName, r.TargetNamespace(), strings.Join(r.Targets(m), ",")}
		want := []string{"tidb-1", "Secret", "pingcap", "cluster1-ca-secret", "pingcap", "tidb-2,tidb-3"}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("%s: replicate tidb-ca (-want +got):\n%s", path, diff)
		}
	}
}

// TestClusterDomainsExample: specs/tidb-cluster-domains.hcl is valid and is TiDB's layout, one namespace
// and a domain of its own per cluster.
func TestClusterDomainsExample(t *testing.T) {
	m := loadClean(t, "../../specs/tidb-cluster-domains.hcl")
	var got []string
	for _, c := range m.Clusters {
		got = append(got, c.Name+" "+c.Namespace+" "+c.ClusterDomain)
	}
	want := []string{"cluster1 pingcap cluster1.com", "cluster2 pingcap cluster2.com", "cluster3 pingcap cluster3.com"}
	if diff := gocmp.Diff(want, got); diff != "" || m.ForwardBy != ForwardByClusterDomain {
		t.Errorf("forward_by %q; clusters (-want +got):\n%s", m.ForwardBy, diff)
	}
}

// loadClean loads the spec at path and fails the test on any diagnostic, warnings included.
func loadClean(t *testing.T, path string) *Mesh {
	t.Helper()
	m, diags := Load(path)
	if len(diags) > 0 {
		var out bytes.Buffer
		_ = PrintDiagnostics(&out, m.Files, diags, false)
		t.Fatalf("%s: unexpected diagnostics:\n%s", path, out.String())
	}
	return m
}

// TestKubeBlocksSpec: the KubeBlocks example loads, with its control plane and the role it replicates.
func TestKubeBlocksSpec(t *testing.T) {
	m, diags := Load("../../specs/kubeblocks.hcl")
	if len(diags) > 0 {
		var out bytes.Buffer
		_ = PrintDiagnostics(&out, m.Files, diags, false)
		t.Fatalf("unexpected diagnostics:\n%s", out.String())
	}
	cp := m.ControlPlane("kubeblocks")
	if cp == nil || m.Replicate("kubeblocks-pod-role") == nil {
		t.Fatal("no control_plane \"kubeblocks\" or replicate \"kubeblocks-pod-role\"")
	}
	got := []string{cp.Cluster, strings.Join(cp.Targets(m), ","), cp.SecretNamespace + "/" + cp.SecretName, cp.TokenFile("k8s-1")}
	want := []string{"k8s-0", "k8s-1,k8s-2,k8s-3", "kb-system/kubeblocks-data-planes", DefaultTokenFileDir + "/k8s-1.token"}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("control plane (-want +got):\n%s", diff)
	}
}

func TestLoadDirectoryIgnoresEditorFiles(t *testing.T) {
	dir := t.TempDir()
	valid, err := os.ReadFile(filepath.Join(validDir, "eks.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"mesh.hcl": string(valid),
		// Each of these would fail to parse (or duplicate the mesh block) if it were read.
		".#mesh.hcl":    "alice@host.1234:1700000000",
		"mesh.hcl~":     "mesh \"old\" {",
		".mesh.hcl.swp": "b0VIM 9.0\x00\x00",
		".hidden.hcl":   string(valid),
		"#mesh.hcl#":    "mesh {",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, diags := Load(dir)
	if len(diags) != 0 {
		t.Fatalf("Load read an editor's or hidden file: %v", diags)
	}
	var read []string
	for name := range m.Files {
		read = append(read, filepath.Base(name))
	}
	if !slices.Equal(read, []string{"mesh.hcl"}) || len(m.Clusters) != 2 {
		t.Errorf("files read %q, %d clusters; want only mesh.hcl and its 2 clusters", read, len(m.Clusters))
	}
	for name, want := range map[string]bool{"mesh.hcl": true, "10-net.hcl": true, ".#mesh.hcl": false,
		"mesh.hcl~": false, ".mesh.hcl.swp": false, ".hidden.hcl": false, "mesh.hcl.bak": false} {
		if got := IsSpecFileName(name); got != want {
			t.Errorf("IsSpecFileName(%q) = %v, want %v", name, got, want)
		}
	}
}

package sandbox

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func layoutCluster(layout string) Cluster {
	return Cluster{ClusterNet: ClusterNet{Name: "tidb-1"}, Context: "ctx-1", Namespace: "pingcap-1", DNS: []string{"127.0.0.11", "127.0.1.11"},
		Layout: layout, NodeLocal: []string{"127.0.0.21"}}
}

// TestRenderCorefileK3sLayout: k3s's Corefile keeps its imports, in place, pointing at the directories the
// kubelet stand-in writes; hosts reads the NodeHosts it writes.
func TestRenderCorefileK3sLayout(t *testing.T) {
	c := layoutCluster(LayoutK3s)
	c.Domain = "cluster1.com"
	sy := c.coreDNSSyncer("/s/tidb-1", "/s/kubeconfig", nil)
	out, err := RenderCorefile(c.Corefile(), sy.Options)
	if err != nil {
		t.Fatal(err)
	}
	want := `.:53 {
    bind 127.0.0.11 127.0.1.11
    errors
    health 127.0.0.11:8080
    ready 127.0.0.11:8181
    kubernetes cluster1.com in-addr.arpa ip6.arpa {
        kubeconfig /s/kubeconfig ctx-1
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    hosts /s/tidb-1/NodeHosts {
        ttl 60
        reload 15s
        fallthrough
    }
    prometheus 127.0.0.11:9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload 2s
    loadbalance
    import /s/tidb-1/custom/*.override
}

import /s/tidb-1/custom/*.server
`
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
}

func TestRenderCorefileImports(t *testing.T) {
	o := RenderOptions{Bind: []string{"127.0.0.11"}, Mounts: map[string]string{"/etc/coredns/": "/a/", "/etc/coredns/custom/": "/b/"}}
	for name, tc := range map[string]struct{ in, want string }{
		"top-level imports before, between and after blocks": {
			"import /etc/coredns/custom/first.server\na.:53 {\n log\n}\nimport /etc/coredns/x/*.server\nb.:53 {\n log\n}\nimport /etc/coredns/custom/*.server\n",
			"a.:53 {\n    bind 127.0.0.11\n    log\n}\n\nb.:53 {\n    bind 127.0.0.11\n    log\n}\n\nimport /b/first.server\n\nimport /a/x/*.server\n\nimport /b/*.server\n"},
		"imports inside a block stay where they are": {
			". {\n import /etc/coredns/custom/*.override\n errors\n import /other/*.override\n}\n",
			". {\n    bind 127.0.0.11\n    import /b/*.override\n    errors\n    import /other/*.override\n}\n"},
		"a snippet is expanded": {
			"(common) {\n errors\n}\n. {\n import common\n}\n",
			". {\n    bind 127.0.0.11\n    errors\n}\n"},
		"the word import elsewhere is left": {
			". {\n template IN A x {\n  answer \"import 60 IN A 1.2.3.4\"\n }\n}\n",
			". {\n    bind 127.0.0.11\n    template IN A x {\n        answer \"import 60 IN A 1.2.3.4\"\n    }\n}\n"},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := RenderCorefile(tc.in, o)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, out); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
	if _, err := RenderCorefile(". {\n import\n}\n", o); err == nil {
		t.Error("an import without an argument rendered")
	}
}

// TestNodeLocalCorefileRenders: node-cache's pillars are filled and every block, one added as meshd adds it
// (its bind copied from the cluster-domain block) included, listens on the NodeLocal addresses only.
func TestNodeLocalCorefileRenders(t *testing.T) {
	c := layoutCluster(LayoutEKS)
	src := c.NodeLocalCorefile()
	for _, s := range []string{"cluster.local:53 {", "bind 169.254.20.10 172.20.0.10", "forward . " + PillarClusterDNS + " {",
		"forward . " + PillarUpstreamServers, "health 169.254.20.10:8080"} {
		if !strings.Contains(src, s) {
			t.Errorf("the ConfigMap's Corefile lacks %q:\n%s", s, src)
		}
	}
	src += "# meshd:tidb mesh\ncluster2.com:53 {\n    errors\n    cache 30\n    bind 169.254.20.10 172.20.0.10\n    forward . __PILLAR__CLUSTER__DNS__ {\n        force_tcp\n    }\n}\n"
	cs := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapNodeLocalDNS, Namespace: "kube-system"},
		Data: map[string]string{"Corefile": src}})
	sy := c.nodeLocalSyncer(t.TempDir(), nil)
	sy.Client = cs
	if err := sy.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(sy.Path)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if strings.Contains(out, "__PILLAR__") || strings.Contains(out, "169.254.20.10") {
		t.Errorf("pillars or node addresses left:\n%s", out)
	}
	if got := strings.Count(out, "bind 127.0.0.21\n"); got != 5 || strings.Count(out, "bind") != 5 {
		t.Errorf("%d blocks bind 127.0.0.21 (of %d bind lines), want all 5:\n%s", got, strings.Count(out, "bind"), out)
	}
	if !strings.Contains(out, "cluster2.com:53 {\n    bind 127.0.0.21\n    errors\n    cache 30\n    forward . 127.0.0.11 {\n        force_tcp\n    }\n}") ||
		!strings.Contains(out, "forward . /etc/resolv.conf") {
		t.Errorf("meshd's block or the upstream forward is not as node-cache would run it:\n%s", out)
	}
}

// TestLayoutK3sSyncerWritesCustomDir: coredns-custom's keys become files in CustomDir (.server ones rendered
// to listen on the cluster's addresses), NodeHosts lands beside the Corefile, a deleted ConfigMap empties the
// directory, and none of it rewrites the Corefile, which only imports the files.
func TestLayoutK3sSyncerWritesCustomDir(t *testing.T) {
	c := layoutCluster(LayoutK3s)
	data, _, extra := c.coreDNSObjects()
	custom := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapCoreDNSCustom, Namespace: "kube-system"}, Data: extra[ConfigMapCoreDNSCustom]}
	custom.Data["meshd.server"] = "pingcap-2.svc.cluster.local:53 {\n    forward . 127.0.0.12\n}\n"
	custom.Data["broken.server"] = "x {\n"
	cs := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapCoreDNS, Namespace: "kube-system"}, Data: data}, custom)
	dir := t.TempDir()
	sy := c.coreDNSSyncer(dir, "/k", t.Logf)
	sy.Client = cs
	ctx := context.Background()
	if err := sy.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	files := func() map[string]string {
		out := map[string]string{}
		entries, _ := os.ReadDir(sy.CustomDir())
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(sy.CustomDir(), e.Name()))
			out[e.Name()] = string(b)
		}
		return out
	}
	want := map[string]string{
		K3sUserKey:      K3sUserOverride,
		"meshd.server":  "pingcap-2.svc.cluster.local:53 {\n    bind 127.0.0.11 127.0.1.11\n    forward . 127.0.0.12\n}\n",
		"broken.server": "x {\n",
	}
	if diff := cmp.Diff(want, files()); diff != "" {
		t.Errorf("custom directory, -want +got:\n%s", diff)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "NodeHosts")); err != nil || string(b) != "127.0.0.11 tidb-1-node-1\n127.0.1.11 tidb-1-node-2\n" {
		t.Errorf("NodeHosts: %q, %v", b, err)
	}
	corefile, _ := os.ReadFile(sy.Path)
	if !strings.Contains(string(corefile), "import "+sy.CustomDir()+"/*.server") {
		t.Errorf("the Corefile does not import the custom directory:\n%s", corefile)
	}
	writes := sy.Writes()

	if err := cs.CoreV1().ConfigMaps("kube-system").Delete(ctx, ConfigMapCoreDNSCustom, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := sy.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := files(); len(got) != 0 {
		t.Errorf("after coredns-custom was deleted the directory holds %v", slices.Sorted(maps.Keys(got)))
	}
	if sy.Writes() != writes {
		t.Errorf("the Corefile was rewritten %d times for a change of coredns-custom alone", sy.Writes()-writes)
	}
}

// TestLayoutRKE2Names: an RKE2 cluster's Corefile is in rke2-coredns-rke2-coredns, and its syncer follows it.
func TestLayoutRKE2Names(t *testing.T) {
	c := layoutCluster(LayoutRKE2)
	c.NodeLocal = nil
	cs := fake.NewClientset()
	if err := Seed(context.Background(), cs, c); err != nil {
		t.Fatal(err)
	}
	cms, err := cs.CoreV1().ConfigMaps("kube-system").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, cm := range cms.Items {
		names = append(names, cm.Name)
	}
	if !slices.Equal(names, []string{ConfigMapRKE2CoreDNS}) {
		t.Errorf("kube-system ConfigMaps %v, want only %s", names, ConfigMapRKE2CoreDNS)
	}
	sy := c.coreDNSSyncer(t.TempDir(), "/k", nil)
	sy.Client = cs
	if err := sy.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(sy.Path); !strings.Contains(string(b), "kubernetes cluster.local in-addr.arpa ip6.arpa") {
		t.Errorf("rendered:\n%s", b)
	}
}

func TestSandboxRunningConfiguration(t *testing.T) {
	const start = "CoreDNS-1.11.3\n[INFO] plugin/reload: Running configuration SHA512 = aa\n"
	for name, tc := range map[string]struct {
		log     string
		hash    string
		settled bool
	}{
		"not started":        {"", "", false},
		"started":            {start, "aa", true},
		"reload under way":   {start + "[INFO] Reloading\n", "aa", false},
		"new instance up":    {start + "[INFO] Reloading\n[INFO] plugin/reload: Running configuration SHA512 = bb\n", "bb", false},
		"reload complete":    {start + "[INFO] Reloading\n[INFO] plugin/reload: Running configuration SHA512 = bb\n[INFO] Reloading complete\n", "bb", true},
		"reload failed":      {start + "[INFO] Reloading\n[ERROR] Restart failed: x\n[ERROR] plugin/reload: Corefile changed but reload failed: x\n", "aa", true},
		"glob warnings only": {start + "[WARNING] No files matching import glob pattern: /x/*.server\n", "aa", true},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			if err := os.WriteFile(path, []byte(tc.log), 0o644); err != nil {
				t.Fatal(err)
			}
			if hash, settled := runningConfiguration(path); hash != tc.hash || settled != tc.settled {
				t.Errorf("got %q, %v; want %q, %v", hash, settled, tc.hash, tc.settled)
			}
		})
	}
}

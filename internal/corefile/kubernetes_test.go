package corefile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKubernetesZones(t *testing.T) {
	cases := map[string]struct {
		reason string
		src    string
		want   []string
		used   bool
	}{
		"EKS": {reason: "EKS's default serves cluster.local and the reverse zones", src: EKSDefault,
			want: []string{"cluster.local", "in-addr.arpa", "ip6.arpa"}, used: true},
		"OwnDomain": {reason: "a self-managed cluster built with --cluster-domain cluster1.com",
			src:  ".:53 {\n    kubernetes Cluster1.com. in-addr.arpa {\n        pods insecure\n    }\n    forward . /etc/resolv.conf\n}\n",
			want: []string{"cluster1.com", "in-addr.arpa"}, used: true},
		"BlockKeys": {reason: "without zone arguments the plugin serves its block's zones",
			src:  "cluster2.com:53 east.local {\n    kubernetes {\n        pods insecure\n    }\n}\n.:53 {\n    forward . 8.8.8.8\n}\n",
			want: []string{"cluster2.com", "east.local"}, used: true},
		"TwoBlocks": {reason: "every block's plugin counts; a nested line named kubernetes is not a use",
			src:  "a.local {\n    kubernetes a.local {\n        kubeconfig kubernetes ctx\n    }\n}\nb.local {\n    kubernetes\n}\n",
			want: []string{"a.local", "b.local"}, used: true},
		"None": {reason: "a Corefile without the plugin serves no cluster domain",
			src: ".:53 {\n    forward . 8.8.8.8\n}\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, used, err := KubernetesZones(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" || used != tc.used {
				t.Errorf("%s\nzones -want +got:\n%s\nused %v, want %v", tc.reason, diff, used, tc.used)
			}
		})
	}
	if _, _, err := KubernetesZones(".:53 {\n"); err == nil {
		t.Error("a Corefile that does not parse: no error")
	}
}

// TestKubernetesZonesNeverExpandTheEnvironment: a zone written as {$VAR} is CoreDNS's business; its value
// (meshd's environment) must not come back, since the zones end up in diagnostics.
func TestKubernetesZonesNeverExpandTheEnvironment(t *testing.T) {
	t.Setenv("MESHD_TEST_SECRET", "s3cr3t-value")
	got, _, err := KubernetesZones(".:53 {\n    kubernetes {$MESHD_TEST_SECRET} cluster.local\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"cluster.local"}, got); diff != "" || strings.Contains(strings.Join(got, " "), "s3cr3t") {
		t.Errorf("zones -want +got:\n%s", diff)
	}
}

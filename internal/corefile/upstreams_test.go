package corefile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestForwardUpstreamsNeverExpandsTheEnvironment: CoreDNS's parser replaces {$VAR} with meshd's own
// environment; a Corefile someone edited must not be able to pull a credential into a plan.
func TestForwardUpstreamsNeverExpandsTheEnvironment(t *testing.T) {
	t.Setenv("MESHD_TEST_SECRET", "s3cr3t-value")
	src := "# meshd.io/mesh=tidb: managed by meshd, edits here are overwritten\n" +
		"pingcap-2.svc.cluster.local:53 {\n    forward . 10.2.0.10 {$MESHD_TEST_SECRET} tls://10.2.0.11:853\n}\n"
	blocks, err := Blocks(src)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range blocks {
		got = append(got, ForwardUpstreams(src, b)...)
	}
	if diff := cmp.Diff([]string{"10.2.0.10", "tls://10.2.0.11:853"}, got); diff != "" {
		t.Errorf("upstreams -want +got:\n%s", diff)
	}
	if strings.Contains(strings.Join(got, " "), "s3cr3t") {
		t.Error("an environment variable's value reached the upstreams")
	}
}

package planfile

import (
	"fmt"
	"strings"
	"testing"

	"github.com/meshd-io/meshd/internal/plan"
)

// TestDecodeRefusesBrokenGraphs: an edited plan file with two changes at one address, or a dependency
// cycle, is refused when read (apply would panic on the one and wait forever on the other).
func TestDecodeRefusesBrokenGraphs(t *testing.T) {
	for name, tc := range map[string]struct {
		reason  string
		changes string
		want    string
	}{
		"duplicate address": {"Apply keys its bookkeeping by address.",
			`{"action":"+","address":"route[a]","kind":"route"},{"action":"+","address":"route[a]","kind":"route"}`, "two changes at route[a]"},
		"cycle": {"Each change would wait for the other.",
			`{"action":"+","address":"route[a]","kind":"route","depends_on":["route[b]"]},{"action":"+","address":"route[b]","kind":"route","depends_on":["route[a]"]}`,
			"depends on itself"},
		"self": {"A change that waits for itself never starts.",
			`{"action":"+","address":"route[a]","kind":"route","depends_on":["route[a]"]}`, "depends on itself"},
	} {
		t.Run(name, func(t *testing.T) {
			doc := fmt.Sprintf(`{"format_version":%d,"mesh":"m","changes":[%s]}`, plan.FormatVersion, tc.changes)
			_, err := Decode(strings.NewReader(doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s\nDecode: %v, want an error containing %q", tc.reason, err, tc.want)
			}
		})
	}
}

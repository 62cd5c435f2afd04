package corefile

import (
	"fmt"
	"slices"
	"strings"
)

// Adoptable reports whether meshd may take over the block that serves zone in src, with adopt = true: the
// block a runbook (or a person) wrote by hand for a member's zone, forwarding it to that member's load
// balancer. It is, when
//   - it is the only block that serves zone (a second one would make the adopted block a duplicate that
//     Merge cuts),
//   - it has a single key and braces that are all in the text, and no marker of another mesh, and
//   - its `forward .` goes to exactly upstreams, in any order (an address may carry dns:// or port 53).
//
// why says what keeps it from being adopted, for the conflict meshd reports instead. A block that is meshd's
// already (marker, or a zone in owned) is adoptable too: an adoption that was written but not yet
// recorded is not refused the second time.
func Adoptable(src, mesh string, owned []string, zone string, upstreams []string) (ok bool, why string) {
	blocks, err := Blocks(src)
	if err != nil {
		return false, err.Error()
	}
	zone = NormalizeZone(zone)
	var serving []ServerBlock
	for _, b := range blocks {
		if slices.Contains(b.Zones, zone) {
			serving = append(serving, b)
		}
	}
	switch {
	case len(serving) == 0:
		return false, "no block serves " + zone
	case len(serving) > 1:
		lines := make([]string, len(serving))
		for i, b := range serving {
			lines[i] = fmt.Sprint(b.Line)
		}
		return false, fmt.Sprintf("%d blocks serve %s (lines %s)", len(serving), zone, strings.Join(lines, ", "))
	}
	b := serving[0]
	if b.OwnedBy(mesh, owned) {
		return true, ""
	}
	switch {
	case len(b.Keys) != 1:
		return false, fmt.Sprintf("the block at line %d serves several zones (%s)", b.Line, strings.Join(b.Keys, " "))
	case !b.Editable:
		return false, fmt.Sprintf("the block at line %d does not have its key and braces in the text (no braces, or from a snippet)", b.Line)
	case b.MarkerMesh != "":
		return false, fmt.Sprintf("the block at line %d is marked as mesh %q's", b.Line, b.MarkerMesh)
	}
	got := ForwardUpstreams(src, b)
	if len(got) == 0 {
		return false, fmt.Sprintf("the block at line %d does not forward . to IP addresses", b.Line)
	}
	if !slices.Equal(normalizeUpstreams(got), normalizeUpstreams(upstreams)) {
		return false, fmt.Sprintf("the block at line %d forwards to %s, not to %s", b.Line, strings.Join(got, " "), strings.Join(upstreams, " "))
	}
	return true, ""
}

// normalizeUpstreams sorts upstreams as sets of plain DNS addresses: "dns://10.0.0.1:53" is 10.0.0.1.
func normalizeUpstreams(ups []string) []string {
	out := make([]string, 0, len(ups))
	for _, u := range ups {
		out = append(out, CanonicalUpstream(u))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

package corefile

import (
	"strings"
	"testing"
)

func TestAdoptable(t *testing.T) {
	const zone = "ns-b.svc.cluster.local"
	ups := []string{"10.2.0.10", "10.2.1.10"}
	runbook := func(key, forward string) string {
		return key + " {\n    errors\n    cache 30\n    forward . " + forward + " {\n        force_tcp\n    }\n}\n"
	}
	cases := map[string]struct {
		reason string
		src    string
		owned  []string
		ok     bool
		why    string // a part of why, when not ok
	}{
		"runbook block": {
			reason: "The runbook's block, forwarding to the member's NLB addresses in another order, is adoptable.",
			src:    EKSDefault + "\n" + runbook(zone+":53", "10.2.1.10 10.2.0.10"), ok: true,
		},
		"schemes and ports": {
			reason: "dns:// and port 53 name the same upstreams.",
			src:    EKSDefault + "\n" + runbook("dns://"+zone+".:53", "dns://10.2.0.10:53 10.2.1.10"), ok: true,
		},
		"already meshd's": {
			reason: "A block meshd already owns (an adoption written, not yet recorded) is not refused.",
			src:    EKSDefault + "\n" + Marker("tidb") + "\n" + runbook(zone+":53", "10.9.9.9"), ok: true,
		},
		"forwards elsewhere": {
			reason: "A block for the zone that forwards to other addresses stays the user's.",
			src:    EKSDefault + "\n" + runbook(zone+":53", "10.9.9.9"), why: "forwards to 10.9.9.9, not to 10.2.0.10 10.2.1.10",
		},
		"a subset": {
			reason: "Forwarding to only one of the NLB's addresses is not the same block.",
			src:    EKSDefault + "\n" + runbook(zone+":53", "10.2.0.10"), why: "forwards to 10.2.0.10, not to",
		},
		"two blocks": {
			reason: "Two blocks serving the zone: adopting one would make Merge cut the other as a duplicate.",
			src:    EKSDefault + "\n" + runbook(zone+":53", "10.2.0.10 10.2.1.10") + "\n" + runbook(zone+":53", "10.2.0.10 10.2.1.10"),
			why:    "2 blocks serve ns-b.svc.cluster.local",
		},
		"several keys": {
			reason: "A block that serves other zones too is not meshd's kind of block.",
			src:    EKSDefault + "\n" + runbook(zone+":53 other.local:53", "10.2.0.10 10.2.1.10"), why: "serves several zones",
		},
		"another mesh's marker": {
			reason: "A block marked for another mesh is that mesh's.",
			src:    EKSDefault + "\n" + Marker("other") + "\n" + runbook(zone+":53", "10.2.0.10 10.2.1.10"), why: `marked as mesh "other"'s`,
		},
		"no forward": {
			reason: "A block that does not forward . to addresses forwards to no NLB.",
			src:    EKSDefault + "\n" + zone + ":53 {\n    errors\n}\n", why: "does not forward . to IP addresses",
		},
		"no block": {
			reason: "Nothing to adopt.",
			src:    EKSDefault, why: "no block serves",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ok, why := Adoptable(tc.src, "tidb", tc.owned, zone, ups)
			if ok != tc.ok || (!tc.ok && !strings.Contains(why, tc.why)) {
				t.Errorf("%s\nAdoptable = %v, %q; want %v, containing %q", tc.reason, ok, why, tc.ok, tc.why)
			}
		})
	}
}

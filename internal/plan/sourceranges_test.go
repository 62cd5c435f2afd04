package plan_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/planview"
	"github.com/meshd-io/meshd/internal/spec"
)

func TestDNSSourceRanges(t *testing.T) {
	aws := func(name string, cidrs ...string) model.Member { return model.Member{Name: name, CIDRs: cidrs} }
	external := func(name string, nodes ...string) model.Member {
		m := model.Member{Name: name, External: true}
		if nodes != nil {
			m.DNS = &model.DNSExposure{ServiceType: spec.ServiceTypeNodePort, NodeAddresses: nodes}
		}
		return m
	}
	cases := map[string]struct {
		reason  string
		self    model.Member
		members []model.Member
		want    []string
	}{
		"others' blocks, by address": {
			reason:  "The other members' VPC blocks, sorted by address (not as text), primary and secondary alike; not the member's own.",
			self:    aws("a", "10.1.0.0/16"),
			members: []model.Member{aws("a", "10.1.0.0/16"), aws("b", "10.100.0.0/16", "10.20.0.0/16"), aws("c", "10.3.0.0/16")},
			want:    []string{"10.3.0.0/16", "10.20.0.0/16", "10.100.0.0/16"},
		},
		"repeats dropped, shorter prefix first": {
			reason:  "A block two members list (overlap is the spec's error, not this function's) appears once.",
			self:    aws("a", "10.1.0.0/16"),
			members: []model.Member{aws("a"), aws("b", "10.2.0.0/16"), aws("c", "10.2.0.0/16", "10.2.0.0/20")},
			want:    []string{"10.2.0.0/16", "10.2.0.0/20"},
		},
		"external members' nodes": {
			reason: "An external member's queries come from its node addresses: one /32 each; one without node_addresses adds nothing.",
			self:   aws("a", "10.1.0.0/16"),
			members: []model.Member{aws("a", "10.1.0.0/16"), external("e", "192.168.7.2", "192.168.7.1", "node-3.example"),
				external("m")},
			want: []string{"192.168.7.1/32", "192.168.7.2/32"},
		},
		"alone": {
			reason:  "With no other member there is nothing to admit: the controller's default applies.",
			self:    aws("a", "10.1.0.0/16"),
			members: []model.Member{aws("a", "10.1.0.0/16")},
		},
		"external member's own Service": {
			reason:  "meshd sets no ranges on an external member's Service (kube-proxy would enforce them on a MetalLB address).",
			self:    external("e", "192.168.7.1"),
			members: []model.Member{aws("a", "10.1.0.0/16"), external("e", "192.168.7.1")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, plan.DNSSourceRanges(tc.self, tc.members)); diff != "" {
				t.Errorf("%s\n(-want, +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// rendered is the human plan's block of one change.
func rendered(t *testing.T, p *plan.Plan, address string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := planview.RenderHuman(&buf, p); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	i := strings.Index(text, "  # "+address+" ")
	if i < 0 {
		t.Fatalf("no change %s in the plan:\n%s", address, text)
	}
	block := text[i:]
	if j := strings.Index(block, "    }\n"); j >= 0 {
		block = block[:j]
	}
	return block
}

// TestSourceRangesFollowTheMembers: the DNS Services' source ranges are set on create, follow a member that
// joins or leaves (an update showing the ranges), and a clean mesh shows no difference.
func TestSourceRangesFollowTheMembers(t *testing.T) {
	w := newDNSWorld()
	all := w.members
	w.members = slices.DeleteFunc(slices.Clone(all), func(m model.Member) bool { return m.Name == "c" })

	p := w.plan(false)
	if got := p.Find("dns_service[a]").After.(plan.DNSService).Spec.SourceRanges; !slices.Equal(got, []string{"10.2.0.0/16"}) {
		t.Errorf("created dns_service[a] has source ranges %v, want b's block [10.2.0.0/16]", got)
	}
	if block := rendered(t, p, "dns_service[a]"); !strings.Contains(block, `+ source_ranges = "10.2.0.0/16"`) {
		t.Errorf("the create does not show the ranges:\n%s", block)
	}
	w.converge(t)

	// c joins: a's and b's Services admit its blocks too.
	w.members = all
	p = w.plan(false)
	want := []string{
		"~ dns_service[a]: the Service's source ranges differ from meshd's",
		"~ dns_service[b]: the Service's source ranges differ from meshd's",
		"+ dns_service[c]: DNS Service missing",
	}
	if diff := cmp.Diff(want, dnsLines(p)[:3]); diff != "" {
		t.Errorf("c joins: (-want, +got):\n%s", diff)
	}
	if block := rendered(t, p, "dns_service[a]"); !strings.Contains(block,
		`~ source_ranges = "10.2.0.0/16" -> "10.2.0.0/16, 10.3.0.0/16, 10.30.0.0/16"`) {
		t.Errorf("the update does not show the ranges:\n%s", block)
	}
	if got := p.Find("dns_service[c]").After.(plan.DNSService).Spec.SourceRanges; !slices.Equal(got, []string{"10.1.0.0/16", "10.2.0.0/16"}) {
		t.Errorf("created dns_service[c] has source ranges %v", got)
	}
	w.converge(t)

	// Ranges a user changed on meshd's Service are put back.
	o := w.obs["b"]
	o.Service.Spec.SourceRanges = []string{"0.0.0.0/0"}
	w.obs["b"] = o
	p = w.plan(false)
	if diff := cmp.Diff([]string{"~ dns_service[b]: the Service's source ranges differ from meshd's"}, dnsLines(p)); diff != "" {
		t.Errorf("ranges changed by hand: (-want, +got):\n%s", diff)
	}
	if block := rendered(t, p, "dns_service[b]"); !strings.Contains(block,
		`~ source_ranges = "0.0.0.0/0" -> "10.1.0.0/16, 10.3.0.0/16, 10.30.0.0/16"`) {
		t.Errorf("the update does not show the ranges:\n%s", block)
	}
	w.converge(t)

	// a leaves: b's and c's Services stop admitting its block.
	w.st.Members = map[string]model.Member{}
	for _, m := range all {
		w.st.Members[m.Name] = m
	}
	w.members = slices.DeleteFunc(slices.Clone(all), func(m model.Member) bool { return m.Name == "a" })
	p = w.plan(false)
	if block := rendered(t, p, "dns_service[c]"); !strings.Contains(block, `~ source_ranges = "10.1.0.0/16, 10.2.0.0/16" -> "10.2.0.0/16"`) {
		t.Errorf("a leaves: the update does not show the ranges:\n%s", block)
	}
	if res := w.apply(p); res.Err() != nil {
		t.Fatalf("apply: %v", res.Err())
	}
	if p := w.plan(false); p.HasChanges() {
		t.Errorf("the plan after a left is not empty:\n%s", strings.Join(dnsLines(p), "\n"))
	}
}

package access

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMerge: verbs of one object are united; names with the same verbs share a rule; a named verb an
// unnamed rule of the same resource already grants is dropped; scopes and resources never mix.
func TestMerge(t *testing.T) {
	in := []Rule{
		{Namespace: "kube-system", Resource: "configmaps", Names: []string{"coredns"}, Verbs: []string{"get", "update"}, Why: "A."},
		{Namespace: "kube-system", Resource: "configmaps", Names: []string{"coredns"}, Verbs: []string{"list", "watch"}, Why: "B."},
		{Namespace: "kube-system", Resource: "configmaps", Verbs: []string{"create"}, Why: "C."},
		{Namespace: "kube-system", Resource: "configmaps", Names: []string{"backup"}, Verbs: []string{"create", "get"}, Why: "D."},
		{Namespace: "pingcap", Resource: "secrets", Names: []string{"b"}, Verbs: []string{"get"}, Why: "E."},
		{Namespace: "pingcap", Resource: "secrets", Names: []string{"a"}, Verbs: []string{"get"}, Why: "E."},
		{Resource: "namespaces", Names: []string{"pingcap"}, Verbs: []string{"get"}},
	}
	want := []Rule{
		{Resource: "namespaces", Names: []string{"pingcap"}, Verbs: []string{"get"}},
		{Namespace: "kube-system", Resource: "configmaps", Verbs: []string{"create"}, Why: "C."},
		{Namespace: "kube-system", Resource: "configmaps", Names: []string{"backup"}, Verbs: []string{"get"}, Why: "D."},
		{Namespace: "kube-system", Resource: "configmaps", Names: []string{"coredns"}, Verbs: []string{"get", "list", "update", "watch"}, Why: "A. B."},
		{Namespace: "pingcap", Resource: "secrets", Names: []string{"a", "b"}, Verbs: []string{"get"}, Why: "E."},
	}
	if diff := cmp.Diff(want, Merge(in)); diff != "" {
		t.Errorf("Merge (-want +got):\n%s", diff)
	}
}

func TestParseSubject(t *testing.T) {
	for in, want := range map[string]Subject{
		"User:alice":            {Kind: "User", Name: "alice"},
		"Group:system:meshd":    {Kind: "Group", Name: "system:meshd"},
		"ServiceAccount:ops/sa": {Kind: "ServiceAccount", Namespace: "ops", Name: "sa"},
	} {
		got, err := ParseSubject(in)
		if err != nil || got != want {
			t.Errorf("ParseSubject(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), in)
		}
	}
	for _, bad := range []string{"", "alice", "Bot:x", "User:", "ServiceAccount:sa", "ServiceAccount:/sa"} {
		if _, err := ParseSubject(bad); err == nil {
			t.Errorf("ParseSubject(%q) accepted", bad)
		}
	}
}

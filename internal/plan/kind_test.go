package plan

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestEveryKindIsComplete fails when a registered kind lacks a part that something else derives from the
// registry: the saved-plan decoder, the plan order, the provider whose executor runs it, the Event target
// of a Kubernetes kind, and the repeated-drift hint.
func TestEveryKindIsComplete(t *testing.T) {
	kinds := Kinds()
	if len(kinds) == 0 {
		t.Fatal("no kinds registered")
	}
	for _, k := range kinds {
		t.Run(string(k.Kind), func(t *testing.T) {
			if !strings.HasPrefix(k.Address, string(k.Kind)+"[") {
				t.Errorf("Address %q does not document the address format (it starts with %q)", k.Address, string(k.Kind)+"[")
			}
			if k.Decode == nil {
				t.Fatal("no Decode: saved plans with this kind cannot be read")
			}
			r, err := k.Decode(json.RawMessage(`{}`))
			if err != nil {
				t.Fatalf("Decode({}): %v", err)
			}
			if r.Kind() != k.Kind {
				t.Errorf("Decode gives a resource of kind %q, want %q", r.Kind(), k.Kind)
			}
			if len(r.Attrs()) == 0 {
				t.Error("the resource shows no attributes in the plan")
			}
			switch k.Provider {
			case ProviderAWS:
				if k.Touches != nil || k.Watches != nil {
					t.Error("an AWS kind names a Kubernetes object to touch or watch")
				}
			case ProviderKube:
				if k.Touches == nil {
					t.Error("no Touches: corrections of this Kubernetes kind get no Event")
				} else {
					k.Touches(r) // must not panic on a resource decoded from a plan
				}
			default:
				t.Errorf("Provider %q is neither %q nor %q: no executor runs its changes", k.Provider, ProviderAWS, ProviderKube)
			}
			if k.RepeatHint == "" {
				t.Error("no RepeatHint: repeated drift of this kind says nowhere to look")
			}
			if k.Provider == ProviderKube && k.Watches == nil {
				t.Error("no Watches: drift of this Kubernetes kind waits for the interval")
			}
		})
	}
}

// TestRegisterRefusesDuplicates: two kinds with one name or one rank would make decoding or ordering
// depend on map order.
func TestRegisterRefusesDuplicates(t *testing.T) {
	cases := map[string]struct {
		reason string
		kind   KindInfo
	}{
		"same kind": {reason: "A second descriptor for a registered kind is refused.", kind: KindInfo{Kind: KindRoute, Rank: 99}},
		"same rank": {reason: "A new kind with a rank already taken is refused.", kind: KindInfo{Kind: "another", Rank: registry[KindRoute].Rank}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s\nRegister(%+v) did not panic", tc.reason, tc.kind)
					delete(registry, tc.kind.Kind)
				}
			}()
			Register(tc.kind)
		})
	}
}

func TestKindsAreOrderedByRank(t *testing.T) {
	kinds := Kinds()
	for i := 1; i < len(kinds); i++ {
		if kinds[i-1].Rank >= kinds[i].Rank {
			t.Errorf("Kinds()[%d] %s (rank %d) before %s (rank %d)", i-1, kinds[i-1].Kind, kinds[i-1].Rank, kinds[i].Kind, kinds[i].Rank)
		}
	}
}

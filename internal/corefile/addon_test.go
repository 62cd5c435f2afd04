package corefile

import (
	"strings"
	"testing"
)

// TestAddonConfigRoundTrip: meshd's blocks go into the corefile key and come out again, leaving the
// user's configurationValues exactly as they were, whatever else they hold.
func TestAddonConfigRoundTrip(t *testing.T) {
	blocks := []Block{{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.2.0.10"}}}
	userCorefile := EKSDefault + "\nexample.org:53 {\n    forward . 10.9.9.9\n}\n"
	cases := map[string]struct {
		values string
		// wantKeys are the top-level keys after the merge, in order.
		wantKeys []string
	}{
		"no configuration":           {"", []string{"corefile"}},
		"empty object":               {"{ }", []string{"corefile"}},
		"other keys":                 {`{"replicaCount": 3,  "resources": {"limits": {"memory": "170Mi"}}}`, []string{"corefile", "replicaCount", "resources"}},
		"own corefile":               {`{"replicaCount":2,"corefile":` + encodeString(userCorefile) + `}`, []string{"replicaCount", "corefile"}},
		"own corefile, pretty":       {"{\n  \"corefile\": " + encodeString(userCorefile) + ",\n  \"tolerations\": []\n}\n", []string{"corefile", "tolerations"}},
		"html-looking text in value": {`{"podAnnotations":{"a":"<b>&"}}`, []string{"corefile", "podAnnotations"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := ParseAddonConfig(tc.values)
			if err != nil {
				t.Fatal(err)
			}
			_, had, _ := c.Corefile()
			base := EKSDefault
			if had {
				base = ""
			}
			out, merged, rep, err := MergeAddonConfig(tc.values, base, "tidb", nil, blocks)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Added) != 1 || !strings.Contains(merged, "pingcap-2.svc.cluster.local:53") {
				t.Fatalf("merge added %v:\n%s", rep.Added, merged)
			}
			oc, err := ParseAddonConfig(out)
			if err != nil {
				t.Fatalf("merged configuration does not parse: %v\n%s", err, out)
			}
			if got := strings.Join(oc.Keys(), ","); got != strings.Join(tc.wantKeys, ",") {
				t.Errorf("keys %s, want %s", got, strings.Join(tc.wantKeys, ","))
			}
			if text, _, _ := oc.Corefile(); text != merged || !HasPlugin(text, "ready") {
				t.Errorf("corefile key holds another text, or lost the ready plugin:\n%s", text)
			}
			// Merging again changes nothing.
			if again, _, rep2, err := MergeAddonConfig(out, base, "tidb", nil, blocks); err != nil || again != out || rep2.Changed() {
				t.Errorf("second merge changed the configuration (%v, %+v)", err, rep2)
			}
			restore := AddonRestore{HadCorefile: had, BaseHash: Hash(base), OriginalHash: Hash(tc.values)}
			back, rep3, err := RemoveAddonConfig(out, "tidb", nil, restore)
			if err != nil {
				t.Fatal(err)
			}
			if back != tc.values || len(rep3.Removed) != 1 {
				t.Errorf("after removing meshd's blocks:\n%q\nwant the original\n%q", back, tc.values)
			}
		})
	}
}

// TestAddonConfigKeepsUserEdits: when the user changed the add-on's Corefile after meshd added the key,
// removing meshd's blocks keeps the key with the user's text.
func TestAddonConfigKeepsUserEdits(t *testing.T) {
	blocks := []Block{{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.2.0.10"}}}
	out, merged, _, err := MergeAddonConfig(`{"replicaCount":2}`, EKSDefault, "tidb", nil, blocks)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ParseAddonConfig(out)
	edited, _ := c.WithCorefile(strings.Replace(merged, "cache 30\n    loop", "cache 60\n    loop", 1))
	back, _, err := RemoveAddonConfig(edited, "tidb", nil, AddonRestore{BaseHash: Hash(EKSDefault), OriginalHash: Hash(`{"replicaCount":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	bc, _ := ParseAddonConfig(back)
	text, ok, _ := bc.Corefile()
	if !ok || !strings.Contains(text, "cache 60") || strings.Contains(text, "pingcap-2") {
		t.Errorf("the user's edit was lost or meshd's block kept (key %v):\n%s", ok, text)
	}
}

func TestAddonConfigYAMLAndErrors(t *testing.T) {
	c, err := ParseAddonConfig("replicaCount: 3\ncorefile: |\n  .:53 {\n      ready\n  }\n")
	if err != nil || !c.FromYAML {
		t.Fatalf("YAML configuration: %v, FromYAML %v", err, c != nil && c.FromYAML)
	}
	if text, ok, err := c.Corefile(); err != nil || !ok || !HasPlugin(text, "ready") {
		t.Errorf("YAML corefile: %q %v %v", text, ok, err)
	}
	secret := "AKIAEXAMPLESECRET"
	for _, bad := range []string{`[1,2]`, `"` + secret + `"`, `{"corefile": 3, "k": "` + secret + `"}`} {
		c, err := ParseAddonConfig(bad)
		if err == nil {
			_, _, err = c.Corefile()
		}
		if err == nil {
			t.Errorf("%s: no error", bad)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("the error repeats the configuration: %v", err)
		}
	}
}

func TestSchemaHasCorefile(t *testing.T) {
	if !SchemaHasCorefile(`{"$schema":"http://json-schema.org/draft-07/schema#","properties":{"corefile":{"type":"string"},"replicaCount":{"type":"integer"}}}`) {
		t.Error("schema with corefile not recognised")
	}
	if SchemaHasCorefile(`{"properties":{"replicaCount":{"type":"integer"}}}`) || SchemaHasCorefile("not json") {
		t.Error("schema without corefile recognised")
	}
	if HasPlugin(".:53 {\n    errors\n}\n", "ready") {
		t.Error("ready found where there is none")
	}
}

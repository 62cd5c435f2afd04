package corefile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/coredns/caddy/caddyfile"
	"sigs.k8s.io/yaml"
)

// The EKS CoreDNS add-on takes its Corefile from the `corefile` key of its configurationValues, a JSON
// (or YAML) document of which meshd owns nothing but its own blocks inside that one string. The functions
// below edit that document as text: every other key keeps its bytes, and adding a key and then dropping it
// again gives back the document exactly (ConfigKey, SetConfigCorefile, DropConfigCorefile). Like the rest
// of the package they never put the document's text in an error: it may hold credentials.

// ConfigKey is the key of the add-on's configurationValues that holds the Corefile.
const ConfigKey = "corefile"

// AddonConfig is configurationValues read for editing.
type AddonConfig struct {
	// JSON is the document as JSON: the input itself, or the input converted from YAML (then it cannot be
	// written back byte for byte, only with the same values).
	JSON     string
	FromYAML bool
	members  []member
	open     int // offset just after the top-level "{"
}

type member struct {
	key                  string
	keyStart, valueStart int
	valueEnd             int
}

// ParseAddonConfig reads configurationValues. An empty document is an empty object.
func ParseAddonConfig(values string) (*AddonConfig, error) {
	c := &AddonConfig{JSON: values}
	if strings.TrimSpace(values) == "" {
		c.JSON = "{}"
	} else if !json.Valid([]byte(values)) {
		j, err := yaml.YAMLToJSON([]byte(values))
		if err != nil {
			return nil, errors.New("corefile: the add-on's configurationValues are neither JSON nor YAML")
		}
		c.JSON, c.FromYAML = string(j), true
	}
	if err := c.scan(); err != nil {
		return nil, err
	}
	return c, nil
}

var errNotObject = errors.New("corefile: the add-on's configurationValues are not an object")

// scan finds the top-level members of the object and their byte ranges.
func (c *AddonConfig) scan() error {
	s := c.JSON
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return errNotObject
	}
	c.open = i + 1
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return nil
	}
	for {
		if i >= len(s) || s[i] != '"' {
			return errNotObject
		}
		end, err := stringEnd(s, i)
		if err != nil {
			return err
		}
		var key string
		if err := json.Unmarshal([]byte(s[i:end]), &key); err != nil {
			return errNotObject
		}
		m := member{key: key, keyStart: i}
		i = skipSpace(s, end)
		if i >= len(s) || s[i] != ':' {
			return errNotObject
		}
		i = skipSpace(s, i+1)
		dec := json.NewDecoder(strings.NewReader(s[i:]))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return errNotObject
		}
		m.valueStart, m.valueEnd = i, i+int(dec.InputOffset())
		c.members = append(c.members, m)
		i = skipSpace(s, m.valueEnd)
		if i < len(s) && s[i] == ',' {
			i = skipSpace(s, i+1)
			continue
		}
		if i < len(s) && s[i] == '}' {
			return nil
		}
		return errNotObject
	}
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the offset just after the JSON string starting at s[i].
func stringEnd(s string, i int) (int, error) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errNotObject
}

func (c *AddonConfig) find(key string) int {
	for i, m := range c.members {
		if m.key == key {
			return i
		}
	}
	return -1
}

// Corefile returns the corefile key's value, and whether the key is there. A corefile that is not a
// string is an error.
func (c *AddonConfig) Corefile() (string, bool, error) {
	i := c.find(ConfigKey)
	if i < 0 {
		return "", false, nil
	}
	m := c.members[i]
	var text string
	if err := json.Unmarshal([]byte(c.JSON[m.valueStart:m.valueEnd]), &text); err != nil {
		return "", true, errors.New("corefile: the add-on's configurationValues.corefile is not a string")
	}
	return text, true, nil
}

// Keys lists the top-level keys, in order.
func (c *AddonConfig) Keys() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.key
	}
	return out
}

// WithCorefile returns the document with the corefile key set to text: its value replaced in place when
// the key is there, else the key added first in the object (so that DropCorefile takes exactly it out
// again). Every other byte is kept.
func (c *AddonConfig) WithCorefile(text string) (string, error) {
	if err := checkUTF8(text); err != nil {
		return "", err
	}
	v := encodeString(text)
	if i := c.find(ConfigKey); i >= 0 {
		m := c.members[i]
		return c.JSON[:m.valueStart] + v + c.JSON[m.valueEnd:], nil
	}
	entry := `"` + ConfigKey + `":` + v
	if len(c.members) == 0 {
		return c.JSON[:c.open] + entry + c.JSON[c.open:], nil
	}
	at := c.members[0].keyStart
	return c.JSON[:at] + entry + "," + c.JSON[at:], nil
}

// WithoutCorefile returns the document without the corefile key: the inverse of WithCorefile adding it.
func (c *AddonConfig) WithoutCorefile() string {
	i := c.find(ConfigKey)
	if i < 0 {
		return c.JSON
	}
	m := c.members[i]
	switch {
	case len(c.members) == 1:
		return c.JSON[:m.keyStart] + c.JSON[m.valueEnd:]
	case i == 0:
		return c.JSON[:m.keyStart] + c.JSON[c.members[1].keyStart:]
	default:
		return c.JSON[:c.members[i-1].valueEnd] + c.JSON[m.valueEnd:]
	}
}

// encodeString is text as a JSON string, without the HTML escapes encoding/json adds by default (a
// Corefile is not HTML, and `<` written as \u003c would read as a change).
func encodeString(text string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(text) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// SchemaHasCorefile reports whether the add-on's configuration schema (DescribeAddonConfiguration's
// configurationSchema, a JSON schema) has a corefile property at the top level.
func SchemaHasCorefile(schema string) bool {
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if json.Unmarshal([]byte(schema), &s) != nil {
		return false
	}
	_, ok := s.Properties[ConfigKey]
	return ok
}

// HasPlugin reports whether some server block of src uses the plugin name (e.g. "ready"). The add-on's
// CoreDNS builds since v1.11 are probed on /ready, which only the ready plugin serves: a Corefile written
// into the add-on without it would leave its Pods unready.
func HasPlugin(src, name string) bool {
	blocks, err := caddyfile.Parse("Corefile", strings.NewReader(literalEnv(src)), nil)
	if err != nil {
		return false
	}
	for _, b := range blocks {
		if len(b.Tokens[name]) > 0 {
			return true
		}
	}
	return false
}

// Hash is the SHA-256 of s in hex: how plans and the state name a configuration without holding it.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// ShortHash is the first 12 hex digits of Hash, for display.
func ShortHash(s string) string { return Hash(s)[:12] }

// checkUTF8 guards the JSON encoding of a Corefile: encoding/json would replace invalid bytes silently.
func checkUTF8(text string) error {
	if !utf8.ValidString(text) {
		return fmt.Errorf("corefile: the Corefile is not valid UTF-8")
	}
	return nil
}

// MergeAddonConfig returns configurationValues with meshd's blocks in their corefile made equal to
// desired, as Merge does for a ConfigMap (the same ownership rules, conflicts and checks). Without a
// corefile key the add-on runs its default Corefile, base: the key is added, holding base merged.
// Whether the result keeps the ready plugin is for the caller to check (HasPlugin).
func MergeAddonConfig(values, base, mesh string, owned []string, desired []Block) (out, corefile string, r Report, err error) {
	c, err := ParseAddonConfig(values)
	if err != nil {
		return "", "", Report{}, err
	}
	text, ok, err := c.Corefile()
	if err != nil {
		return "", "", Report{}, err
	}
	if !ok {
		if len(desired) == 0 {
			return values, "", Report{}, nil // nothing of meshd's to write, and no key to add
		}
		text = base
	}
	merged, r, err := Merge(text, mesh, owned, desired)
	if err != nil {
		return "", "", Report{}, err
	}
	if ok && !r.Changed() {
		return values, merged, r, nil
	}
	out, err = c.WithCorefile(merged)
	return out, merged, r, err
}

// AddonRestore is what the state remembers of the add-on configuration meshd first wrote to, so that
// taking meshd's blocks out again gives the user's configurationValues back exactly: whether they had a
// corefile key, the hash of the Corefile meshd added its blocks to when they had none (the add-on's
// default), and the hash of the configurationValues as they were.
type AddonRestore struct {
	HadCorefile  bool
	BaseHash     string
	OriginalHash string
}

// RemoveAddonConfig returns configurationValues without meshd's blocks. When meshd added the corefile
// key and the Corefile without its blocks is still the one it started from, the key goes too; when that
// leaves an empty object where there was no configuration at all, the result is "" again.
func RemoveAddonConfig(values, mesh string, owned []string, restore AddonRestore) (string, Report, error) {
	c, err := ParseAddonConfig(values)
	if err != nil {
		return "", Report{}, err
	}
	text, ok, err := c.Corefile()
	if err != nil || !ok {
		return values, Report{}, err
	}
	cut, r, err := Remove(text, mesh, owned)
	if err != nil || !r.Changed() {
		return values, r, err
	}
	if restore.HadCorefile || Hash(cut) != restore.BaseHash {
		out, err := c.WithCorefile(cut)
		return out, r, err
	}
	out := c.WithoutCorefile()
	if restore.OriginalHash == Hash("") && strings.TrimSpace(out) == "{}" {
		out = ""
	}
	return out, r, nil
}

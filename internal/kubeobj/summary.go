package kubeobj

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// ContentHash is the SHA-256 (hex) of the content as canonical JSON (normalised values, map keys sorted,
// empty fields dropped): equal content hashes equal however it was built. Safe to show for a Secret whose
// values are keys, certificates or tokens; an unsalted hash of a short password could be guessed offline.
func ContentHash(o Object) string {
	content, err := normalize(o.Content)
	if err != nil {
		return "unhashable"
	}
	m := content.(map[string]any)
	for f, v := range m {
		if isEmpty(v) {
			delete(m, f)
		}
	}
	data, _ := json.Marshal(m) // plain JSON values from normalize: cannot fail; encoding/json sorts keys
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// maxSummary bounds the content shown for a non-sensitive kind.
const maxSummary = 200

// Summary describes o in one line that is safe to show for any kind: for a sensitive kind (Secret) its
// type, the names of its keys (sorted) and the content hash, never a value; for other kinds the content as
// JSON, shortened.
func Summary(o Object) string {
	ref := o.Ref()
	k, err := Lookup(o.Kind)
	if err != nil {
		return ref
	}
	hash := "sha256:" + ContentHash(o)
	if k.Sensitive {
		var parts []string
		if t, ok := o.Content["type"].(string); ok && t != "" {
			parts = append(parts, "type "+t)
		}
		parts = append(parts, "keys ["+strings.Join(keyNames(o.Content["data"]), " ")+"]")
		if o.Content["immutable"] == true {
			parts = append(parts, "immutable")
		}
		return fmt.Sprintf("%s: %s, %s", ref, strings.Join(parts, ", "), hash)
	}
	content, err := normalize(o.Content)
	if err != nil {
		return ref + ": " + hash
	}
	data, _ := json.Marshal(content)
	s := string(data)
	if len(s) > maxSummary {
		s = s[:maxSummary] + "…"
	}
	return fmt.Sprintf("%s: %s, %s", ref, s, hash)
}

// keyNames are the keys of a data map (map[string]any or map[string]string), sorted.
func keyNames(data any) []string {
	var keys []string
	switch d := data.(type) {
	case map[string]any:
		keys = sortedKeys(d)
	case map[string]string:
		keys = sortedKeys(d)
	case map[string][]byte:
		keys = sortedKeys(d)
	}
	return slices.Clip(keys)
}

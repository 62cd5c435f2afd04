package kubeobj

import (
	"encoding/json"
	"errors"

	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// errNotJSON hides the json package's message, which can quote the offending value (a Secret's, say).
var errNotJSON = errors.New("not representable as JSON")

// normalize turns v into plain JSON values (map[string]any, []any, string, int64, float64, bool, nil) the
// way the API server's answer decodes: map[string]string and map[string]any, int and int64, a struct and its
// JSON all become the same value. A nil v becomes an empty map.
func normalize(v any) (any, error) {
	if v == nil {
		return map[string]any{}, nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, errNotJSON
	}
	var out any
	// k8s.io's decoder keeps integers as int64, as the unstructured decoder does.
	if err := utiljson.Unmarshal(data, &out); err != nil {
		return nil, errNotJSON
	}
	if out == nil {
		return map[string]any{}, nil
	}
	return out, nil
}

// isEmpty: the API server drops empty optional fields (omitempty), so an empty value and an absent one are
// the same content.
func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}

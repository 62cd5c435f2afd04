package kubeobj

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestRedact covers each branch of redact: data as decoded JSON (map[string]any) and as built by meshd
// (map[string]string), base64 and decoded forms and single lines of a PEM block, the cut-off below which a
// value is left in the message, a value found only in the object read back from the cluster (not in the
// one meshd wanted), kinds that are not sensitive, and errors.Is/As through the redacted error.
func TestRedact(t *testing.T) {
	pem := "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	secret := func(data any) Object {
		return Object{Kind: "Secret", APIVersion: "v1", Namespace: "ns", Name: "s", Content: map[string]any{"data": data}}
	}
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "s", errors.New("x"))
	cases := map[string]struct {
		objects []Object
		message string
		gone    []string // must not be in the redacted message
		kept    []string // must still be there
	}{
		"map[string]any, base64 and decoded": {
			objects: []Object{secret(map[string]any{"tls.key": b64(pem), "n": 3})},
			message: "rejected " + b64(pem) + " and " + pem,
			gone:    []string{b64(pem), "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"},
			kept:    []string{"rejected", "<redacted>"},
		},
		"map[string]string, one line of a PEM": {
			objects: []Object{secret(map[string]string{"tls.key": b64(pem)})},
			message: "line 2 is MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
			gone:    []string{"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"},
			kept:    []string{"line 2 is <redacted>"},
		},
		"short values are left": {
			objects: []Object{secret(map[string]any{"a": b64("abc"), "b": b64("wxyz")})},
			message: "abc then wxyz",
			gone:    []string{"wxyz"},
			kept:    []string{"abc then"},
		},
		"the object read back": {
			objects: []Object{secret(map[string]any{"k": b64("wanted-value")}), secret(map[string]any{"k": b64("current-value")})},
			message: "conflict with current-value",
			gone:    []string{"current-value"},
		},
		"not sensitive": {
			objects: []Object{{Kind: "ConfigMap", APIVersion: "v1", Content: map[string]any{"data": map[string]any{"k": "plain-value"}}}},
			message: "plain-value",
			kept:    []string{"plain-value"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := redact(fmt.Errorf("%s: %w", tc.message, conflict), tc.objects...)
			for _, g := range tc.gone {
				if strings.Contains(err.Error(), g) {
					t.Errorf("%q is still in %q", g, err.Error())
				}
			}
			for _, k := range tc.kept {
				if !strings.Contains(err.Error(), k) {
					t.Errorf("%q is gone from %q", k, err.Error())
				}
			}
			if !apierrors.IsConflict(err) {
				t.Errorf("the redacted error is no longer a Conflict: %v", err)
			}
		})
	}
	if redact(nil, secret(map[string]any{"k": b64("secret")})) != nil {
		t.Error("redact(nil) is not nil")
	}
}

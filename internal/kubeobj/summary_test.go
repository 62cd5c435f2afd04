package kubeobj

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A value no message may ever contain, in any of its forms.
const secretValue = "hunter2-do-not-print-me"

var secretForms = []string{secretValue, base64.StdEncoding.EncodeToString([]byte(secretValue))}

func secretHolding(value string) Object {
	return Object{APIVersion: "v1", Kind: "Secret", Namespace: "ns", Name: "creds",
		Content: map[string]any{"type": "Opaque", "data": SecretData(map[string][]byte{"password": []byte(value), "user": []byte("admin")})}}
}

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, form := range secretForms {
		if strings.Contains(s, form) {
			t.Errorf("%s contains the Secret's value (%q): %s", what, form, s)
		}
	}
}

func TestSummaryAndDiffHideSecretValues(t *testing.T) {
	want, got := secretHolding(secretValue), secretHolding("old")
	sum := Summary(want)
	assertNoSecret(t, "Summary", sum)
	if want := "Secret ns/creds: type Opaque, keys [password user], sha256:" + ContentHash(want); sum != want {
		t.Errorf("Summary = %q, want %q", sum, want)
	}
	diffs := Diff(want, got)
	assertNoSecret(t, "Diff", strings.Join(diffs, " "))
	if diff := cmp.Diff([]string{"data[password]"}, diffs); diff != "" {
		t.Errorf("Diff -want, +got:\n%s", diff)
	}
}

func TestRedactedErrors(t *testing.T) {
	o := secretHolding(secretValue)
	pem := "-----BEGIN PRIVATE KEY-----\n" + secretValue + "AAAA\n-----END PRIVATE KEY-----\n"
	o.Content["data"].(map[string]any)["tls.key"] = base64.StdEncoding.EncodeToString([]byte(pem))
	cause := errors.New("the server said")
	for name, msg := range map[string]string{
		"raw":          "invalid value " + secretValue,
		"base64":       "invalid value " + secretForms[1],
		"one pem line": "bad key line " + secretValue + "AAAA",
	} {
		err := redact(fmt.Errorf("%s: %w", msg, cause), o)
		assertNoSecret(t, name, err.Error())
		if !errors.Is(err, cause) {
			t.Errorf("%s: the redacted error lost its cause", name)
		}
	}
	cm := Object{APIVersion: "v1", Kind: "ConfigMap", Content: map[string]any{"data": map[string]any{"k": "visible"}}}
	if err := redact(errors.New("visible"), cm); err.Error() != "visible" {
		t.Errorf("a ConfigMap's error was redacted: %q", err)
	}
}

func TestToUnstructuredErrorHidesValue(t *testing.T) {
	o := secretHolding(secretValue)
	o.Content["data"] = map[string]any{"password": secretValue, "bad": func() {}}
	_, err := o.ToUnstructured()
	if err == nil {
		t.Fatal("a func in the content was accepted")
	}
	assertNoSecret(t, "ToUnstructured's error", err.Error())
}

func TestContentHash(t *testing.T) {
	a := Object{Kind: "ConfigMap", Content: map[string]any{"data": map[string]string{"b": "2", "a": "1"}, "binaryData": map[string]any{}}}
	b := Object{Kind: "ConfigMap", Content: map[string]any{"data": map[string]any{"a": "1", "b": "2"}}}
	c := Object{Kind: "ConfigMap", Content: map[string]any{"data": map[string]any{"a": "1", "b": "3"}}}
	if ContentHash(a) != ContentHash(b) {
		t.Errorf("the same content built two ways hashes differently")
	}
	if ContentHash(b) == ContentHash(c) {
		t.Errorf("different content hashes the same")
	}
	if h := ContentHash(a); len(h) != 64 {
		t.Errorf("ContentHash %q is not hex SHA-256", h)
	}
	if s := Summary(b); !strings.HasPrefix(s, `ConfigMap : {"data":{"a":"1","b":"2"}}, sha256:`) {
		t.Errorf("Summary of a ConfigMap = %q", s)
	}
}

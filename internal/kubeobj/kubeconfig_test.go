package kubeobj

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// TestRenderKubeconfig: the kubeconfig parses with clientcmd, has one cluster, user and context per entry
// named after it, names the token file (or carries the inline token), and is byte-for-byte the same for
// the same entries.
func TestRenderKubeconfig(t *testing.T) {
	entries := []KubeconfigEntry{
		{Name: "k8s-2", Server: "https://k8s-2.example", CAData: []byte("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"), TokenFile: "/mnt/k8s-2.token"},
		{Name: "k8s-1", Server: "https://k8s-1.example", InsecureSkipTLSVerify: true, Token: "inline-token"},
	}
	a, err := RenderKubeconfig(entries)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := RenderKubeconfig([]KubeconfigEntry{entries[1], entries[0]})
	if string(a) != string(b) {
		t.Errorf("the same entries in another order render differently:\n%s\n---\n%s", a, b)
	}
	cfg, err := clientcmd.Load(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		ctx, cl, u := cfg.Contexts[e.Name], cfg.Clusters[e.Name], cfg.AuthInfos[e.Name]
		if ctx == nil || cl == nil || u == nil || ctx.Cluster != e.Name || ctx.AuthInfo != e.Name {
			t.Fatalf("%s: context %v, cluster %v, user %v", e.Name, ctx, cl, u)
		}
		if cl.Server != e.Server || string(cl.CertificateAuthorityData) != string(e.CAData) || cl.InsecureSkipTLSVerify != e.InsecureSkipTLSVerify ||
			u.TokenFile != e.TokenFile || u.Token != e.Token {
			t.Errorf("%s: cluster %+v, user %+v", e.Name, cl, u)
		}
	}
	tokens, err := InlineTokens(a)
	if err != nil || len(tokens) != 1 || tokens["k8s-1"] != "inline-token" {
		t.Errorf("InlineTokens: %v, %v", tokens, err)
	}
	if _, err := InlineTokens([]byte("{not yaml: [")); err == nil || strings.Contains(err.Error(), "not yaml") {
		t.Errorf("InlineTokens of garbage: %v (it must fail without quoting it)", err)
	}
}

// TestTokenIssuedAt: the iat claim of a JWT, and no time for what is not one.
func TestTokenIssuedAt(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	jwt := enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(`{"iat":1767322800,"exp":1767326400}`)) + ".sig"
	got, ok := TokenIssuedAt(jwt)
	if want := time.Unix(1767322800, 0).UTC(); !ok || !got.Equal(want) {
		t.Errorf("TokenIssuedAt = %v, %v; want %v", got, ok, want)
	}
	for _, bad := range []string{"", "a.b", "a.!!!.c", enc([]byte("{}")) + "." + enc([]byte(`{"exp":1}`)) + ".s"} {
		if _, ok := TokenIssuedAt(bad); ok {
			t.Errorf("TokenIssuedAt(%q) found a time", bad)
		}
	}
}

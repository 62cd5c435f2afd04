package ekstoken

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// testConfig signs with a static key; nothing is sent anywhere.
func testConfig(region string) aws.Config {
	return aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider("AKIDTESTKEY", "secret", "")}
}

func presignedURL(t *testing.T, token string) *url.URL {
	t.Helper()
	raw, err := Decode(token)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("the token's URL does not parse: %v", err)
	}
	return u
}

// TestTokenFormat: a token is k8s-aws-v1. and the unpadded base64url of an STS GetCallerIdentity URL presigned
// (query-string SigV4) for the region's STS endpoint, with x-k8s-aws-id among the signed headers and
// X-Amz-Expires=60, as aws-iam-authenticator's server checks.
func TestTokenFormat(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tok, err := New(context.Background(), NewPresigner(testConfig("us-west-2")), "tidb-1", now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.Value, Prefix) {
		t.Fatalf("token does not start with %q", Prefix)
	}
	body := strings.TrimPrefix(tok.Value, Prefix)
	if strings.ContainsAny(body, "+/=") {
		t.Errorf("token body is not unpadded base64url: it contains one of +/=")
	}
	if got, want := tok.Expires, now.Add(15*time.Minute); !got.Equal(want) {
		t.Errorf("Expires = %v, want %v", got, want)
	}
	u := presignedURL(t, tok.Value)
	if u.Scheme != "https" || u.Host != "sts.us-west-2.amazonaws.com" || u.Path != "/" {
		t.Errorf("URL is %s://%s%s, want https://sts.us-west-2.amazonaws.com/", u.Scheme, u.Host, u.Path)
	}
	q := u.Query()
	for k, want := range map[string]string{"Action": "GetCallerIdentity", "Version": "2011-06-15",
		"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Expires": "60"} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !slices.Contains(strings.Split(q.Get("X-Amz-SignedHeaders"), ";"), ClusterIDHeader) {
		t.Errorf("X-Amz-SignedHeaders = %q, want it to include %s", q.Get("X-Amz-SignedHeaders"), ClusterIDHeader)
	}
	if cred := q.Get("X-Amz-Credential"); !strings.HasPrefix(cred, "AKIDTESTKEY/") || !strings.HasSuffix(cred, "/us-west-2/sts/aws4_request") {
		t.Errorf("X-Amz-Credential = %q, want AKIDTESTKEY/<date>/us-west-2/sts/aws4_request", cred)
	}
	if q.Get("X-Amz-Signature") == "" || q.Get("X-Amz-Date") == "" {
		t.Errorf("no X-Amz-Signature or X-Amz-Date in %v", q)
	}

	// Another cluster's token has another signature: the name is part of what is signed.
	other, err := New(context.Background(), NewPresigner(testConfig("us-west-2")), "tidb-2", now)
	if err != nil {
		t.Fatal(err)
	}
	if presignedURL(t, other.Value).Query().Get("X-Amz-Signature") == q.Get("X-Amz-Signature") {
		t.Error("tokens for two clusters have the same signature: x-k8s-aws-id is not signed")
	}
}

func TestDecodeRefusesOtherTokens(t *testing.T) {
	for _, tok := range []string{"", "abc", "k8s-aws-v1.%%%", "k8s-aws-v2.aHR0cHM6Ly9leGFtcGxl"} {
		if _, err := Decode(tok); err == nil {
			t.Errorf("Decode(%q) succeeded", tok)
		}
	}
}

// countingPresigner counts the tokens made.
type countingPresigner struct {
	Presigner
	n atomic.Int32
}

func (c *countingPresigner) made() int { return int(c.n.Load()) }

func newCounting() *countingPresigner {
	return &countingPresigner{Presigner: NewPresigner(testConfig("eu-west-1"))}
}

// TestSourceRenewsBeforeExpiry: a Source hands out the same token until RenewBefore its expiry (14 minutes
// after it was made), then a new one; a 401 through its transport drops the token it carried.
func TestSourceRenewsBeforeExpiry(t *testing.T) {
	p := newCounting()
	counted := presignerFunc(func(ctx context.Context) { p.n.Add(1) }, p.Presigner)
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	src := NewSource(counted, "tidb-1", func() time.Time { return now })
	ctx := context.Background()

	first, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(Lifetime - RenewBefore - time.Second)
	if again, _ := src.Token(ctx); again != first || p.made() != 1 {
		t.Fatalf("at 13m59s: a new token (made %d): want the cached one", p.made())
	}
	now = now.Add(time.Second)
	renewed, _ := src.Token(ctx)
	if p.made() != 2 {
		t.Fatalf("at 14m: made %d tokens, want 2 (renewed a minute before expiry)", p.made())
	}

	// A 401 drops the token it carried; the next request signs again. Another request's success keeps it.
	var seen []string
	status := http.StatusUnauthorized
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
		w.WriteHeader(status)
	}))
	defer srv.Close()
	client := &http.Client{Transport: src.Wrap(http.DefaultTransport)}
	for i := 0; i < 2; i++ {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		status = http.StatusOK
	}
	if seen[0] != "Bearer "+renewed {
		t.Errorf("first request did not carry the cached token")
	}
	// (Both tokens are signed in the same second, so they may be equal: what counts is that one was made.)
	if !strings.HasPrefix(seen[1], "Bearer "+Prefix) || p.made() != 3 {
		t.Errorf("after a 401 no new token was made for the next request (made %d, want 3)", p.made())
	}
}

// presignerFunc calls hook before each presign.
func presignerFunc(hook func(context.Context), p Presigner) Presigner {
	return hooked{hook: hook, Presigner: p}
}

type hooked struct {
	Presigner
	hook func(context.Context)
}

func (h hooked) PresignGetCallerIdentity(ctx context.Context, params *sts.GetCallerIdentityInput, optFns ...func(*sts.PresignOptions)) (*v4.PresignedHTTPRequest, error) {
	h.hook(ctx)
	return h.Presigner.PresignGetCallerIdentity(ctx, params, optFns...)
}

// Package ekstoken makes the bearer tokens EKS accepts, as `aws eks get-token` and aws-iam-authenticator make
// them, and keeps one fresh for a Kubernetes client.
//
// A token is "k8s-aws-v1." followed by the unpadded base64url encoding of a presigned STS GetCallerIdentity
// URL (query-string SigV4, X-Amz-Expires=60) whose signature covers the header x-k8s-aws-id: <cluster name>.
// The API server's authenticator sends that request to STS with its own cluster's name in the header: STS
// answers with the caller's ARN only if the signature matches, so a token made for another cluster is
// refused. EKS accepts a token for 15 minutes after its X-Amz-Date, whatever X-Amz-Expires says.
//
// A token is a credential for as long as it lives: nothing here logs it or puts it in an error.
package ekstoken

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

const (
	// Prefix starts every token.
	Prefix = "k8s-aws-v1."
	// ClusterIDHeader is the signed header that names the cluster a token is for.
	ClusterIDHeader = "x-k8s-aws-id"
	// Lifetime is how long EKS accepts a token after its X-Amz-Date.
	Lifetime = 15 * time.Minute
	// RenewBefore is how long before the end of its Lifetime a cached token is replaced: a request in flight,
	// and clocks that differ by up to a minute, never carry one that has just expired.
	RenewBefore = time.Minute
	// presignExpires is the X-Amz-Expires the AWS CLI and aws-iam-authenticator put in the URL (STS ignores it
	// for GetCallerIdentity; the authenticator only checks that it is at most 900).
	presignExpires = "60"
)

// Presigner is the part of *sts.PresignClient a Source uses.
type Presigner interface {
	PresignGetCallerIdentity(ctx context.Context, params *sts.GetCallerIdentityInput, optFns ...func(*sts.PresignOptions)) (*v4.PresignedHTTPRequest, error)
}

// NewPresigner returns the STS presign client of an SDK configuration: its credentials (default chain, IRSA,
// an assumed role's cache) sign, and its region picks the regional STS endpoint.
func NewPresigner(cfg aws.Config) Presigner {
	return sts.NewPresignClient(sts.NewFromConfig(cfg))
}

// Token is a bearer token and when EKS stops accepting it.
type Token struct {
	Value   string
	Expires time.Time
}

// New makes a token for the cluster named cluster (the EKS cluster's name: what its authenticator puts in
// x-k8s-aws-id). now is when the URL is signed (the SDK's clock); Expires is now + Lifetime.
func New(ctx context.Context, p Presigner, cluster string, now time.Time) (Token, error) {
	if cluster == "" {
		return Token{}, errors.New("an EKS token needs the cluster's name")
	}
	req, err := p.PresignGetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, func(o *sts.PresignOptions) {
		o.ClientOptions = append(o.ClientOptions, func(o *sts.Options) {
			// Both are added before signing: the cluster header is signed (X-Amz-SignedHeaders names it) and
			// the X-Amz- header is hoisted into the query string by the presigner.
			o.APIOptions = append(o.APIOptions,
				smithyhttp.SetHeaderValue(ClusterIDHeader, cluster),
				smithyhttp.SetHeaderValue("X-Amz-Expires", presignExpires))
		})
	})
	if err != nil {
		// The SDK's error names the operation and the credential problem, never a signature.
		return Token{}, fmt.Errorf("signing the STS GetCallerIdentity request for EKS cluster %q: %w", cluster, err)
	}
	if u, err := url.Parse(req.URL); err != nil || !slices.Contains(strings.Split(u.Query().Get("X-Amz-SignedHeaders"), ";"), ClusterIDHeader) {
		return Token{}, fmt.Errorf("the presigned STS request for EKS cluster %q does not sign %s", cluster, ClusterIDHeader)
	}
	return Token{Value: Prefix + base64.RawURLEncoding.EncodeToString([]byte(req.URL)), Expires: now.Add(Lifetime)}, nil
}

// Decode returns the presigned URL a token carries.
func Decode(token string) (string, error) {
	rest, ok := strings.CutPrefix(token, Prefix)
	if !ok {
		return "", fmt.Errorf("not an EKS token: it does not start with %q", Prefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return "", errors.New("not an EKS token: not unpadded base64url after the prefix")
	}
	return string(b), nil
}

// Source hands out a cached token for one cluster and makes a new one RenewBefore its expiry, or after the
// API server refused the current one (Invalidate). It is safe for concurrent use.
type Source struct {
	presigner Presigner
	cluster   string
	now       func() time.Time

	mu  sync.Mutex
	tok Token
}

// NewSource returns a Source for the named cluster. now is the clock (nil: time.Now).
func NewSource(p Presigner, cluster string, now func() time.Time) *Source {
	if now == nil {
		now = time.Now
	}
	return &Source{presigner: p, cluster: cluster, now: now}
}

// Token returns a token that stays valid for at least RenewBefore.
func (s *Source) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.tok.Value != "" && now.Before(s.tok.Expires.Add(-RenewBefore)) {
		return s.tok.Value, nil
	}
	t, err := New(ctx, s.presigner, s.cluster, now)
	if err != nil {
		return "", err
	}
	s.tok = t
	return t.Value, nil
}

// Invalidate drops the cached token if it is still value (the one a refused request carried), so that the
// next request gets a new one.
func (s *Source) Invalidate(value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.Value == value {
		s.tok = Token{}
	}
}

// Wrap returns a RoundTripper that sends every request with the Source's current token (client-go's
// WrapTransport): long-lived informers get a new token whenever the old one is due, with no restart. A 401
// answer drops the token it carried, so the next request (client-go retries watches and list calls) signs
// again: credentials that changed under a cached token recover at once.
func (s *Source) Wrap(rt http.RoundTripper) http.RoundTripper {
	return &transport{src: s, next: rt}
}

type transport struct {
	src  *Source
	next http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.src.Token(req.Context())
	if err != nil {
		return nil, fmt.Errorf("authenticating to the API server with an EKS token: %w", err)
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	resp, err := t.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		t.src.Invalidate(tok)
	}
	return resp, err
}

// WrappedRoundTripper lets client-go's transport debugging and CancelRequest see through the wrapper.
func (t *transport) WrappedRoundTripper() http.RoundTripper { return t.next }

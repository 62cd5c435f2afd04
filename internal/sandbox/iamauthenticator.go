package sandbox

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/meshd-io/meshd/internal/ekstoken"
)

// IAMAuthenticator is a stand-in for aws-iam-authenticator's server, which EKS runs behind kube-apiserver's
// token webhook (--authentication-token-webhook-config-file). It is written from the documented protocol,
// not from its code: the API server POSTs a TokenReview (authentication.k8s.io/v1) with the bearer token;
// the server decodes the token ("k8s-aws-v1." + base64url of a presigned STS URL), checks that the URL is a
// GetCallerIdentity presign that signs x-k8s-aws-id and is not past X-Amz-Date + 15 minutes, sends it to
// STS with its own cluster's name in x-k8s-aws-id, and maps the ARN STS answers with (an assumed role's
// canonicalised to the role's) to a user and groups; an ARN it does not map is refused.
//
// moto is STS here, and it neither checks signatures nor routes a presigned GET to STS (a request without
// an Authorization header goes to its S3): so the stand-in checks the signature itself, and asks moto who
// the key is with the token's credential in a signed-header request.
//
// What it checks, for every token: the encoding, STS's host and path, only the query parameters
// aws-iam-authenticator allows, Action=GetCallerIdentity, x-k8s-aws-id among the signed headers,
// X-Amz-Expires at most 900, X-Amz-Date not more than 15 minutes ago (expiry needs no secret), an STS
// credential scope, and the caller's ARN mapped. The cluster a token was made for is in its signature only
// (x-k8s-aws-id is a signed header, its value is not in the URL), so the signature is checked, with this
// cluster's name, for every token: the stand-in needs the secret of the token's access key, which it knows
// when it was given it (AddKey: the sandbox's "testing" key) or when moto's STS issued it (an assumed
// role's session credentials, looked up once in moto's /moto-api/data.json and kept). A token whose key it
// knows neither way is refused: it could check neither its cluster nor that it was signed at all.
// What it cannot check: that session credentials are still valid (moto does not expire them, nor does it
// check the session token), that the role's trust policy allowed the AssumeRole (moto ignores trust
// policies), and anything per cluster about the mapping (one ARN-to-identity map serves every cluster,
// where EKS has access entries per cluster).
//
// Each cluster's API server reaches it at its own path, /authenticate/<EKS cluster name>: that path names
// the cluster a token must be for.
type IAMAuthenticator struct {
	// MotoEndpoint is where STS is (http://127.0.0.1:<port>).
	MotoEndpoint string
	// Now is the clock expiry is checked against; nil: time.Now.
	Now  func() time.Time
	Logf func(format string, args ...any)

	URL string // http://127.0.0.1:<port>

	mu       sync.Mutex
	keys     map[string]string   // access key ID -> secret: AddKey's and those learnt from moto
	mappings map[string]Identity // canonical ARN -> identity
	reviews  []Review
	srv      *http.Server
}

// Identity is what an ARN is mapped to: the Kubernetes user and groups (an EKS access entry's).
type Identity struct {
	Username string
	Groups   []string
}

// Review is one TokenReview the stand-in answered: the cluster, the ARN (when STS answered) and why a token
// was refused ("" when it was accepted). It never holds the token.
type Review struct {
	Cluster string
	ARN     string
	Refused string
}

// StartIAMAuthenticator serves the stand-in on a free port of 127.0.0.1 until ctx ends.
func StartIAMAuthenticator(ctx context.Context, motoEndpoint string, logf func(string, ...any)) (*IAMAuthenticator, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	a := &IAMAuthenticator{MotoEndpoint: motoEndpoint, Logf: logf, keys: map[string]string{}, mappings: map[string]Identity{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a.URL = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /authenticate/{cluster}", a.serveReview)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = a.srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = a.srv.Close()
	}()
	return a, nil
}

// Stop closes the server.
func (a *IAMAuthenticator) Stop() { _ = a.srv.Close() }

// AddKey lets the stand-in check the signatures of tokens made with an access key (session credentials
// moto's STS issued need none: see secret).
func (a *IAMAuthenticator) AddKey(accessKeyID, secret string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys[accessKeyID] = secret
}

// Map maps an IAM ARN (a user's, or a role's: arn:aws:iam::<account>:role/<name>) to an identity.
func (a *IAMAuthenticator) Map(arn string, id Identity) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mappings[arn] = id
}

// Reviews returns the TokenReviews answered so far.
func (a *IAMAuthenticator) Reviews() []Review {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reviews)
}

// WriteWebhookConfig writes the kubeconfig kube-apiserver's --authentication-token-webhook-config-file takes
// for the EKS cluster named cluster.
func (a *IAMAuthenticator) WriteWebhookConfig(path, cluster string) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: aws-iam-authenticator
  cluster:
    server: %s/authenticate/%s
users:
- name: kube-apiserver
  user: {}
contexts:
- name: webhook
  context:
    cluster: aws-iam-authenticator
    user: kube-apiserver
current-context: webhook
`, a.URL, url.PathEscape(cluster))
	return os.WriteFile(path, []byte(cfg), 0o600)
}

func (a *IAMAuthenticator) serveReview(w http.ResponseWriter, r *http.Request) {
	cluster := r.PathValue("cluster")
	var review authenticationv1.TokenReview
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&review); err != nil {
		http.Error(w, "not a TokenReview", http.StatusBadRequest)
		return
	}
	id, arn, err := a.Authenticate(r.Context(), cluster, review.Spec.Token)
	rec := Review{Cluster: cluster, ARN: arn}
	review.Spec = authenticationv1.TokenReviewSpec{}
	if err != nil {
		rec.Refused = err.Error()
		review.Status = authenticationv1.TokenReviewStatus{Authenticated: false, Error: err.Error()}
		a.Logf("iam-authenticator stand-in: %s: refused: %v", cluster, err)
	} else {
		review.Status = authenticationv1.TokenReviewStatus{Authenticated: true,
			User: authenticationv1.UserInfo{Username: id.Username, UID: "aws-iam-authenticator:" + arn, Groups: id.Groups}}
		a.Logf("iam-authenticator stand-in: %s: %s is %s %v", cluster, arn, id.Username, id.Groups)
	}
	a.mu.Lock()
	a.reviews = append(a.reviews, rec)
	a.mu.Unlock()
	if review.APIVersion == "" {
		review.APIVersion, review.Kind = "authentication.k8s.io/v1", "TokenReview"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
}

// presignLifetime is how long aws-iam-authenticator accepts a presigned URL after its X-Amz-Date.
const presignLifetime = 15 * time.Minute

// allowedParams are the query parameters aws-iam-authenticator accepts (lower case).
var allowedParams = map[string]bool{"action": true, "version": true, "x-amz-algorithm": true, "x-amz-credential": true,
	"x-amz-date": true, "x-amz-expires": true, "x-amz-security-token": true, "x-amz-signature": true, "x-amz-signedheaders": true}

// Authenticate checks a token for the named cluster and returns the identity its caller maps to, and the
// caller's canonical ARN once STS said who it is.
func (a *IAMAuthenticator) Authenticate(ctx context.Context, cluster, token string) (Identity, string, error) {
	raw, err := ekstoken.Decode(token)
	if err != nil {
		return Identity{}, "", err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Identity{}, "", errors.New("the token's URL does not parse")
	}
	if err := a.checkHost(u); err != nil {
		return Identity{}, "", err
	}
	if u.Path != "/" {
		return Identity{}, "", fmt.Errorf("unexpected path %q in the presigned URL", u.Path)
	}
	q := url.Values{}
	for k, vs := range u.Query() {
		if !allowedParams[strings.ToLower(k)] {
			return Identity{}, "", fmt.Errorf("query parameter %q is not allowed", k)
		}
		if len(vs) != 1 {
			return Identity{}, "", fmt.Errorf("query parameter %q given %d times", k, len(vs))
		}
		q.Set(strings.ToLower(k), vs[0])
	}
	if q.Get("action") != "GetCallerIdentity" {
		return Identity{}, "", fmt.Errorf("the presigned URL's action is %q, not GetCallerIdentity", q.Get("action"))
	}
	if !slices.Contains(strings.Split(strings.ToLower(q.Get("x-amz-signedheaders")), ";"), ekstoken.ClusterIDHeader) {
		return Identity{}, "", fmt.Errorf("the presigned URL does not sign %s", ekstoken.ClusterIDHeader)
	}
	if n, err := strconv.Atoi(q.Get("x-amz-expires")); err != nil || n < 0 || n > 900 {
		return Identity{}, "", fmt.Errorf("invalid X-Amz-Expires %q", q.Get("x-amz-expires"))
	}
	date, err := time.Parse("20060102T150405Z", q.Get("x-amz-date"))
	if err != nil {
		return Identity{}, "", fmt.Errorf("invalid X-Amz-Date %q", q.Get("x-amz-date"))
	}
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	if now.After(date.Add(presignLifetime)) {
		return Identity{}, "", fmt.Errorf("the token expired: X-Amz-Date %s is more than 15 minutes ago", date.Format(time.RFC3339))
	}
	scope := strings.Split(q.Get("x-amz-credential"), "/") // <key>/<date>/<region>/sts/aws4_request
	if len(scope) != 5 || scope[3] != "sts" || scope[4] != "aws4_request" {
		return Identity{}, "", fmt.Errorf("the credential scope %q is not STS's", strings.Join(scope[1:], "/"))
	}
	key, region := scope[0], scope[2]
	secret, err := a.secret(ctx, key)
	if err != nil {
		return Identity{}, "", err
	}
	if err := checkSignature(ctx, u, q, cluster, key, secret, region, date); err != nil {
		return Identity{}, "", err
	}
	arn, err := a.callerARN(ctx, key, region, q)
	if err != nil {
		return Identity{}, "", err
	}
	arn = canonicalARN(arn)
	a.mu.Lock()
	id, ok := a.mappings[arn]
	a.mu.Unlock()
	if !ok {
		return Identity{}, arn, fmt.Errorf("ARN %s is not mapped to a Kubernetes identity", arn)
	}
	return id, arn, nil
}

// secret is the secret of an access key: one given to AddKey, or session credentials moto's STS issued
// (AssumeRole), which moto lists in its /moto-api/data.json; a key found there is kept. A key known neither
// way is an error: the token's signature, and so its cluster, cannot be checked.
func (a *IAMAuthenticator) secret(ctx context.Context, key string) (string, error) {
	a.mu.Lock()
	secret, ok := a.keys[key]
	a.mu.Unlock()
	if ok {
		return secret, nil
	}
	issued, err := a.motoSessionKeys(ctx)
	if err != nil {
		return "", fmt.Errorf("cannot check the signature: looking up the access key in moto: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, v := range issued {
		a.keys[k] = v
	}
	if secret, ok = a.keys[key]; !ok {
		return "", errors.New("cannot check the signature (nor so the cluster): the access key was neither given to the stand-in nor issued by moto's STS")
	}
	return secret, nil
}

// motoSessionKeys reads the session credentials moto's STS has issued (its AssumedRole models) from moto's
// model dump, /moto-api/data.json.
func (a *IAMAuthenticator) motoSessionKeys(ctx context.Context) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.MotoEndpoint+"/moto-api/data.json", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("moto's data.json: HTTP %d", resp.StatusCode)
	}
	var dump struct {
		STS struct {
			AssumedRole []struct {
				AccessKeyID     string `json:"access_key_id"`
				SecretAccessKey string `json:"secret_access_key"`
			} `json:"AssumedRole"`
		} `json:"sts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dump); err != nil {
		return nil, fmt.Errorf("moto's data.json: %w", err)
	}
	out := map[string]string{}
	for _, r := range dump.STS.AssumedRole {
		if r.AccessKeyID != "" {
			out[r.AccessKeyID] = r.SecretAccessKey
		}
	}
	return out, nil
}

// checkHost accepts STS's global and regional endpoints, as aws-iam-authenticator does, and moto's.
func (a *IAMAuthenticator) checkHost(u *url.URL) error {
	if m, err := url.Parse(a.MotoEndpoint); err == nil && u.Host == m.Host {
		return nil
	}
	h := u.Hostname()
	if u.Scheme == "https" && (h == "sts.amazonaws.com" || (strings.HasPrefix(h, "sts.") && strings.HasSuffix(h, ".amazonaws.com"))) {
		return nil
	}
	return fmt.Errorf("the presigned URL's host %q is not STS", u.Host)
}

// checkSignature signs the request again with the secret, with x-k8s-aws-id set to this cluster's name,
// and compares: a token signed for another cluster (or tampered with) does not match.
func checkSignature(ctx context.Context, u *url.URL, q url.Values, cluster, key, secret, region string, date time.Time) error {
	orig := u.Query()
	unsigned := url.Values{}
	for k, vs := range orig {
		switch strings.ToLower(k) {
		case "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signedheaders", "x-amz-signature", "x-amz-security-token":
		default:
			unsigned[k] = vs
		}
	}
	again := *u
	again.RawQuery = unsigned.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, again.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set(ekstoken.ClusterIDHeader, cluster)
	creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: q.Get("x-amz-security-token")}
	const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, emptySHA256, "sts", region, date)
	if err != nil {
		return err
	}
	su, err := url.Parse(signed)
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(su.Query().Get("X-Amz-Signature")), []byte(q.Get("x-amz-signature"))) {
		return fmt.Errorf("the signature does not match a request for cluster %q (a token made for another cluster?)", cluster)
	}
	return nil
}

// callerARN asks moto who the access key is. moto does not verify signatures, so the request carries the
// token's credential in an Authorization header (which routes it to STS) and no real signature.
func (a *IAMAuthenticator) callerARN(ctx context.Context, key, region string, q url.Values) (string, error) {
	form := url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2011-06-15"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.MotoEndpoint+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s/%s/sts/aws4_request, SignedHeaders=host, Signature=0",
		key, q.Get("x-amz-date")[:8], region))
	if t := q.Get("x-amz-security-token"); t != "" {
		req.Header.Set("X-Amz-Security-Token", t)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("STS: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("STS answered %d", resp.StatusCode)
	}
	var out struct {
		Result struct {
			Arn     string `xml:"Arn"`
			Account string `xml:"Account"`
		} `xml:"GetCallerIdentityResult"`
	}
	if err := xml.Unmarshal(body, &out); err != nil || out.Result.Arn == "" {
		return "", fmt.Errorf("STS's answer has no ARN")
	}
	return out.Result.Arn, nil
}

// canonicalARN turns an assumed role's session ARN (arn:aws:sts::<account>:assumed-role/<role>/<session>)
// into its role's (arn:aws:iam::<account>:role/<role>), as aws-iam-authenticator maps them; others are
// kept. (A role with a path cannot be told from its session ARN; the authenticator drops the path too.)
func canonicalARN(arn string) string {
	p := strings.SplitN(arn, ":", 6)
	if len(p) != 6 || p[2] != "sts" || !strings.HasPrefix(p[5], "assumed-role/") {
		return arn
	}
	parts := strings.Split(strings.TrimPrefix(p[5], "assumed-role/"), "/")
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", p[1], p[4], parts[0])
}

package sandbox

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/meshd-io/meshd/internal/ekstoken"
	"github.com/meshd-io/meshd/internal/testenv"
)

// TestIAMAuthenticatorStandIn: the stand-in accepts a token made as aws eks get-token makes it for its
// cluster and maps the caller's ARN (an assumed role's canonicalised to the role), and refuses a token for
// another cluster (signature), an expired one, an unmapped caller and what is not an EKS token; an assumed
// role's tokens (a key it learns from moto) are checked alike, and one whose key it cannot learn is refused.
func TestIAMAuthenticatorStandIn(t *testing.T) {
	moto := testenv.StartMoto(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := StartIAMAuthenticator(ctx, moto.Endpoint(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	cfg := aws.Config{Region: "us-west-2", BaseEndpoint: aws.String(moto.Endpoint()),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")}
	a.AddKey("testing", "testing")
	token := func(c aws.Config, cluster string) string {
		tok, err := ekstoken.New(ctx, ekstoken.NewPresigner(c), cluster, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok.Value
	}

	// Unmapped first: refused, naming the ARN STS gave.
	_, arn, err := a.Authenticate(ctx, "tidb-1", token(cfg, "tidb-1"))
	if err == nil || !strings.Contains(err.Error(), "not mapped") || arn == "" {
		t.Fatalf("unmapped caller: arn %q, err %v; want refused as not mapped", arn, err)
	}
	a.Map(arn, Identity{Username: "meshd", Groups: []string{"meshd"}})
	id, _, err := a.Authenticate(ctx, "tidb-1", token(cfg, "tidb-1"))
	if err != nil || id.Username != "meshd" {
		t.Fatalf("own token: %v, %v; want accepted as meshd", id, err)
	}
	if _, _, err := a.Authenticate(ctx, "tidb-1", token(cfg, "tidb-2")); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("token for another cluster: %v, want a signature mismatch", err)
	}
	a.Now = func() time.Time { return time.Now().Add(16 * time.Minute) }
	if _, _, err := a.Authenticate(ctx, "tidb-1", token(cfg, "tidb-1")); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("16 minutes later: %v, want expired", err)
	}
	a.Now = nil
	for _, bad := range []string{"", "k8s-aws-v1.bm90IGEgdXJs", "someone-elses-token"} {
		if _, _, err := a.Authenticate(ctx, "tidb-1", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}

	// An assumed role: its session ARN maps as the role's.
	out, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::111111111111:role/meshd"),
		RoleSessionName: aws.String("meshd-tidb")})
	if err != nil {
		t.Fatal(err)
	}
	role := cfg.Copy()
	role.Credentials = credentials.NewStaticCredentialsProvider(*out.Credentials.AccessKeyId, *out.Credentials.SecretAccessKey, *out.Credentials.SessionToken)
	a.Map("arn:aws:iam::111111111111:role/meshd", Identity{Username: "meshd-b", Groups: []string{"meshd"}})
	if id, arn, err := a.Authenticate(ctx, "tidb-2", token(role, "tidb-2")); err != nil || id.Username != "meshd-b" {
		t.Errorf("assumed role: %v (%s), %v; want meshd-b", id, arn, err)
	}
	// Its key was not given to the stand-in, which learnt it from moto: the cluster and expiry are checked
	// as for the sandbox's key.
	if _, _, err := a.Authenticate(ctx, "tidb-2", token(role, "tidb-1")); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("assumed role's token for another cluster: %v, want a signature mismatch", err)
	}
	a.Now = func() time.Time { return time.Now().Add(16 * time.Minute) }
	if _, _, err := a.Authenticate(ctx, "tidb-2", token(role, "tidb-2")); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("assumed role's token 16 minutes later: %v, want expired", err)
	}
	a.Now = nil
	// A key neither given nor issued by moto's STS (moto would answer for it): refused, unverifiable.
	stranger := cfg.Copy()
	stranger.Credentials = credentials.NewStaticCredentialsProvider("AKIASTRANGER", "not-known", "")
	if _, _, err := a.Authenticate(ctx, "tidb-1", token(stranger, "tidb-1")); err == nil || !strings.Contains(err.Error(), "cannot check the signature") {
		t.Errorf("a key the stand-in cannot verify: %v, want refused as unverifiable", err)
	}
}

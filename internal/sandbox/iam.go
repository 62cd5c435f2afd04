package sandbox

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// MeshdIdentity is what the sandbox maps its own credentials to, as an EKS access entry for meshd's role
// with the group `meshctl rbac` binds (Group:meshd).
var MeshdIdentity = Identity{Username: "meshd", Groups: []string{"meshd"}}

// startIAM starts the aws-iam-authenticator stand-in against the sandbox's moto, knowing the sandbox's key
// (so it checks those tokens' signatures) and mapping its identity, and each cluster's AssumeRole, to
// MeshdIdentity.
func (s *Sandbox) startIAM(ctx, bg context.Context) (*IAMAuthenticator, error) {
	a, err := StartIAMAuthenticator(bg, s.MotoEndpoint, s.Logf)
	if err != nil {
		return nil, err
	}
	cfg := s.AWSConfig("us-east-1")
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, err
	}
	a.AddKey(creds.AccessKeyID, creds.SecretAccessKey)
	arn, err := s.callerARN(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.Map(arn, MeshdIdentity)
	for _, c := range s.Clusters {
		if c.AssumeRole != "" {
			a.Map(c.AssumeRole, MeshdIdentity)
		}
	}
	return a, nil
}

// DefaultARN is the ARN of the sandbox's own credentials (moto's default user).
func (s *Sandbox) DefaultARN(ctx context.Context) (string, error) {
	return s.callerARN(ctx, s.AWSConfig("us-east-1"))
}

func (s *Sandbox) callerARN(ctx context.Context, cfg aws.Config) (string, error) {
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("STS GetCallerIdentity: %w", err)
	}
	return aws.ToString(out.Arn), nil
}

// webhookConfig is where the API server of a cluster finds its token webhook's kubeconfig.
func (s *Sandbox) webhookConfig(c Cluster) string {
	return filepath.Join(s.Dir, c.Name, "token-webhook.kubeconfig")
}

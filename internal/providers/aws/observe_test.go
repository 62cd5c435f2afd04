package aws_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"

	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/testenv"
)

func writeSpec(t *testing.T, text string) *spec.Mesh {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mesh.hcl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	m, diags := spec.Load(path)
	if diags.HasErrors() {
		t.Fatalf("spec: %v", diags)
	}
	return m
}

// TestObserveDiagnostics: references the spec makes that AWS does not know are diagnostics pointing at the
// attribute to fix, not errors.
func TestObserveDiagnostics(t *testing.T) {
	moto := testenv.StartMoto(t)
	moto.SetEnv(t)
	ctx := context.Background()
	a, err := sandbox.CreateNetwork(ctx, moto.AWSConfig("us-west-1"), sandbox.ClusterNet{Name: "a", Region: "us-west-1", CIDR: "10.1.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := sandbox.CreateNetwork(ctx, moto.AWSConfig("us-west-2"), sandbox.ClusterNet{Name: "b", Region: "us-west-2", CIDR: "10.2.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	m := writeSpec(t, fmt.Sprintf(`mesh "m" {}
cluster "a" {
  region            = "us-west-1"
  kube_context      = "a"
  namespace         = "a"
  vpc_id            = %q
  security_group_id = "sg-0123456789abcdef0"
}
cluster "b" {
  region            = "us-west-2"
  kube_context      = "b"
  namespace         = "b"
  vpc_id            = %q
  security_group_id = %q
  route_table_ids   = ["rtb-0123456789abcdef0"]
  cidr_blocks       = ["10.9.0.0/16"]
}
cluster "c" {
  region       = "us-east-1"
  kube_context = "c"
  namespace    = "c"
  vpc_id            = "vpc-0123456789abcdef0"
  security_group_id = "sg-0123456789abcdef1"
}
cluster "d" {
  region       = "us-east-1"
  kube_context = "d"
  namespace    = "d"
  eks_cluster  = "nope"
}
`, a.VPCID, b.VPCID, b.SecurityGroupID))

	p, err := awsprovider.New(ctx, awsprovider.Options{Mesh: "m"})
	if err != nil {
		t.Fatal(err)
	}
	obs, diags, err := p.Observe(ctx, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		Summary string
		Line    int
	}
	var gotDiags []got
	for _, d := range diags {
		if d.Subject == nil {
			t.Errorf("diagnostic %q has no source range", d.Summary)
			continue
		}
		gotDiags = append(gotDiags, got{d.Summary, d.Subject.Start.Line})
	}
	want := []got{
		{"Unknown security group", 7},
		{"Unknown route table", 15},
		{"CIDR block not in the VPC", 16},
		{"Unknown VPC", 22},
		{"Unknown EKS cluster", 29},
	}
	if diff := cmp.Diff(want, gotDiags); diff != "" {
		t.Errorf("diagnostics -want +got:\n%s", diff)
	}
	if len(obs.Members) != 0 {
		t.Errorf("members resolved despite errors: %+v", obs.Members)
	}
}

// TestThrottlingIsRetried: EC2 answers RequestLimitExceeded twice; the SDK's retryer backs off and the
// observe succeeds.
func TestThrottlingIsRetried(t *testing.T) {
	moto := testenv.StartMoto(t)
	moto.SetEnv(t)
	ctx := context.Background()
	a, err := sandbox.CreateNetwork(ctx, moto.AWSConfig("us-west-1"), sandbox.ClusterNet{Name: "a", Region: "us-west-1", CIDR: "10.1.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	m := writeSpec(t, fmt.Sprintf(`mesh "m" {}
cluster "a" {
  region            = "us-west-1"
  kube_context      = "a"
  namespace         = "a"
  vpc_id            = %q
  security_group_id = %q
}
`, a.VPCID, a.SecurityGroupID))

	var attempts atomic.Int32
	throttle := func(s *middleware.Stack) error {
		// Below the retry middleware, so every attempt passes through it.
		return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("throttle", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if awsmiddleware.GetOperationName(ctx) == "DescribeVpcs" && attempts.Add(1) <= 2 {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{Code: "RequestLimitExceeded", Message: "Request limit exceeded."}
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
	}
	p, err := awsprovider.New(ctx, awsprovider.Options{Mesh: "m", APIOptions: []func(*middleware.Stack) error{throttle}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	obs, diags, err := p.Observe(ctx, m, nil)
	if err != nil || diags.HasErrors() {
		t.Fatalf("observe under throttling: %v %v", err, diags)
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("DescribeVpcs attempts: %d, want 3 (two throttled, one through)", n)
	}
	if len(obs.Members) != 1 || obs.Members[0].VPCID != a.VPCID {
		t.Errorf("members: %+v", obs.Members)
	}
	t.Logf("observe with two throttled attempts took %s", time.Since(start))
}

func TestErrorCodeClassification(t *testing.T) {
	throttled := fmt.Errorf("wrapped: %w", &smithy.GenericAPIError{Code: "RequestLimitExceeded"})
	if !awsprovider.IsTransient(throttled) || awsprovider.ErrorCode(throttled) != "RequestLimitExceeded" {
		t.Errorf("throttling not classified: %v", throttled)
	}
	if awsprovider.IsTransient(&smithy.GenericAPIError{Code: "InvalidVpcID.NotFound"}) {
		t.Error("a missing VPC is not transient")
	}
	if awsprovider.ErrorCode(errors.New("plain")) != "" {
		t.Error("a non-API error has no code")
	}
}

package aws_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"

	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/testenv"
)

// BenchmarkObserve observes meshes of 3, 6, 12 and 24 clusters spread over three regions in moto and
// reports the EC2 calls one observe makes (ec2-calls/op): constant per region and resource kind, whatever the
// cluster count. Time per op is moto's, not AWS's.
func BenchmarkObserve(b *testing.B) {
	moto := testenv.StartMoto(b)
	moto.SetEnv(b)
	ctx := context.Background()
	regions := []string{"us-west-1", "us-west-2", "us-east-1"}
	var nets []sandbox.Network
	for i := 0; i < 24; i++ {
		region := regions[i%3]
		n, err := sandbox.CreateNetwork(ctx, moto.AWSConfig(region), sandbox.ClusterNet{
			Name: fmt.Sprintf("c%02d", i+1), Region: region, CIDR: fmt.Sprintf("10.%d.0.0/16", i+1)})
		if err != nil {
			b.Fatal(err)
		}
		nets = append(nets, n)
	}
	var calls atomic.Int64
	count := func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("count", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if awsmiddleware.GetServiceID(ctx) == "EC2" {
				calls.Add(1)
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	}
	p, err := awsprovider.New(ctx, awsprovider.Options{Mesh: "bench", APIOptions: []func(*middleware.Stack) error{count}})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{3, 6, 12, 24} {
		var text strings.Builder
		text.WriteString("mesh \"bench\" {}\n")
		for _, net := range nets[:n] {
			fmt.Fprintf(&text, "cluster %q {\n region = %q\n kube_context = %q\n namespace = %q\n vpc_id = %q\n security_group_id = %q\n}\n",
				net.Name, net.Region, net.Name, net.Name, net.VPCID, net.SecurityGroupID)
		}
		m := writeSpecB(b, text.String())
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			calls.Store(0)
			for i := 0; i < b.N; i++ {
				if _, diags, err := p.Observe(ctx, m, awsprovider.Former{}); err != nil || diags.HasErrors() {
					b.Fatal(err, diags)
				}
			}
			b.ReportMetric(float64(calls.Load())/float64(b.N), "ec2-calls/op")
		})
	}
}

func writeSpecB(b *testing.B, text string) *spec.Mesh {
	b.Helper()
	path := filepath.Join(b.TempDir(), "mesh.hcl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	m, diags := spec.Load(path)
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	return m
}

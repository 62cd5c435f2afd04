package aws_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
)

// autoModeEKS is moto's EKS with the one field moto does not keep: DescribeCluster's computeConfig, set
// as EKS reports a cluster created with Auto Mode on (computeConfig.enabled = true).
type autoModeEKS struct {
	*eks.Client
	auto map[string]bool
}

func (c autoModeEKS) DescribeCluster(ctx context.Context, in *eks.DescribeClusterInput, opts ...func(*eks.Options)) (*eks.DescribeClusterOutput, error) {
	out, err := c.Client.DescribeCluster(ctx, in, opts...)
	if err == nil && out.Cluster != nil && c.auto[aws.ToString(in.Name)] {
		out.Cluster.ComputeConfig = &ekstypes.ComputeConfigResponse{Enabled: aws.Bool(true), NodePools: []string{"general-purpose", "system"}}
	}
	return out, err
}

// TestObserveEKSAutoMode: an EKS member whose DescribeCluster reports computeConfig.enabled is observed as
// an Auto Mode cluster (the DNS planner's "no CoreDNS" warning then says why); the others are not.
func TestObserveEKSAutoMode(t *testing.T) {
	moto := testenv.StartMoto(t)
	ctx := context.Background()
	region := "us-west-2"
	cfg := moto.AWSConfig(region)
	var spec string
	for i, name := range []string{"auto", "classic"} {
		_, err := sandbox.CreateNetwork(ctx, cfg, sandbox.ClusterNet{Name: name, Region: region, CIDR: fmt.Sprintf("10.%d.0.0/16", i+1), EKS: true})
		if err != nil {
			t.Fatal(err)
		}
		spec += fmt.Sprintf("cluster %q {\n  region       = %q\n  kube_context = %q\n  namespace    = %q\n  eks_cluster  = %q\n}\n", name, region, name, name, name)
	}
	m := writeSpec(t, "mesh \"m\" {}\n"+spec)
	p, err := awsprovider.New(ctx, awsprovider.Options{Mesh: "m", Clients: func(string) (awsprovider.EC2API, awsprovider.EKSAPI) {
		return ec2.NewFromConfig(cfg), autoModeEKS{Client: eks.NewFromConfig(cfg), auto: map[string]bool{"auto": true}}
	}})
	if err != nil {
		t.Fatal(err)
	}
	obs, diags, err := p.Observe(ctx, m, awsprovider.Former{})
	if err != nil || diags.HasErrors() {
		t.Fatalf("observe: %v %v", err, diags)
	}
	if !obs.Observed.EKSAutoMode["auto"] || obs.Observed.EKSAutoMode["classic"] {
		t.Errorf("Auto Mode members: %v, want auto only", obs.Observed.EKSAutoMode)
	}
}

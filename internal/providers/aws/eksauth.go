package aws

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"

	"github.com/meshd-io/meshd/internal/ekstoken"
	"github.com/meshd-io/meshd/internal/model"
)

// EKSEndpoint returns an EKS cluster's API server URL and certificate authority (PEM) from DescribeCluster,
// called with the member's access: how meshd reaches a member it signs in to itself without a kube context.
func (p *Provider) EKSEndpoint(ctx context.Context, a model.Access, region, cluster string) (string, []byte, error) {
	out, err := p.eksFor(a, region).DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(cluster)})
	if err != nil {
		return "", nil, fmt.Errorf("EKS DescribeCluster %s in %s: %w", cluster, a.In(region), err)
	}
	c := out.Cluster
	if c == nil {
		return "", nil, fmt.Errorf("EKS DescribeCluster %s in %s returned no cluster", cluster, a.In(region))
	}
	if aws.ToString(c.Endpoint) == "" {
		return "", nil, fmt.Errorf("EKS cluster %s in %s has no API server endpoint yet (status %s)", cluster, a.In(region), c.Status)
	}
	var ca []byte
	if c.CertificateAuthority != nil && aws.ToString(c.CertificateAuthority.Data) != "" {
		if ca, err = base64.StdEncoding.DecodeString(aws.ToString(c.CertificateAuthority.Data)); err != nil {
			return "", nil, fmt.Errorf("EKS cluster %s in %s: its certificateAuthority.data is not base64: %w", cluster, a.In(region), err)
		}
	}
	if len(ca) == 0 {
		return "", nil, errors.New("EKS cluster " + cluster + " in " + a.In(region) + " has no certificate authority")
	}
	return aws.ToString(c.Endpoint), ca, nil
}

// EKSPresigner returns the STS presigner that signs EKS tokens with the member's access (the default chain,
// IRSA, or its assumed role's cached credentials) for the STS endpoint of its region.
func (p *Provider) EKSPresigner(a model.Access, region string) ekstoken.Presigner {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ekstoken.NewPresigner(p.configLocked(a, region))
}

package aws_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/errclass"
	"github.com/meshd-io/meshd/internal/plan"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
)

// failingEC2 answers every call it implements with err; the rest of the interface is never called.
type failingEC2 struct {
	awsprovider.EC2API
	err error
}

func (f failingEC2) DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	return nil, f.err
}

func (f failingEC2) CreateRoute(context.Context, *ec2.CreateRouteInput, ...func(*ec2.Options)) (*ec2.CreateRouteOutput, error) {
	return nil, f.err
}

// TestUnitErrorsCarryTheirClass: what the provider returns says whether it is transient, without the caller
// knowing AWS error codes.
func TestUnitErrorsCarryTheirClass(t *testing.T) {
	m := writeSpec(t, `mesh "m" {}
cluster "a" {
  region            = "us-west-1"
  kube_context      = "a"
  namespace         = "a"
  vpc_id            = "vpc-00000001"
  security_group_id = "sg-00000001"
}
`)
	route := plan.Change{Kind: plan.KindRoute, Action: plan.Create, Address: "route[a]",
		After: plan.Route{Region: "us-west-1", RouteTableID: "rtb-1", DestinationCIDR: "10.2.0.0/16", PeeringID: "pcx-1"}}
	cases := map[string]struct {
		reason string
		code   string
		want   bool
	}{
		"Throttled":   {reason: "throttling is worth a quick retry", code: "RequestLimitExceeded", want: true},
		"Unavailable": {reason: "a service briefly unavailable is worth a quick retry", code: "ServiceUnavailable", want: true},
		"NotFound":    {reason: "a missing object stays missing: not transient", code: "InvalidVpcID.NotFound", want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			stub := failingEC2{err: &smithy.GenericAPIError{Code: tc.code, Message: "stub"}}
			p, err := awsprovider.New(context.Background(), awsprovider.Options{Mesh: "m",
				Clients: func(string) (awsprovider.EC2API, awsprovider.EKSAPI) { return stub, nil }})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = p.Observe(context.Background(), m, awsprovider.Former{})
			if err == nil {
				t.Fatal("Observe: no error from a failing DescribeVpcs")
			}
			if diff := cmp.Diff(tc.want, errclass.IsTransient(err)); diff != "" {
				t.Errorf("%s\nObserve error %q transient: -want, +got:\n%s", tc.reason, err, diff)
			}
			_, err = p.Executors()[plan.KindRoute].Execute(context.Background(), route, nil)
			if err == nil {
				t.Fatal("Execute: no error from a failing CreateRoute")
			}
			if diff := cmp.Diff(tc.want, errclass.IsTransient(err)); diff != "" {
				t.Errorf("%s\nExecute error %q transient: -want, +got:\n%s", tc.reason, err, diff)
			}
		})
	}
}

// failingEKS answers DescribeCluster and DescribeAddon with err.
type failingEKS struct {
	awsprovider.EKSAPI
	err error
}

func (f failingEKS) DescribeCluster(context.Context, *eks.DescribeClusterInput, ...func(*eks.Options)) (*eks.DescribeClusterOutput, error) {
	return nil, f.err
}

func (f failingEKS) DescribeAddon(context.Context, *eks.DescribeAddonInput, ...func(*eks.Options)) (*eks.DescribeAddonOutput, error) {
	return nil, f.err
}

// TestUnitEKSFaultsAreTransient: EKS's own words for a passing fault (ServerException, HTTP 500, and
// ServiceUnavailableException, 503) make the error transient, so the daemon retries soon instead of
// reporting a hard failure; EKS's client errors stay hard.
func TestUnitEKSFaultsAreTransient(t *testing.T) {
	m := writeSpec(t, `mesh "m" {}
cluster "a" {
  region       = "us-west-1"
  kube_context = "a"
  namespace    = "a"
  eks_cluster  = "a"
}
`)
	cases := map[string]struct {
		reason string
		code   string
		want   bool
	}{
		"ServerException":             {reason: "EKS's internal error is worth a retry", code: "ServerException", want: true},
		"ServiceUnavailableException": {reason: "EKS briefly unavailable is worth a retry", code: "ServiceUnavailableException", want: true},
		"InvalidParameterException":   {reason: "a bad request stays bad", code: "InvalidParameterException", want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			stub := failingEKS{err: &smithy.GenericAPIError{Code: tc.code, Message: "stub"}}
			p, err := awsprovider.New(context.Background(), awsprovider.Options{Mesh: "m",
				Clients: func(string) (awsprovider.EC2API, awsprovider.EKSAPI) { return nil, stub }})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, awsprovider.IsTransient(stub.err)); diff != "" {
				t.Errorf("%s\nIsTransient(%s): -want, +got:\n%s", tc.reason, tc.code, diff)
			}
			_, err = p.ObserveAddons(context.Background(), []awsprovider.AddonTarget{{Cluster: "a", Region: "us-west-1", EKSCluster: "a"}})
			if err == nil {
				t.Fatal("ObserveAddons: no error from a failing DescribeAddon")
			}
			if diff := cmp.Diff(tc.want, errclass.IsTransient(err)); diff != "" {
				t.Errorf("%s\nObserveAddons error %q transient: -want, +got:\n%s", tc.reason, err, diff)
			}
			_, _, err = p.Observe(context.Background(), m, awsprovider.Former{})
			if err == nil {
				t.Fatal("Observe: no error from a failing DescribeCluster")
			}
			if diff := cmp.Diff(tc.want, errclass.IsTransient(err)); diff != "" {
				t.Errorf("%s\nObserve error %q transient: -want, +got:\n%s", tc.reason, err, diff)
			}
		})
	}
}

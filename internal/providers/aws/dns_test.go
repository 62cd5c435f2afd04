package aws

import "testing"

func TestENIDescription(t *testing.T) {
	cases := map[string]string{
		"arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/net/k8s-kubesyst-acrossc-1a2b3c/50dc6c495c0c9188": "ELB net/k8s-kubesyst-acrossc-1a2b3c/50dc6c495c0c9188",
		"arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:123456789012:loadbalancer/net/a/b":                               "ELB net/a/b",
		// moto writes "app" into the ARN of a network load balancer; the ENIs are still "ELB net/...".
		"arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/k8s-x/0123456789abcdef": "ELB net/k8s-x/0123456789abcdef",
		"not-an-arn": "",
	}
	for arn, want := range cases {
		if got := ENIDescription(arn); got != want {
			t.Errorf("ENIDescription(%q) = %q, want %q", arn, got, want)
		}
	}
	if !sameHost("Foo.elb.us-west-2.amazonaws.com.", "foo.elb.us-west-2.amazonaws.com") || sameHost("a.example", "b.example") {
		t.Error("sameHost compares DNS names case-insensitively, ignoring a final dot")
	}
}

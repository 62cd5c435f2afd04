package model

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEKSRefRoundTrip(t *testing.T) {
	for _, r := range []EKSRef{
		{Cluster: "tidb-1", Region: "us-west-1"},
		{Cluster: "tidb_2", Region: "us-west-2", Access: Access{AssumeRole: "arn:aws:iam::111111111111:role/ops/meshd"}},
		{Cluster: "c", Region: "eu-west-1", Access: Access{AssumeRole: "arn:aws:iam::111111111111:role/meshd", ExternalID: "mesh-tidb"},
			Context: "admin@c via a proxy"},
		{Cluster: "d", Region: "eu-west-1", Context: "arn:aws:eks:eu-west-1:111111111111:cluster/d"},
	} {
		got, ok := ParseEKSRef(r.String())
		if !ok {
			t.Errorf("ParseEKSRef(%q) failed", r.String())
			continue
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("ParseEKSRef(%q) (-want +got):\n%s", r.String(), diff)
		}
	}
	for _, s := range []string{"pingcap@tidb-1.us-west-1.eksctl.io", "eks:", "eks:tidb", "eks:@r", "eks:c@", "eks:c@r as", "eks:c@r by x"} {
		if _, ok := ParseEKSRef(s); ok {
			t.Errorf("ParseEKSRef(%q) succeeded; it is not an EKS reference", s)
		}
	}
}

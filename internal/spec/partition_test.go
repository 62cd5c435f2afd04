package spec

import "testing"

// TestPartitionsAgree: every partition whose regions the region check accepts is one whose roles the
// role-ARN check accepts, and the two name the same partition. (Before the partition table the role check
// knew aws, aws-cn, aws-us-gov, aws-iso and aws-iso-b only, while the region check took any code shaped
// like one: a cluster in us-isof-south-1, eu-isoe-west-1 or eusc-de-east-1 could not assume a role.)
func TestPartitionsAgree(t *testing.T) {
	regions := map[string]string{ // one region of each partition, from the SDK's partitions.json
		"us-west-2":       "aws",
		"mx-central-1":    "aws",
		"cn-northwest-1":  "aws-cn",
		"us-gov-east-1":   "aws-us-gov",
		"us-iso-west-1":   "aws-iso",
		"us-isob-east-1":  "aws-iso-b",
		"eu-isoe-west-1":  "aws-iso-e",
		"us-isof-south-1": "aws-iso-f",
		"eusc-de-east-1":  "aws-eusc",
	}
	covered := map[string]bool{}
	for region, want := range regions {
		if got := partitionOf(region); got != want {
			t.Errorf("partitionOf(%q) = %q, want %q", region, got, want)
		}
		if !isRegion(region) {
			t.Errorf("region %q is refused", region)
		}
		arn := "arn:" + want + ":iam::111111111111:role/ops/meshd"
		if !roleARNRe.MatchString(arn) || rolePartition(arn) != want {
			t.Errorf("region %q is accepted, but a role of its partition, %s, is not (partition %q)", region, arn, rolePartition(arn))
		}
		covered[want] = true
	}
	for _, p := range partitions {
		if !covered[p.name] {
			t.Errorf("partition %s has no region in this test", p.name)
		}
	}
	for _, bad := range []string{"arn:aws-iso-z:iam::111111111111:role/meshd", "arn:aws:iam::111111111111:user/meshd", "arn:awscn:iam::111111111111:role/meshd"} {
		if roleARNRe.MatchString(bad) {
			t.Errorf("%s is accepted as a role ARN", bad)
		}
	}
	for _, bad := range []string{"xx-west-1", "us-west", "us-isoz-east-1", "eusc-fr-east-1"} {
		if isRegion(bad) {
			t.Errorf("%q is accepted as a region", bad)
		}
	}
}

package model

// TargetGroup is an observed ELBv2 target group with the load balancer in front of it and its registered
// targets: what a load_balancer block shows in the plan and what its secondaries' TargetGroupBindings are
// made from.
type TargetGroup struct {
	ARN        string `json:"arn"`
	Region     string `json:"region"`
	VPCID      string `json:"vpc_id"`
	TargetType string `json:"target_type"` // ip | instance
	Protocol   string `json:"protocol"`
	Port       int32  `json:"port"`
	// LoadBalancerARN is the (first) load balancer whose listener forwards to the group.
	LoadBalancerARN string `json:"load_balancer_arn,omitempty"`
	// SecurityGroups are the load balancer's; SubnetCIDRs the IPv4 blocks of its subnets (sorted), which
	// its traffic to targets comes from when it has no security group.
	SecurityGroups []string `json:"security_groups,omitempty"`
	SubnetCIDRs    []string `json:"subnet_cidrs,omitempty"`
	Targets        []Target `json:"targets,omitempty"`
}

// Target is one registered target of a target group, as DescribeTargetHealth reports it.
type Target struct {
	ID    string `json:"id"` // an IP address for ip target groups
	Port  int32  `json:"port"`
	State string `json:"state"` // healthy | initial | unhealthy | draining | unused | unavailable
}

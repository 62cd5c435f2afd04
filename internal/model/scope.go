package model

import "time"

// ObserveScope narrows what one plan observes afresh; the rest comes from the last observation. meshd's
// passes triggered by a Kubernetes watch use it so that a reverted Corefile is not held up by a full AWS
// observe. The zero value observes everything.
type ObserveScope struct {
	// Kube lists the clusters whose Kubernetes objects are read again (a watched object of theirs changed);
	// every other cluster's are reused from the last observation. Nil with Scoped: none.
	Kube []string
	// LoadBalancers lists the clusters whose load balancers are looked up again although AWS is reused: a
	// Service of theirs changed (its status names the NLB), so the addresses behind it may have too.
	LoadBalancers []string
	// AWSMaxAge lets the plan reuse the last AWS observation while it is younger than this (meshd: the AWS
	// interval). Zero: AWS is observed.
	AWSMaxAge time.Duration
	// Scoped turns the scope on; without it everything is observed, whatever the other fields say.
	Scoped bool
	// KeepLastKnown lets a plan whose AWS observation fails go on with the last one (any age) for the
	// Kubernetes side: nothing is changed in AWS, and ObserveReport.AWSError says why.
	KeepLastKnown bool
}

// ObserveReport says what a plan observed afresh and what it reused.
type ObserveReport struct {
	// AWSFresh is true when AWS was observed by this plan; else AWSAge is the age of the observation reused.
	AWSFresh bool
	AWSAge   time.Duration
	// AWSError is why AWS could not be observed when the plan went on with the last observation
	// (ObserveScope.KeepLastKnown); its AWS changes were left out.
	AWSError error
	// Kube are the clusters whose Kubernetes objects were read by this plan.
	Kube []string
}

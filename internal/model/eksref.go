package model

import (
	"fmt"
	"strings"
)

// EKSRef names a member whose API server meshd signs in to with an EKS token of its own (kube_auth = "eks").
// Its String stands where a kubeconfig context name stands for the other members — in plans, the state and
// the kube provider's clients — so that a saved plan, or a member removed from the spec, is reached as the
// spec said when it was planned or recorded.
type EKSRef struct {
	// Cluster is the EKS cluster's name: what the token carries in x-k8s-aws-id, and (without Context) the
	// cluster DescribeCluster looks up.
	Cluster string
	Region  string
	// Access signs the token (and calls DescribeCluster): the default credentials, or an assumed role's.
	Access
	// Context is the kubeconfig context whose cluster entry gives the server and CA (its user is not used);
	// "" means EKS DescribeCluster's endpoint and certificate authority.
	Context string
}

const eksRefPrefix = "eks:"

// String is "eks:<cluster>@<region>", then " as <role ARN>" and " external_id <id>" for an assumed role,
// then " via <context>" (last: a context name may hold spaces). Role ARNs and external IDs hold none.
func (r EKSRef) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s%s@%s", eksRefPrefix, r.Cluster, r.Region)
	if r.AssumeRole != "" {
		b.WriteString(" as " + r.AssumeRole)
		if r.ExternalID != "" {
			b.WriteString(" external_id " + r.ExternalID)
		}
	}
	if r.Context != "" {
		b.WriteString(" via " + r.Context)
	}
	return b.String()
}

// ParseEKSRef reads what EKSRef.String wrote; ok is false for anything else (a kubeconfig context name).
func ParseEKSRef(s string) (r EKSRef, ok bool) {
	rest, ok := strings.CutPrefix(s, eksRefPrefix)
	if !ok {
		return EKSRef{}, false
	}
	if head, ctx, found := strings.Cut(rest, " via "); found {
		rest, r.Context = head, ctx
	}
	f := strings.Split(rest, " ")
	i := strings.LastIndex(f[0], "@")
	if i <= 0 || i == len(f[0])-1 {
		return EKSRef{}, false
	}
	r.Cluster, r.Region = f[0][:i], f[0][i+1:]
	for f = f[1:]; len(f) >= 2; f = f[2:] {
		switch f[0] {
		case "as":
			r.AssumeRole = f[1]
		case "external_id":
			r.ExternalID = f[1]
		default:
			return EKSRef{}, false
		}
	}
	if len(f) != 0 {
		return EKSRef{}, false
	}
	return r, true
}

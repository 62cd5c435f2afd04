package engine

import (
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
)

// KubeContext is how meshd reaches a cluster of the spec, as the kube provider's clients, the plans and the
// state name it: the cluster's kube_context, or for kube_auth = "eks" a model.EKSRef (its EKS name, region
// and access, and the kube_context whose server it uses, if any), which the kube provider signs in to with
// an EKS token of its own.
func KubeContext(c *spec.Cluster) string {
	if !c.EKSAuth() {
		return c.KubeContext
	}
	return model.EKSRef{Cluster: c.EKSName(), Region: c.Region, Context: c.KubeContext,
		Access: model.Access{AssumeRole: c.AssumeRole, ExternalID: c.ExternalID}}.String()
}

// Package crds holds the custom resource definitions of the controllers meshd writes objects for, which the
// sandbox and the tests install into their API servers (nothing installs them in a bare kube-apiserver).
package crds

import _ "embed"

// TargetGroupBinding is the AWS Load Balancer Controller's elbv2.k8s.aws/v1beta1 TargetGroupBinding.
//
//go:embed targetgroupbinding.yaml
var TargetGroupBinding []byte

// Package crds holds the custom resource definitions of the controllers meshd writes objects for, which the
// sandbox and the tests install into their API servers (nothing installs them in a bare kube-apiserver).
package crds

import (
	_ "embed"
	"strings"
)

// TargetGroupBinding is the AWS Load Balancer Controller's elbv2.k8s.aws/v1beta1 TargetGroupBinding.
//
//go:embed targetgroupbinding.yaml
var TargetGroupBinding []byte

// TargetGroupBindingBefore210 is TargetGroupBinding as the AWS Load Balancer Controller before v2.10 defines
// it: without spec.multiClusterTargetGroup (for the "LBC too old" diagnostic).
func TargetGroupBindingBefore210() []byte {
	var out []string
	skipping, multiIndent := false, 0
	for _, line := range strings.Split(string(TargetGroupBinding), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		if strings.HasPrefix(trimmed, "multiClusterTargetGroup:") {
			skipping = true
			multiIndent = indent
			continue
		}
		if skipping && (trimmed == "" || indent > multiIndent) {
			continue
		}
		skipping = false
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n"))
}

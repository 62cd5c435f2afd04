# Example meshd spec: one TiDB cluster spanning three EKS clusters in three regions.
#
# Each cluster block names an EKS cluster; meshd discovers its VPC, CIDR blocks, the route tables of its
# subnets and its node security group, then peers every pair of VPCs, adds routes and ingress rules, and makes
# each cluster's CoreDNS forward <namespace>.svc.cluster.local of the other clusters to them. Forwarding by
# namespace is the mode for EKS, whose cluster domain is always cluster.local, so the namespaces must differ.
#
# The VPC CIDR blocks must not overlap; meshd checks that once it has read them from AWS.
#
#   meshctl validate --spec specs/mesh.hcl
#   meshctl plan --spec specs/mesh.hcl
#
# The full reference is docs/spec.md.

mesh "tidb" {
  dns {
    forward_by = "namespace"
  }
}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "pingcap@tidb-1.us-west-1.eksctl.io"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "pingcap@tidb-2.us-west-2.eksctl.io"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
}

cluster "tidb-3" {
  region       = "us-east-1"
  kube_context = "pingcap@tidb-3.us-east-1.eksctl.io"
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
}

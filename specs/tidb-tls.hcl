# Example meshd spec: one TiDB cluster spanning three EKS clusters, with TLS between its components.
#
# The mesh is that of specs/mesh.hcl (VPC peering, routes, security-group rules and CoreDNS forwarding by
# namespace between tidb-1, tidb-2 and tidb-3). On top of it, cert-manager in tidb-1 issues the TiDB
# cluster's CA into the Secret pingcap/cluster1-ca-secret; the replicate block copies that Secret into
# tidb-2 and tidb-3, so that their TiDB components trust the same CA, and meshd keeps the copies equal to
# it: a renewed CA reaches them at once (meshd watches the source), and a copy edited or deleted by hand is
# restored. The copies carry the source's type, data, labels and annotations (not cert-manager.io/*, so that
# cert-manager in a target does not take a copy for its own), and meshd's labels.
#
# The namespace pingcap must exist in every target (meshd does not create namespaces), and the identity of
# each target's kube_context needs the rights in deploy/member-rbac.yaml.
#
#   meshctl validate --spec specs/tidb-tls.hcl
#   meshctl plan --spec specs/tidb-tls.hcl
#
# The full reference is docs/spec.md ("replicate blocks").

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

replicate "tidb-ca" {
  from {
    cluster   = "tidb-1"
    kind      = "Secret"
    namespace = "pingcap"
    name      = "cluster1-ca-secret"
  }
  to        = ["tidb-2", "tidb-3"] # the default: every other member
  namespace = "pingcap"            # the default: the source's namespace
}

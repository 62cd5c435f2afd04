# Two EKS clusters; every optional setting left to its default.
mesh "tidb" {}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "pingcap@tidb-1.us-west-1.eksctl.io"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

cluster "tidb-2" {
  region       = "us-gov-west-1"
  kube_context = "pingcap@tidb-2.us-gov-west-1.eksctl.io"
  eks_cluster  = "tidb_2"
  namespace    = "pingcap-2"
}

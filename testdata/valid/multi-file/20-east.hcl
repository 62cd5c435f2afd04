cluster "tidb-3" {
  region       = "us-east-1"
  kube_context = "pingcap@tidb-3.us-east-1.eksctl.io"
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
}

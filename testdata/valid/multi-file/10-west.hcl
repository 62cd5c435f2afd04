cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "pingcap@tidb-1.us-west-1.eksctl.io"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "pingcap@tidb-2.us-west-2.eksctl.io"
  eks_cluster  = "tidb-1" # the same name in another region is another cluster
  namespace    = "pingcap-2"
}

mesh "tidb" {}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "pingcap@tidb.us-west-1.eksctl.io"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "pingcap@tidb.us-west-1.eksctl.io" # ERROR: Duplicate kube context
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
}

cluster "tidb-3" {
  region       = "us-east-1"
  kube_context = "" # ERROR: Invalid kube context
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
}

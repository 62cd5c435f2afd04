mesh "tidb" {}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "tidb"
  namespace    = "pingcap-1"
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb" # another region: a different cluster
  namespace    = "pingcap-2"
}

cluster "tidb-3" {
  region       = "us-west-1"
  kube_context = "c"
  eks_cluster  = "tidb" # ERROR: Duplicate EKS cluster
  namespace    = "pingcap-3"
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
}

cluster "tidb-1" { # ERROR: Duplicate cluster name
  region       = "us-east-1"
  kube_context = "c"
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
}

mesh "tidb" {}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

cluster "tidb-2" { # ERROR: Missing required argument
  region         = "us-west-2"
  kube_context   = "b"
  eks_cluster    = "tidb-2"
  cluster_domain = "tidb-2.local"
}

mesh "tidb" {}

cluster "tidb-1" {
  region         = "us-west-1"
  kube_context   = "a"
  eks_cluster    = "tidb-1"
  namespace      = "PingCAP" # ERROR: Invalid namespace
  cluster_domain = "cluster.local." # ERROR: Invalid cluster domain
}

cluster "tidb-2" {
  region         = "us-west-2"
  kube_context   = "b"
  eks_cluster    = "tidb-2"
  namespace      = "pingcap.2" # ERROR: Invalid namespace
  cluster_domain = "Tidb_2.local" # ERROR: Invalid cluster domain
}

# replicate: clusters that are not members, as the source and as targets.
mesh "tidb" {}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
}

cluster "tidb-3" {
  region       = "us-east-1"
  kube_context = "c"
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
}

replicate "from-unknown" {
  from {
    cluster   = "tidb-9" # ERROR: Unknown cluster
    kind      = "Secret"
    namespace = "pingcap"
    name      = "ca-from-unknown"
  }
}

replicate "to-unknown" {
  from {
    cluster   = "tidb-1"
    kind      = "Secret"
    namespace = "pingcap"
    name      = "ca-to-unknown"
  }
  to = ["tidb-2", "tidb-9"] # ERROR: Unknown cluster
}

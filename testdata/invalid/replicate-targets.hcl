# replicate: a target list naming the source and a cluster twice.
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

replicate "ca" {
  from {
    cluster   = "tidb-1"
    kind      = "Secret"
    namespace = "pingcap"
    name      = "cluster1-ca-secret"
  }
  to = [
    "tidb-2",
    "tidb-1", # ERROR: Copy onto the source
    "tidb-3",
    "tidb-2", # ERROR: Duplicate list entry
  ]
}

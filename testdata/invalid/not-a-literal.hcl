mesh "tidb" {}

cluster "tidb-1" {
  region       = var.region # ERROR: Variables not allowed
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = lower("PINGCAP-1") # ERROR: Function calls not allowed
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-${local.n}" # ERROR: Variables not allowed
}

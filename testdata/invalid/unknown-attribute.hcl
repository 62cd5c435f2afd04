mesh "tidb" {
  forward_by = "namespace" # ERROR: Unsupported argument
}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
  vpc_cidr     = "10.1.0.0/16" # ERROR: Unsupported argument
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
}

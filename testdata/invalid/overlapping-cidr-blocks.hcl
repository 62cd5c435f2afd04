mesh "tidb" {}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
  cidr_blocks  = ["10.0.0.0/16"]
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
  cidr_blocks  = ["10.1.0.0/16", "10.0.128.0/17"] # ERROR: Overlapping CIDR blocks
}

cluster "tidb-3" {
  region       = "us-east-1"
  kube_context = "c"
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
  cidr_blocks  = ["10.2.0.0/16"]
}

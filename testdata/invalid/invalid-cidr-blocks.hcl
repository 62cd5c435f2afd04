mesh "tidb" {}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
  cidr_blocks = [
    "10.1.0.1/16", # ERROR: Invalid CIDR block
    "10.2.0.0/33", # ERROR: Invalid CIDR block
    "10.3.0.0",    # ERROR: Invalid CIDR block
    "fd00::/8",    # ERROR: Invalid CIDR block
    "10.4.0.0/16",
  ]
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
}

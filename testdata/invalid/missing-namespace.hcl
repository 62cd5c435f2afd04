mesh "tidb" {}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

cluster "tidb-2" { # ERROR: Missing required argument
  region            = "us-west-2"
  kube_context      = "b"
  vpc_id            = "vpc-00000002"
  security_group_id = "sg-00000002"
  cluster_domain    = "tidb-2.local"
}

mesh "tidb" {}

cluster "tidb-1" {
  region            = "us-west-1"
  kube_context      = "a"
  vpc_id            = "vpc-1a2b3c4d"
  security_group_id = "sg-1a2b3c4d"
  route_table_ids   = [] # ERROR: No route tables listed
  cidr_blocks       = [] # ERROR: No CIDR blocks listed
  namespace         = "pingcap-1"
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
}

mesh "tidb" {
  adopt = "maybe" # ERROR: Incorrect attribute value type
}

cluster "tidb-1" {
  region            = ["us-west-1"] # ERROR: Incorrect attribute value type
  kube_context      = "a"
  vpc_id            = "vpc-1a2b3c4d"
  security_group_id = "sg-1a2b3c4d"
  route_table_ids   = "rtb-1a2b3c4d" # ERROR: Incorrect attribute value type
  namespace         = "pingcap-1"
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
  cidr_blocks  = ["10.2.0.0/16", null] # ERROR: Incorrect attribute value type
}

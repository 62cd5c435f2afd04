mesh "tidb" {}

cluster "tidb-1" {
  region            = "us-west-1"
  kube_context      = "a"
  vpc_id            = "vpc-1a2b3c4d"
  security_group_id = "sg-1a2b3c4d"
  route_table_ids = [
    "rtb-1a2b3c4d",
    "rtb-5e6f7a8b",
    "rtb-1a2b3c4d", # ERROR: Duplicate route table ID
  ]
  cidr_blocks = ["10.1.0.0/16", "10.1.0.0/16"] # ERROR: Duplicate CIDR block
  namespace   = "pingcap-1"
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
}

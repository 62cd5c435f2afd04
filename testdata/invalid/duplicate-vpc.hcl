mesh "tidb" {}

cluster "tidb-1" {
  region            = "us-west-1"
  kube_context      = "a"
  vpc_id            = "vpc-0b15ed35c02af5288"
  security_group_id = "sg-0cb299e7ec153c595"
  cidr_blocks       = ["10.1.0.0/16"]
  namespace         = "pingcap-1"
}

cluster "tidb-2" {
  region            = "us-west-1"
  kube_context      = "b"
  vpc_id            = "vpc-0b15ed35c02af5288" # ERROR: Duplicate VPC
  security_group_id = "sg-1a2b3c4d"
  cidr_blocks       = ["10.1.0.0/16"]
  namespace         = "pingcap-2"
}

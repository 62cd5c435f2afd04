mesh "tidb" {}

cluster "tidb-1" {
  region            = "us-west-1"
  kube_context      = "a"
  vpc_id            = "vpc-0b15ed35c02af528" # ERROR: Invalid VPC ID
  security_group_id = "sg-nodes" # ERROR: Invalid security group ID
  route_table_ids   = ["rtb-0e4c2c6a8b5f3d1a7", "rtb-XYZ", "RTB-1A2B3C4D"] # ERROR: Invalid route table ID # ERROR: Invalid route table ID
  namespace         = "pingcap-1"
}

cluster "tidb-2" {
  region            = "us-west-2"
  kube_context      = "b"
  vpc_id            = "arn:aws:ec2:us-west-2:123456789012:vpc/vpc-1a2b3c4d" # ERROR: Invalid VPC ID
  security_group_id = "sg-1a2b3c4d"
  namespace         = "pingcap-2"
}

cluster "tidb-3" {
  region       = "us-east-1"
  kube_context = "c"
  eks_cluster  = "-tidb-3" # ERROR: Invalid EKS cluster name
  namespace    = "pingcap-3"
}

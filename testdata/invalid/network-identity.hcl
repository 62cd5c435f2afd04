mesh "tidb" {}

cluster "neither" { # ERROR: Missing network identity
  region       = "us-west-1"
  kube_context = "a"
  namespace    = "ns-a"
}

cluster "both" {
  region            = "us-west-2"
  kube_context      = "b"
  eks_cluster       = "both"
  vpc_id            = "vpc-1a2b3c4d" # ERROR: Conflicting network identity
  security_group_id = "sg-1a2b3c4d"
  namespace         = "ns-b"
}

cluster "eks-with-sg" {
  region            = "us-east-1"
  kube_context      = "c"
  eks_cluster       = "eks-with-sg"
  security_group_id = "sg-2a2b3c4d" # ERROR: Conflicting network identity
  namespace         = "ns-c"
}

cluster "eks-with-route-tables" {
  region          = "us-east-2"
  kube_context    = "d"
  eks_cluster     = "eks-with-route-tables"
  route_table_ids = ["rtb-1a2b3c4d"] # ERROR: Conflicting network identity
  namespace       = "ns-d"
}

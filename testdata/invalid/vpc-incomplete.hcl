mesh "tidb" {}

cluster "vpc-only" { # ERROR: Missing security_group_id
  region       = "us-west-1"
  kube_context = "a"
  vpc_id       = "vpc-1a2b3c4d"
  namespace    = "ns-a"
}

cluster "sg-only" { # ERROR: Missing vpc_id
  region            = "us-west-2"
  kube_context      = "b"
  security_group_id = "sg-1a2b3c4d"
  namespace         = "ns-b"
}

cluster "route-tables-only" { # ERROR: Missing vpc_id # ERROR: Missing security_group_id
  region          = "us-east-1"
  kube_context    = "c"
  route_table_ids = ["rtb-1a2b3c4d"]
  namespace       = "ns-c"
}

mesh "tidb" {
  topology = "hub" # ERROR: Invalid topology

  transit_gateway "us-west-1" {
    id             = "tgw-XYZ" # ERROR: Invalid transit gateway ID
    route_table_id = "rtb-0123456789abcdef0" # ERROR: Invalid transit gateway route table ID
    summary_cidrs  = ["10.0.0.0/33"] # ERROR: Invalid CIDR block
  }

  transit_gateway "us-west-1" { # ERROR: Duplicate transit_gateway block
  }

  transit_gateway "us-west-2" {
    route_table_id     = "tgw-rtb-0123456789abcdef0" # ERROR: Route table of a gateway meshd creates
    attachment_subnets = { "tidb-9" = ["subnet-0123456789abcdef0"], "tidb-1" = ["subnet-0123456789abcdef0"] } # ERROR: Unknown cluster # ERROR: Cluster in another region
  }

  transit_gateway "us-west-l" { # ERROR: Invalid region
  }
}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
}

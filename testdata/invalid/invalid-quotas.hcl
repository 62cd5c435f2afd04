mesh "tidb" {
  quotas {
    peerings_per_vpc        = 0 # ERROR: Invalid quota
    routes_per_route_table  = -50 # ERROR: Invalid quota
    inbound_rules_per_group = 60.5 # ERROR: Invalid quota
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

# Networks named directly, narrowed to some route tables and CIDR blocks; quotas raised; adoption on.
mesh "etcd" {
  adopt = true

  dns {
    forward_by = "namespace"
  }

  quotas {
    peerings_per_vpc        = 125
    routes_per_route_table  = 1000
    inbound_rules_per_group = 200
  }
}

cluster "dp-1" {
  region            = "eu-central-1"
  kube_context      = "dp-1"
  vpc_id            = "vpc-0b15ed35c02af5288"
  security_group_id = "sg-0cb299e7ec153c595"
  route_table_ids   = ["rtb-0e4c2c6a8b5f3d1a7", "rtb-1a2b3c4d"]
  cidr_blocks       = ["10.1.0.0/16", "100.64.0.0/20"]
  namespace         = "etcd"
}

cluster "dp-2" {
  region            = "ap-southeast-2"
  kube_context      = "dp-2"
  vpc_id            = "vpc-1a2b3c4d"
  security_group_id = "sg-5e6f7a8b"
  cidr_blocks       = ["10.2.0.0/16"]
  namespace         = "etcd-2"
}

# Every feature that makes an AWS call, for meshctl iam-policy's goldens and the action-coverage test
# (cmd/meshd/iampolicy_test.go): eks_cluster members, a member in another account (assume_role) with its
# VPC, group and route tables named, the EKS CoreDNS add-on path, a load_balancer block, adopt = true, and
# an external member (no AWS call).

mesh "acme" {
  adopt = true
  dns {
    corefile_via = "eks_addon"
  }
}

cluster "a" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "eks-a"
  namespace    = "acme-a"
}

cluster "b" {
  region            = "us-east-1"
  kube_context      = "b"
  vpc_id            = "vpc-0b2c3d4e5f6071829"
  security_group_id = "sg-0b2c3d4e5f6071829"
  route_table_ids   = ["rtb-0b2c3d4e5f6071829"]
  assume_role       = "arn:aws:iam::111111111111:role/meshd"
  external_id       = "acme-mesh"
  namespace         = "acme-b"
}

cluster "c" {
  region       = "us-west-1"
  kube_context = "c"
  eks_cluster  = "eks-c"
  namespace    = "acme-c"
}

cluster "edge" {
  network      = "external"
  kube_context = "edge"
  namespace    = "acme-edge"
  dns {
    node_addresses = ["192.0.2.10"]
  }
}

load_balancer "web" {
  primary     = "a"
  namespace   = "default"
  service     = "web"
  secondaries = ["c"]
}

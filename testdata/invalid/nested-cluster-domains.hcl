# One cluster's domain inside another's: each would answer names of the other's from its own blocks.
mesh "kb" {
  dns {
    forward_by = "cluster_domain"
  }
}

cluster "outer" {
  region            = "us-east-1"
  kube_context      = "outer"
  vpc_id            = "vpc-00000001"
  security_group_id = "sg-00000001"
  cluster_domain    = "local"
}

cluster "inner" {
  region            = "us-west-2"
  kube_context      = "inner"
  vpc_id            = "vpc-00000002"
  security_group_id = "sg-00000002"
  cluster_domain    = "east.local" # ERROR: Nested cluster domains
}

cluster "default" { # ERROR: Nested cluster domains
  region            = "ca-central-1"
  kube_context      = "default"
  vpc_id            = "vpc-00000003"
  security_group_id = "sg-00000003"
}

cluster "holder" {
  region            = "ca-central-1"
  kube_context      = "holder"
  vpc_id            = "vpc-00000004"
  security_group_id = "sg-00000004"
  cluster_domain    = "com"
}

cluster "held" {
  region            = "us-west-1"
  kube_context      = "held"
  vpc_id            = "vpc-00000005"
  security_group_id = "sg-00000005"
  cluster_domain    = "cluster1.com" # ERROR: Nested cluster domains
}

cluster "sibling" {
  region            = "us-west-1"
  kube_context      = "sibling"
  vpc_id            = "vpc-00000006"
  security_group_id = "sg-00000006"
  cluster_domain    = "cluster2.com" # ERROR: Nested cluster domains
}

cluster "suffix-only" {
  region            = "us-west-1"
  kube_context      = "suffix-only"
  vpc_id            = "vpc-00000007"
  security_group_id = "sg-00000007"
  cluster_domain    = "xcluster1.org"
}

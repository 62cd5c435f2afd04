mesh "kb" {
  dns {
    forward_by = "cluster_domain"
  }
}

cluster "east" {
  region            = "us-east-1"
  kube_context      = "east"
  vpc_id            = "vpc-00000001"
  security_group_id = "sg-00000001"
  cluster_domain    = "mesh.local"
}

cluster "west" {
  region            = "us-west-2"
  kube_context      = "west"
  vpc_id            = "vpc-00000002"
  security_group_id = "sg-00000002"
  cluster_domain    = "mesh.local" # ERROR: Duplicate cluster domain
}

cluster "central-1" {
  region            = "ca-central-1"
  kube_context      = "central-1"
  vpc_id            = "vpc-00000003"
  security_group_id = "sg-00000003"
}

cluster "central-2" { # ERROR: Duplicate cluster domain
  region            = "ca-central-1"
  kube_context      = "central-2"
  vpc_id            = "vpc-00000004"
  security_group_id = "sg-00000004"
}

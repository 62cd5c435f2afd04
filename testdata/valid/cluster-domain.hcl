# Self-managed clusters told apart by their cluster domains; the namespaces may then repeat or be omitted.
mesh "kb" {
  dns {
    forward_by = "cluster_domain"
  }
}

cluster "east" {
  region            = "us-east-1"
  kube_context      = "kind-east"
  vpc_id            = "vpc-00000001"
  security_group_id = "sg-00000001"
  cluster_domain    = "east.local"
  namespace         = "kb"
}

cluster "west" {
  region            = "us-west-2"
  kube_context      = "kind-west"
  vpc_id            = "vpc-00000002"
  security_group_id = "sg-00000002"
  cluster_domain    = "west.example.com"
  namespace         = "kb"
}

cluster "central" {
  region            = "ca-central-1"
  kube_context      = "kind-central"
  vpc_id            = "vpc-00000003"
  security_group_id = "sg-00000003"
}

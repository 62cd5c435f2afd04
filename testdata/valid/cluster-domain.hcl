# Self-managed clusters told apart by their cluster domains; the namespaces may then repeat or be omitted.
mesh "kb" {
  dns {
    forward_by = "cluster_domain"
  }
}

cluster "east" {
  region         = "us-east-1"
  kube_context   = "kind-east"
  eks_cluster    = "east"
  cluster_domain = "east.local"
  namespace      = "kb"
}

cluster "west" {
  region         = "us-west-2"
  kube_context   = "kind-west"
  eks_cluster    = "west"
  cluster_domain = "west.example.com"
  namespace      = "kb"
}

cluster "central" {
  region       = "ca-central-1"
  kube_context = "kind-central"
  eks_cluster  = "central"
}

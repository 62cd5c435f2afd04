mesh "kb" {
  dns {
    forward_by = "cluster_domain"
  }
}

cluster "east" {
  region         = "us-east-1"
  kube_context   = "east"
  eks_cluster    = "east"
  cluster_domain = "mesh.local"
}

cluster "west" {
  region         = "us-west-2"
  kube_context   = "west"
  eks_cluster    = "west"
  cluster_domain = "mesh.local" # ERROR: Duplicate cluster domain
}

cluster "central-1" {
  region       = "ca-central-1"
  kube_context = "central-1"
  eks_cluster  = "central-1"
}

cluster "central-2" { # ERROR: Duplicate cluster domain
  region       = "ca-central-1"
  kube_context = "central-2"
  eks_cluster  = "central-2"
}

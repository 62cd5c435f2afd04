# The AWS network only: meshd manages no DNS Service and no Corefile, and contacts no cluster.
mesh "net" {
  dns {
    enabled = false
  }
}

cluster "a" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "a"
  namespace    = "ns-a"
}

cluster "b" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "b"
  namespace    = "ns-b"
}

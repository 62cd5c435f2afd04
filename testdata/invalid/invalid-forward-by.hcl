mesh "tidb" {
  dns {
    forward_by = "zone" # ERROR: Invalid DNS forwarding mode
  }
}

# With the mode unknown, neither the missing namespace nor the shared cluster domain is reported.
cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "tidb-1"
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
}

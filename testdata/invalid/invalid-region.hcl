mesh "tidb" {}

cluster "tidb-1" {
  region       = "us-west" # ERROR: Invalid region
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

cluster "tidb-2" {
  region       = "us-west-2a" # ERROR: Invalid region
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
}

cluster "tidb-3" {
  region       = "US-EAST-1" # ERROR: Invalid region
  kube_context = "c"
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
}

cluster "tidb-4" {
  region       = "Oregon" # ERROR: Invalid region
  kube_context = "d"
  eks_cluster  = "tidb-4"
  namespace    = "pingcap-4"
}

cluster "tidb-5" {
  region       = "xx-west-1" # ERROR: Invalid region
  kube_context = "e"
  eks_cluster  = "tidb-5"
  namespace    = "pingcap-5"
}

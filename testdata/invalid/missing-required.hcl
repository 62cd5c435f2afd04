mesh "tidb" {}

cluster "tidb-1" { # ERROR: Missing required argument
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

cluster "tidb-2" { # ERROR: Missing required argument
  region      = "us-west-2"
  eks_cluster = "tidb-2"
  namespace   = "pingcap-2"
}

cluster "tidb-3" { # ERROR: Missing required argument
  region       = null
  kube_context = "c"
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
}

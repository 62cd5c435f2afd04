# replicate: the from block missing, repeated, or without the object's name.
mesh "tidb" {}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
}

cluster "tidb-3" {
  region       = "us-east-1"
  kube_context = "c"
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
}

replicate "no-from" { # ERROR: Missing from block
  to = ["tidb-2"]
}

replicate "two-froms" {
  from {
    cluster   = "tidb-1"
    kind      = "Secret"
    namespace = "pingcap"
    name      = "first"
  }
  from { # ERROR: Duplicate from block
    cluster   = "tidb-2"
    kind      = "Secret"
    namespace = "pingcap"
    name      = "second"
  }
}

replicate "no-name" {
  from { # ERROR: Missing required argument
    cluster   = "tidb-1"
    kind      = "ConfigMap"
    namespace = "pingcap"
  }
}

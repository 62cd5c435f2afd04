# replicate: two blocks of one name, two blocks writing one copy, and a target list that is empty.
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

replicate "ca" {
  from {
    cluster   = "tidb-1"
    kind      = "Secret"
    namespace = "pingcap"
    name      = "cluster1-ca-secret"
  }
  to = ["tidb-2"]
}

replicate "ca" { # ERROR: Duplicate replicate name
  from {
    cluster   = "tidb-1"
    kind      = "Secret"
    namespace = "pingcap"
    name      = "other-ca-secret"
  }
  to = ["tidb-3"]
}

# The same Secret of another cluster, copied to tidb-2's pingcap namespace as well.
replicate "ca-again" { # ERROR: Two copies of one object
  from {
    cluster   = "tidb-3"
    kind      = "Secret"
    namespace = "pingcap"
    name      = "cluster1-ca-secret"
  }
  to = ["tidb-2"]
}

replicate "reader" {
  from {
    cluster = "tidb-1"
    kind    = "ClusterRole"
    name    = "meshd-reader"
  }
  to = [] # ERROR: Empty target list
}

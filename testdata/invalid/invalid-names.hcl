mesh "TiDB" {} # ERROR: Invalid mesh name

cluster "tidb_1" { # ERROR: Invalid cluster name
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

cluster "tidb-2-with-a-name-that-is-much-too-long-to-be-a-kubernetes-label" { # ERROR: Invalid cluster name
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
}

cluster "" { # ERROR: Invalid cluster name
  region       = "us-east-1"
  kube_context = "c"
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
}

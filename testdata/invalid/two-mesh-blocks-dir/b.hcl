mesh "tidb" { # ERROR: Duplicate mesh block
  adopt = true
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
}

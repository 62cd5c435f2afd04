mesh "tidb" {
  dns {
    corefile        = "kube-system/coredns"
    corefile_import = "kube-system/coredns-custom" # ERROR: Conflicting Corefile locations
  }
}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
  dns {
    corefile = "coredns" # ERROR: Invalid Corefile location
  }
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
  dns {
    corefile_import = "kube-system/coredns-custom:meshd.server" # ERROR: Invalid Corefile location
  }
}

cluster "tidb-3" {
  region       = "us-east-1"
  kube_context = "c"
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
  dns {
    corefile = "kube-system/coredns:Core file" # ERROR: Invalid Corefile location
  }
}

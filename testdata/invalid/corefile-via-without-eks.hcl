mesh "tidb" {
  dns {
    corefile_via = "eks_addon"
  }
}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

cluster "tidb-2" { # WARNING: No EKS add-on to configure
  region            = "us-west-2"
  kube_context      = "b"
  vpc_id            = "vpc-0b15ed35c02af5288"
  security_group_id = "sg-0cb299e7ec153c595"
  namespace         = "pingcap-2"
}

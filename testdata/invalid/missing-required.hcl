mesh "tidb" {}

cluster "tidb-1" { # ERROR: Missing required argument
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

# Without eks_cluster nothing says where the API server is: kube_context is required.
cluster "tidb-2" { # ERROR: Missing required argument
  region            = "us-west-2"
  vpc_id            = "vpc-0b15ed35c02af5288"
  security_group_id = "sg-0cb299e7ec153c595"
  namespace         = "pingcap-2"
}

cluster "tidb-3" { # ERROR: Missing required argument
  region       = null
  kube_context = "c"
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
}

mesh "tidb" {}

cluster "tidb-1" {
  region      = "us-west-1"
  eks_cluster = "tidb-1"
  kube_auth   = "aws" # ERROR: Invalid kube_auth
  namespace   = "pingcap-1"
}

# kube_auth = "eks" needs an endpoint: DescribeCluster of eks_cluster, or kube_context's cluster entry.
cluster "tidb-2" {
  region            = "us-west-2"
  vpc_id            = "vpc-0b15ed35c02af5288"
  security_group_id = "sg-0cb299e7ec153c595"
  kube_auth         = "eks" # ERROR: Nowhere to reach the cluster
  namespace         = "pingcap-2"
}

# kube_auth = "kubeconfig" needs a context even with eks_cluster.
cluster "tidb-3" { # ERROR: Missing required argument
  region      = "us-east-1"
  eks_cluster = "tidb-3"
  kube_auth   = "kubeconfig"
  namespace   = "pingcap-3"
}

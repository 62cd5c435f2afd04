# EKS builds every cluster with cluster.local: another cluster_domain cannot be served there, in either mode.
mesh "tidb" {}

cluster "tidb-1" {
  region         = "us-west-1"
  kube_context   = "tidb-1"
  eks_cluster    = "tidb-1"
  namespace      = "pingcap-1"
  cluster_domain = "cluster1.com" # ERROR: Cluster domain not possible on EKS
}

cluster "tidb-2" {
  region         = "us-west-2"
  kube_context   = "tidb-2"
  eks_cluster    = "tidb-2"
  namespace      = "pingcap-2"
  cluster_domain = "cluster.local"
}

cluster "tidb-3" {
  region            = "us-east-1"
  kube_context      = "tidb-3"
  vpc_id            = "vpc-00000003"
  security_group_id = "sg-00000003"
  namespace         = "pingcap-3"
  cluster_domain    = "cluster3.com"
}

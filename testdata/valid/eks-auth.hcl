# meshd signs in to EKS itself: by default for a member with eks_cluster and no kube_context, and with
# kube_auth = "eks" through a context that names only the server (a private endpoint, say).
mesh "tidb" {}

cluster "tidb-1" {
  region      = "us-west-1"
  eks_cluster = "tidb-1"
  namespace   = "pingcap-1"
}

cluster "tidb-2" {
  region            = "us-west-2"
  kube_context      = "tidb-2-private"
  kube_auth         = "eks"
  vpc_id            = "vpc-0b15ed35c02af5288"
  security_group_id = "sg-0cb299e7ec153c595"
  namespace         = "pingcap-2"
  assume_role       = "arn:aws:iam::111111111111:role/meshd"
}

cluster "tidb-3" {
  region       = "us-east-1"
  kube_context = "pingcap@tidb-3.us-east-1.eksctl.io"
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
}

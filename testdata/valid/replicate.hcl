# Replicate blocks: a CA Secret to every other member (to left out), and an aggregated ClusterRole to one.
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

replicate "tidb-ca" {
  from {
    cluster   = "tidb-1"
    kind      = "Secret"
    namespace = "pingcap-1"
    name      = "cluster1-ca-secret"
  }
  namespace = "pingcap"
}

replicate "kubeblocks-pod-role" {
  from {
    cluster = "tidb-1"
    kind    = "ClusterRole"
    name    = "kubeblocks-cluster-pod-role"
  }
  to = ["tidb-3"]
}

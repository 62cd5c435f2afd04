# replicate: kinds it cannot copy, and namespaces that do not fit the kind.
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

replicate "pod" {
  from {
    cluster   = "tidb-1"
    kind      = "Pod" # ERROR: Unsupported kind
    namespace = "pingcap"
    name      = "tidb-0"
  }
}

replicate "secret-without-namespace" {
  from { # ERROR: Missing required argument
    cluster = "tidb-1"
    kind    = "Secret"
    name    = "cluster1-ca-secret"
  }
}

replicate "cluster-role-from-namespace" {
  from {
    cluster   = "tidb-1"
    kind      = "ClusterRole"
    namespace = "kb-system" # ERROR: Namespace of a cluster-scoped kind
    name      = "kubeblocks-cluster-pod-role"
  }
}

replicate "cluster-role-target-namespace" {
  from {
    cluster = "tidb-1"
    kind    = "ClusterRoleBinding"
    name    = "kubeblocks-cluster-pod-role"
  }
  namespace = "kb-system" # ERROR: Namespace of a cluster-scoped kind
}

# Replicate blocks that read from or write into a kube-* namespace, without allow_privileged.
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

# A ServiceAccount token Secret of kube-system, copied into a namespace its editor reads.
replicate "steal-token" {
  from {
    cluster   = "tidb-1"
    kind      = "Secret"
    namespace = "kube-system" # ERROR: Replication from a kube-* namespace
    name      = "namespace-controller-token"
  }
  namespace = "pingcap-2"
}

# namespace not set: the copy goes into kube-system as well; reported once, at the source.
replicate "coredns-config" {
  from {
    cluster   = "tidb-1"
    kind      = "ConfigMap"
    namespace = "kube-system" # ERROR: Replication from a kube-* namespace
    name      = "coredns-custom"
  }
}

# Into kube-system of the targets: a RoleBinding there grants to system accounts.
replicate "plant-binding" {
  from {
    cluster   = "tidb-1"
    kind      = "RoleBinding"
    namespace = "pingcap-1"
    name      = "ops"
  }
  namespace = "kube-system" # ERROR: Replication into a kube-* namespace
}

# Any kube-* namespace counts, both ways.
replicate "node-lease" {
  from {
    cluster   = "tidb-2"
    kind      = "ConfigMap"
    namespace = "kube-public" # ERROR: Replication from a kube-* namespace
    name      = "cluster-info"
  }
  namespace = "kube-node-lease" # ERROR: Replication into a kube-* namespace
}

# A namespace merely starting with "kube" is not one of Kubernetes' own.
replicate "kubeblocks" {
  from {
    cluster   = "tidb-1"
    kind      = "ConfigMap"
    namespace = "kubeblocks"
    name      = "settings"
  }
}

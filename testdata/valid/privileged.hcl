# allow_privileged = true lets every privileged block through: replication from and into kube-* namespaces,
# and a control plane bound to cluster-admin or a system: role.
mesh "ops" {
  allow_privileged = true
}

cluster "a" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "a"
  namespace    = "ops-a"
}

cluster "b" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "b"
  namespace    = "ops-b"
}

replicate "registry-credentials" {
  from {
    cluster   = "a"
    kind      = "Secret"
    namespace = "kube-system"
    name      = "registry"
  }
}

replicate "bootstrap" {
  from {
    cluster   = "a"
    kind      = "RoleBinding"
    namespace = "ops-a"
    name      = "bootstrap"
  }
  namespace = "kube-public"
}

control_plane "admin" {
  cluster      = "a"
  secret       = "ops-a/data-planes"
  cluster_role = "cluster-admin"
}

control_plane "controller" {
  cluster      = "b"
  secret       = "ops-b/data-planes"
  cluster_role = "system:aggregate-to-admin"
}

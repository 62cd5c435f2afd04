# Control planes bound to built-in admin-like ClusterRoles, without allow_privileged.
mesh "kb" {
  allow_privileged = false
}

cluster "k8s-0" {
  region       = "us-west-1"
  kube_context = "k0"
  eks_cluster  = "k8s-0"
  namespace    = "kb-0"
}

cluster "k8s-1" {
  region       = "us-west-2"
  kube_context = "k1"
  eks_cluster  = "k8s-1"
  namespace    = "kb-1"
}

control_plane "admin" {
  cluster      = "k8s-0"
  secret       = "kb-system/admin"
  cluster_role = "cluster-admin" # ERROR: Admin-like ClusterRole
}

control_plane "ns-admin" {
  cluster      = "k8s-0"
  secret       = "kb-system/ns-admin"
  cluster_role = "admin" # ERROR: Admin-like ClusterRole
}

control_plane "edit" {
  cluster      = "k8s-0"
  secret       = "kb-system/edit"
  cluster_role = "edit" # ERROR: Admin-like ClusterRole
}

control_plane "controller" {
  cluster      = "k8s-1"
  secret       = "kb-system/controller"
  cluster_role = "system:controller:clusterrole-aggregation-controller" # ERROR: Admin-like ClusterRole
}

# view reads no Secrets and grants nothing: not admin-like.
control_plane "view" {
  cluster      = "k8s-1"
  secret       = "kb-system/view"
  cluster_role = "view"
}

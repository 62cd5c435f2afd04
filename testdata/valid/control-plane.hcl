# A KubeBlocks control plane: one with its data planes named, one with the defaults (every other member,
# tokens as files where KubeBlocks mounts the Secret, 24h tokens) and an api_server on a cluster.
mesh "kb" {}

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
  api_server   = "https://10.1.0.10:443"
}

cluster "k8s-2" {
  region       = "us-east-1"
  kube_context = "k2"
  eks_cluster  = "k8s-2"
  namespace    = "kb-2"
}

control_plane "kubeblocks" {
  cluster        = "k8s-0"
  data_planes    = ["k8s-2", "k8s-1"]
  secret         = "kb-system/kubeblocks-data-planes"
  cluster_role   = "kubeblocks-manager"
  token_ttl      = "2h"
  token_file_dir = ""
}

control_plane "defaults" {
  cluster      = "k8s-1"
  secret       = "kb-system/data-planes"
  cluster_role = "kubeblocks-cluster-pod-role"
}

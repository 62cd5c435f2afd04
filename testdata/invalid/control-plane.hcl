# control_plane: unknown clusters, the control plane as its own data plane, a repeated data plane, a bad
# Secret name, a short token lifetime, a relative token directory, a bad api_server, a missing cluster_role
# and two blocks writing one Secret.
mesh "kb" {}

cluster "k8s-0" {
  region       = "us-west-1"
  kube_context = "k0"
  eks_cluster  = "k8s-0"
  namespace    = "kb-0"
  api_server   = "http://10.0.0.1" # ERROR: Invalid API server
}

cluster "k8s-1" {
  region       = "us-west-2"
  kube_context = "k1"
  eks_cluster  = "k8s-1"
  namespace    = "kb-1"
}

control_plane "kubeblocks" {
  cluster        = "k8s-0"
  data_planes    = ["k8s-0", "k8s-1", "k8s-1", "k8s-9"] # ERROR: Control plane as its own data plane # ERROR: Duplicate list entry # ERROR: Unknown cluster
  secret         = "kubeblocks-data-planes" # ERROR: Invalid Secret name
  cluster_role   = "kb-manager"
  token_ttl      = "5m" # ERROR: Token lifetime too short
  token_file_dir = "secrets/kb" # ERROR: Invalid token directory
}

control_plane "other" { # ERROR: Missing required argument
  cluster = "k8s-7" # ERROR: Unknown cluster
  secret  = "kb-system/x"
}

control_plane "again" {
  cluster      = "k8s-1"
  secret       = "kb-system/x"
  cluster_role = "view"
  token_ttl    = "a day" # ERROR: Invalid duration
}

control_plane "same-secret" {
  cluster      = "k8s-1"
  secret       = "kb-system/x" # ERROR: Two control planes write one Secret
  cluster_role = "view"
}

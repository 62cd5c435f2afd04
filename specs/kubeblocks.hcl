# Example meshd spec: KubeBlocks multi-cluster, its operator in the control-plane cluster k8s-0 and its
# database Pods in the data planes k8s-1, k8s-2 and k8s-3.
#
# The mesh connects the four VPCs (peering, routes, security-group rules, CoreDNS forwarding by namespace),
# so that the replicas of a KubeBlocks cluster reach each other across clusters. On top of it:
#
# - replicate "kubeblocks-pod-role" copies KubeBlocks' aggregated ClusterRole kubeblocks-cluster-pod-role
#   from the control plane into every data plane (flattened: the data planes have no roles to aggregate),
#   for the Pods the operator creates there, whose ServiceAccounts it binds to that role;
# - control_plane "kubeblocks" gives the operator its kubeconfig: in each data plane meshd creates the
#   ServiceAccount kube-system/meshd-cp-kubeblocks bound to cluster_role (the operator manages Pods,
#   Services, PVCs and RBAC there: cluster-admin, or a role of your own as wide), requests a token for it
#   (TokenRequest, token_ttl), and writes into the control plane the Secret kb-system/kubeblocks-data-planes
#   (type kubernetes.kubeconfig): the key kubeconfig with one context per data plane, named after the
#   cluster, whose user reads its token from <token_file_dir>/<cluster>.token, and those tokens as further
#   keys of the same Secret. meshd renews each token once 80% of its lifetime has passed (meshctl apply, and
#   meshd on a timer of its own); client-go re-reads a tokenFile, so the operator, which reads the kubeconfig
#   once at start-up, keeps working without a restart.
#
# token_file_dir is where KubeBlocks mounts the Secret in its manager and dataprotection Deployments. Install
# KubeBlocks in the control plane with that Secret and the data planes' contexts:
#
#   kbcli kubeblocks install --set multiCluster.kubeConfig=kubeblocks-data-planes \
#     --set multiCluster.contexts="k8s-1,k8s-2,k8s-3"
#
# The namespace kb-system must exist in k8s-0 (meshd does not create namespaces).
#
#   meshctl validate --spec specs/kubeblocks.hcl
#   meshctl plan --spec specs/kubeblocks.hcl
#
# The full reference is docs/spec.md ("control_plane blocks").

mesh "kubeblocks" {
  # The operator manages Pods, Services, PVCs and RBAC in the data planes, which takes an admin-like role
  # there (cluster_role below): meshd refuses to bind one, and to write its tokens into a Secret, unless the
  # mesh says so. With it, the Secret kb-system/kubeblocks-data-planes in k8s-0 holds admin tokens of every
  # data plane, and write access to this spec (its ConfigMap) is as sensitive as meshd's own credentials:
  # restrict both. See docs/spec.md, "Privileged blocks".
  allow_privileged = true

  dns {
    forward_by = "namespace"
  }
}

cluster "k8s-0" {
  region       = "us-west-2"
  kube_context = "admin@k8s-0.us-west-2.eksctl.io"
  eks_cluster  = "k8s-0"
  namespace    = "kb-system"
}

cluster "k8s-1" {
  region       = "us-west-2"
  kube_context = "admin@k8s-1.us-west-2.eksctl.io"
  eks_cluster  = "k8s-1"
  namespace    = "kb-dp-1"
}

cluster "k8s-2" {
  region       = "us-east-1"
  kube_context = "admin@k8s-2.us-east-1.eksctl.io"
  eks_cluster  = "k8s-2"
  namespace    = "kb-dp-2"
}

cluster "k8s-3" {
  region       = "eu-west-1"
  kube_context = "admin@k8s-3.eu-west-1.eksctl.io"
  eks_cluster  = "k8s-3"
  namespace    = "kb-dp-3"
}

replicate "kubeblocks-pod-role" {
  from {
    cluster = "k8s-0"
    kind    = "ClusterRole"
    name    = "kubeblocks-cluster-pod-role"
  }
}

control_plane "kubeblocks" {
  cluster        = "k8s-0"
  data_planes    = ["k8s-1", "k8s-2", "k8s-3"]
  secret         = "kb-system/kubeblocks-data-planes"
  cluster_role   = "cluster-admin"
  token_ttl      = "24h"
  token_file_dir = "/var/run/secrets/kubeblocks.io/multicluster"
}

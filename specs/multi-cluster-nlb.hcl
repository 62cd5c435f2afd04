# Example meshd spec: one NLB target group fed by Pods of two EKS clusters (AWS Load Balancer Controller
# v2.10+ multi-cluster TargetGroupBindings).
#
# In the primary, Service default/nginx is of type LoadBalancer and LBC makes its NLB and target group. meshd
# annotates that Service (service.beta.kubernetes.io/aws-load-balancer-multi-cluster-target-group: "true",
# and deletion_protection.enabled=true in its aws-load-balancer-attributes), waits for LBC's
# TargetGroupBinding to be multi-cluster, and writes a TargetGroupBinding for the same target group in each
# secondary, whose LBC then registers that cluster's nginx Pods too. Each secondary needs the Service
# default/nginx (ClusterIP is enough) and LBC v2.10+ installed. The clusters are peered by the mesh.
#
#   meshctl plan --spec specs/multi-cluster-nlb.hcl
#
# The full reference is docs/spec.md ("load_balancer blocks").

mesh "web" {}

cluster "pri-eks-clu1" {
  region       = "us-west-2"
  kube_context = "web@pri-eks-clu1.us-west-2.eksctl.io"
  eks_cluster  = "pri-eks-clu1"
  namespace    = "web-1"
}

cluster "sec-eks-clu1" {
  region       = "us-west-2"
  kube_context = "web@sec-eks-clu1.us-west-2.eksctl.io"
  eks_cluster  = "sec-eks-clu1"
  namespace    = "web-2"
}

load_balancer "nginx" {
  primary             = "pri-eks-clu1"
  namespace           = "default"
  service             = "nginx"
  secondaries         = ["sec-eks-clu1"]
  deletion_protection = true
}

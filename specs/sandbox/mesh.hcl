# The sandbox's mesh: the three simulated EKS clusters that `make demo` (scripts/demo.sh) starts on this
# machine with `sandbox up` (moto for AWS, a kube-apiserver and a CoreDNS per cluster).
#
# The text is independent of the IDs moto generates: each cluster names its EKS cluster, and meshd discovers
# the VPC, its CIDR blocks, the route tables of its subnets and the node security group from EKS and EC2.
# The kube contexts are those of .sandbox/kubeconfig, named as eksctl names them.
#
#   bin/sandbox up && source .sandbox/env
#   meshctl validate --spec specs/sandbox
#   meshctl plan --spec specs/sandbox --state .sandbox/meshd.state.json

mesh "tidb" {
  dns {
    forward_by = "namespace"
  }
}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "pingcap@tidb-1.us-west-1.eksctl.io"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "pingcap@tidb-2.us-west-2.eksctl.io"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
}

cluster "tidb-3" {
  region       = "us-east-1"
  kube_context = "pingcap@tidb-3.us-east-1.eksctl.io"
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
}

mesh "tidb" {}

cluster "tidb-1" {
  region       = "us-west-1"
  kube_context = "a"
  eks_cluster  = "tidb-1"
  namespace    = "pingcap-1"
  assume_role  = "arn:aws:iam::1111:role/meshd" # ERROR: Invalid role ARN
}

cluster "tidb-2" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "tidb-2"
  namespace    = "pingcap-2"
  assume_role  = "arn:aws:iam::111111111111:user/meshd" # ERROR: Invalid role ARN
}

cluster "tidb-3" {
  region       = "us-east-1"
  kube_context = "c"
  eks_cluster  = "tidb-3"
  namespace    = "pingcap-3"
  external_id  = "mesh-tidb" # ERROR: external_id without assume_role
}

cluster "tidb-4" {
  region       = "us-east-2"
  kube_context = "d"
  eks_cluster  = "tidb-4"
  namespace    = "pingcap-4"
  assume_role  = "arn:aws:iam::111111111111:role/ops/meshd" # a path is fine
  external_id  = "x" # ERROR: Invalid external ID
}

# Every partition whose regions are accepted has its roles accepted (aws-iso-f: us-isof-*).
cluster "tidb-5" {
  region       = "us-isof-south-1"
  kube_context = "e"
  eks_cluster  = "tidb-5"
  namespace    = "pingcap-5"
  assume_role  = "arn:aws-iso-f:iam::111111111111:role/meshd"
}

cluster "tidb-6" {
  region       = "eusc-de-east-1"
  kube_context = "f"
  eks_cluster  = "tidb-6"
  namespace    = "pingcap-6"
  assume_role  = "arn:aws-eusc:iam::111111111111:role/meshd"
}

# A role of another partition than the cluster's region cannot be assumed there.
cluster "tidb-7" {
  region       = "cn-north-1"
  kube_context = "g"
  eks_cluster  = "tidb-7"
  namespace    = "pingcap-7"
  assume_role  = "arn:aws:iam::111111111111:role/meshd" # ERROR: Role in another partition
}

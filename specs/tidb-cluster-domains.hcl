# Example meshd spec: one TiDB cluster across three self-managed Kubernetes clusters, each built with a
# cluster domain of its own, as TiDB's multi-cluster guide lays them out.
#
# Each cluster's kubelet runs with --cluster-domain cluster1.com (cluster2.com, cluster3.com) and its
# CoreDNS's kubernetes plugin serves that domain; the TiDB components run in the namespace pingcap in all
# three and reach each other as <pod>.<peer-service>.pingcap.svc.<cluster domain>. With
# forward_by = "cluster_domain" each cluster's Corefile gets one server block per other cluster, forwarding
# that cluster's domain to its DNS load balancer; namespaces may therefore repeat. meshd checks each
# Corefile's kubernetes plugin against cluster_domain before it plans (error "Cluster domain not served").
#
# The clusters are not EKS clusters (EKS's cluster domain is always cluster.local), so their networks are
# named with vpc_id and security_group_id; meshd adds routes to every route table of each VPC (narrow it with
# route_table_ids).
#
#   meshctl validate --spec specs/tidb-cluster-domains.hcl
#   meshctl plan --spec specs/tidb-cluster-domains.hcl
#
# The full reference is docs/spec.md ("DNS forwarding").

mesh "tidb" {
  dns {
    forward_by = "cluster_domain"
  }
}

cluster "cluster1" {
  region            = "us-west-1"
  kube_context      = "admin@cluster1"
  vpc_id            = "vpc-0a1b2c3d4e5f60718"
  security_group_id = "sg-0a1b2c3d4e5f60718"
  namespace         = "pingcap"
  cluster_domain    = "cluster1.com"
}

cluster "cluster2" {
  region            = "us-west-2"
  kube_context      = "admin@cluster2"
  vpc_id            = "vpc-0b2c3d4e5f6071829"
  security_group_id = "sg-0b2c3d4e5f6071829"
  namespace         = "pingcap"
  cluster_domain    = "cluster2.com"
}

cluster "cluster3" {
  region            = "us-east-1"
  kube_context      = "admin@cluster3"
  vpc_id            = "vpc-0c3d4e5f607182930"
  security_group_id = "sg-0c3d4e5f607182930"
  namespace         = "pingcap"
  cluster_domain    = "cluster3.com"
}

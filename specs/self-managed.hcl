# Example meshd spec: three self-managed Kubernetes clusters in data centres, joined by Cilium ClusterMesh,
# each built with a cluster domain of its own.
#
# What you set up first (meshd does none of it):
#
# - Cilium ClusterMesh between dc1, dc2 and dc3, so that a Pod of one cluster reaches the Pod IPs of the
#   others (each cluster with its own Cilium cluster name and ID, and Pod CIDRs that do not overlap: meshd
#   does not check them);
# - each cluster's kubelet with --cluster-domain dc1.local (dc2.local, dc3.local), served by the kubernetes
#   plugin of its CoreDNS;
# - in dc1 and dc2, MetalLB with an IPAddressPool named "dns" whose addresses the other clusters' Pods can
#   reach (advertised with L2 or BGP);
# - in dc3, node addresses that the other clusters' Pods can reach on the cluster's node port range (TCP).
#
# What meshd does: network = "external" tells it that it does not manage these networks, so it makes no
# VPC peerings, routes or security-group rules and calls no AWS API for them (the plan says so once). In
# each cluster it makes the DNS Service kube-system/across-cluster-dns-tcp (53/TCP, in front of CoreDNS):
# in dc1 and dc2 of type LoadBalancer with the MetalLB annotations below instead of the AWS NLB ones, in dc3
# of type NodePort (implied by node_addresses). With forward_by = "cluster_domain" each Corefile gets one
# server block per other cluster, forwarding that cluster's domain to the addresses MetalLB publishes in the
# Service's status.loadBalancer.ingress (followed when they change), or for dc3 to each node address at the
# Service's node port. meshctl verify checks the DNS and, with --probe, the probe layer of every pair; the
# network layers read "network not managed".
#
# The annotations use MetalLB's metallb.io/ prefix (v0.14.9 and later); older MetalLB reads
# metallb.universe.tf/address-pool and metallb.universe.tf/loadBalancerIPs.
#
#   meshctl validate --spec specs/self-managed.hcl
#   meshctl plan --spec specs/self-managed.hcl
#
# The full reference is docs/spec.md ("External members").

mesh "dc" {
  dns {
    forward_by = "cluster_domain"
  }
}

cluster "dc1" {
  network        = "external"
  kube_context   = "admin@dc1"
  namespace      = "pingcap"
  cluster_domain = "dc1.local"
  dns {
    service_type = "LoadBalancer"
    service_annotations = {
      "metallb.io/address-pool" = "dns"
    }
  }
}

cluster "dc2" {
  network        = "external"
  kube_context   = "admin@dc2"
  namespace      = "pingcap"
  cluster_domain = "dc2.local"
  dns {
    service_type = "LoadBalancer"
    service_annotations = {
      "metallb.io/address-pool"    = "dns"
      "metallb.io/loadBalancerIPs" = "192.168.20.53" # a fixed address from the pool
    }
  }
}

cluster "dc3" {
  network        = "external"
  kube_context   = "admin@dc3"
  namespace      = "pingcap"
  cluster_domain = "dc3.local"
  dns {
    node_addresses = ["192.168.30.11", "192.168.30.12", "192.168.30.13"]
  }
}

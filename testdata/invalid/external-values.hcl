# network and service_type values meshd does not know.
mesh "dc" {
  dns {
    forward_by = "cluster_domain"
  }
}

cluster "dc-1" {
  kube_context   = "dc-1"
  network        = "external"
  cluster_domain = "dc1.local"
  dns {
    service_type = "LoadBalancer"
  }
}

cluster "dc-5" {
  kube_context   = "dc-5"
  network        = "on-prem" # ERROR: Invalid network
  cluster_domain = "dc5.local"
  dns {
    service_type = "ClusterIP" # ERROR: Invalid DNS Service type
  }
}


# network = "external": AWS attributes, no way to reach the DNS, bad dns blocks, AWS members with external
# settings, external members in a load balancer.
mesh "dc" {
  dns {
    forward_by = "cluster_domain"
  }
}

cluster "aws-1" {
  region       = "us-west-2"
  kube_context = "aws-1"
  eks_cluster  = "aws-1"
  dns {
    service_type   = "NodePort" # ERROR: Not possible on an AWS member
    node_addresses = ["10.0.0.1"] # ERROR: Not possible on an AWS member
    service_annotations = { # ERROR: Annotation meshd sets
      "service.beta.kubernetes.io/aws-load-balancer-internal" = "false"
    }
  }
}

cluster "dc-1" {
  kube_context   = "dc-1"
  network        = "external"
  cluster_domain = "dc1.local"
  region         = "us-west-2" # ERROR: AWS attribute on an external member
  vpc_id         = "vpc-0b15ed35c02af5288" # ERROR: AWS attribute on an external member
  assume_role    = "arn:aws:iam::111122223333:role/meshd" # ERROR: AWS attribute on an external member
  dns {
    service_type = "LoadBalancer"
  }
}

cluster "dc-2" { # ERROR: No way to reach the cluster's DNS
  kube_context   = "dc-2"
  network        = "external"
  cluster_domain = "dc2.local"
}

cluster "dc-3" {
  kube_context   = "dc-3"
  network        = "external"
  cluster_domain = "dc3.local"
  dns {
    service_type = "NodePort" # ERROR: No way to reach the cluster's DNS
  }
}

cluster "dc-4" {
  kube_context   = "dc-4"
  network        = "external"
  cluster_domain = "dc4.local"
  dns {
    service_type   = "LoadBalancer"
    node_addresses = ["192.168.1.1", "node-1.dc", "192.168.1.1", "0.0.0.0"] # ERROR: Conflicting DNS Service settings # ERROR: Invalid node address # ERROR: Duplicate list entry # ERROR: Invalid node address
    service_annotations = {
      "metallb.universe.tf/address-pool" = "dns"
      "meshd.io/service-annotations"     = "x" # ERROR: Invalid annotation key
      "bad key"                          = "y" # ERROR: Invalid annotation key
    }
  }
}

load_balancer "web" {
  primary     = "dc-1" # ERROR: External member in a load balancer
  namespace   = "default"
  service     = "web"
  secondaries = ["aws-1", "dc-4"] # ERROR: External member in a load balancer
}

load_balancer "solo" { # ERROR: No secondary
  primary   = "aws-1"
  namespace = "default"
  service   = "solo"
}

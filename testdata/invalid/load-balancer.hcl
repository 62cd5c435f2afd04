# load_balancer: unknown clusters, the primary as a secondary, a duplicate, a bad port, missing arguments.
mesh "web" {}

cluster "a" {
  region       = "us-west-2"
  kube_context = "a"
  eks_cluster  = "a"
  namespace    = "web-1"
}

cluster "b" {
  region       = "us-west-2"
  kube_context = "b"
  eks_cluster  = "b"
  namespace    = "web-2"
}

load_balancer "nginx" {
  primary     = "a"
  namespace   = "default"
  service     = "nginx"
  secondaries = ["a", "c", "b", "b", "nope"] # ERROR: Primary listed as a secondary # ERROR: Unknown cluster # ERROR: Duplicate list entry # ERROR: Unknown cluster
  port        = 70000 # ERROR: Invalid port
}

load_balancer "web" { # ERROR: Missing required argument
  primary = "a"
}

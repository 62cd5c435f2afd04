# The sandbox's replicated object: the TiDB CA Secret, as cert-manager makes it in tidb-1, copied into
# tidb-2 and tidb-3 (every other member, since there is no `to`), in the same namespace. `make demo`
# creates the namespace pingcap in every cluster and the Secret in tidb-1 first (`bin/sandbox seed-ca`):
# without the namespace a plan fails ("Target namespace missing"), without the Secret it warns
# ("Replicated object missing") and copies nothing.
#
#   bin/sandbox secret tidb-2 pingcap cluster1-ca-secret   # key names and content hash of a copy

replicate "tidb-ca" {
  from {
    cluster   = "tidb-1"
    kind      = "Secret"
    namespace = "pingcap"
    name      = "cluster1-ca-secret"
  }
}

package corefile

// EKSDefault is the Corefile the EKS CoreDNS add-on installs in kube-system/coredns (with EKS's own
// indentation), and what an add-on update with conflict resolution OVERWRITE puts back: the drift meshd
// repairs. Tests and the sandbox seed clusters with it.
const EKSDefault = `.:53 {
    errors
    health {
        lameduck 5s
      }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
`

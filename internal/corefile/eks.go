package corefile

import "strings"

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

// nodeLocalTemplate is the Corefile of the node-local-dns ConfigMap in the upstream NodeLocal DNSCache
// manifest (kubernetes/kubernetes cluster/addons/dns/nodelocaldns/nodelocaldns.yaml).
const nodeLocalTemplate = `__PILLAR__DNS__DOMAIN__:53 {
    errors
    cache {
            success 9984 30
            denial 9984 5
    }
    reload
    loop
    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    health __PILLAR__LOCAL__DNS__:8080
    }
in-addr.arpa:53 {
    errors
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    }
ip6.arpa:53 {
    errors
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    }
.:53 {
    errors
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
    forward . __PILLAR__UPSTREAM__SERVERS__
    prometheus :9253
    }
`

// NodeLocalDefault is that Corefile after the install instructions' sed: the cluster domain, the cache's
// link-local address and the kube-dns Service address filled in, __PILLAR__CLUSTER__DNS__ and
// __PILLAR__UPSTREAM__SERVERS__ left for node-cache to fill at run time. Tests and the sandbox seed caches
// with it, as they seed CoreDNS with EKSDefault.
func NodeLocalDefault(domain, localIP, dnsServerIP string) string {
	return strings.NewReplacer("__PILLAR__DNS__DOMAIN__", domain, "__PILLAR__LOCAL__DNS__", localIP,
		"__PILLAR__DNS__SERVER__", dnsServerIP).Replace(nodeLocalTemplate)
}

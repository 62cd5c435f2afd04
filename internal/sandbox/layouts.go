package sandbox

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// The CoreDNS layouts a sandbox cluster can have (Cluster.Layout), each written from how the distribution
// ships CoreDNS:
//
//   - LayoutEKS (""): the EKS add-on. kube-system/coredns, key Corefile, EKS's default Corefile.
//   - LayoutK3s: k3s's manifests/coredns.yaml. kube-system/coredns holds k3s's default Corefile and the
//     NodeHosts file; its Corefile imports /etc/coredns/custom/*.override inside the .:53 block and
//     /etc/coredns/custom/*.server at the top level, from the optional ConfigMap kube-system/coredns-custom
//     that the Deployment mounts at /etc/coredns/custom. A new k3s cluster has no coredns-custom; the
//     sandbox seeds one with a user's key (K3sUserKey), which meshd must leave alone.
//   - LayoutRKE2: RKE2's rke2-coredns Helm chart. The ConfigMap is kube-system/rke2-coredns-rke2-coredns
//     (the chart's fullname), key Corefile; there is no kube-system/coredns. Its Corefile here is EKS's, so
//     that only the name differs from LayoutEKS.
//
// A k3s or RKE2 cluster is not in EKS: Start clears Cluster.EKS for them (their VPC is still made unless
// External), so that the EKS add-on stand-in does not claim them.
const (
	LayoutEKS  = ""
	LayoutK3s  = "k3s"
	LayoutRKE2 = "rke2"
)

// ConfigMap names and keys of the layouts (all in kube-system).
const (
	ConfigMapCoreDNS     = "coredns"
	ConfigMapRKE2CoreDNS = "rke2-coredns-rke2-coredns"
	// ConfigMapCoreDNSCustom is k3s's optional ConfigMap of imported files: keys ending in .server hold
	// server blocks, keys ending in .override plugin lines for the .:53 block.
	ConfigMapCoreDNSCustom = "coredns-custom"
	// K3sUserKey is the user's key the sandbox puts into coredns-custom, with K3sUserOverride (the log
	// plugin, so that the .:53 block logs each query: whether the key is imported can be seen in CoreDNS's
	// log).
	K3sUserKey      = "example.override"
	K3sUserOverride = "log\n"
	// K3sCustomMount is where the k3s CoreDNS Pod mounts coredns-custom; K3sConfigMount its own ConfigMap
	// (Corefile and NodeHosts).
	K3sCustomMount = "/etc/coredns/custom/"
	K3sConfigMount = "/etc/coredns/"
)

// K3sCorefile is the Corefile of kube-system/coredns in a new k3s cluster (manifests/coredns.yaml, with
// %{CLUSTER_DOMAIN}% filled in as k3s does) for the cluster domain "cluster.local".
const K3sCorefile = `.:53 {
    errors
    health
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    hosts /etc/coredns/NodeHosts {
      ttl 60
      reload 15s
      fallthrough
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
    import /etc/coredns/custom/*.override
}
import /etc/coredns/custom/*.server
`

// CoreDNSConfigMap is the kube-system ConfigMap holding the cluster's Corefile (key "Corefile").
func (c Cluster) CoreDNSConfigMap() string {
	if c.Layout == LayoutRKE2 {
		return ConfigMapRKE2CoreDNS
	}
	return ConfigMapCoreDNS
}

// nodeHosts is the NodeHosts key k3s writes into its coredns ConfigMap: one line per node, address and name.
func (c Cluster) nodeHosts() string {
	var b strings.Builder
	for i, a := range c.NodeAddresses() {
		fmt.Fprintf(&b, "%s %s-node-%d\n", a, c.Name, i+1)
	}
	return b.String()
}

// coreDNSData are the data, labels and extra ConfigMaps a new cluster of c's layout holds for CoreDNS.
func (c Cluster) coreDNSObjects() (data, labels map[string]string, extra map[string]map[string]string) {
	switch c.Layout {
	case LayoutK3s:
		return map[string]string{"Corefile": c.Corefile(), "NodeHosts": c.nodeHosts()}, nil,
			map[string]map[string]string{ConfigMapCoreDNSCustom: {K3sUserKey: K3sUserOverride}}
	case LayoutRKE2:
		return map[string]string{"Corefile": c.Corefile()}, map[string]string{
			"app.kubernetes.io/instance": "rke2-coredns", "app.kubernetes.io/managed-by": "Helm",
			"app.kubernetes.io/name": "rke2-coredns", "k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}, nil
	default:
		return map[string]string{"Corefile": c.Corefile()},
			map[string]string{"eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns"}, nil
	}
}

// coreDNSSyncer is the kubelet stand-in for the cluster's CoreDNS Pod, writing to dir/Corefile.
func (c Cluster) coreDNSSyncer(dir, kubeconfig string, logf func(string, ...any)) *CorefileSyncer {
	sy := &CorefileSyncer{Cluster: c.Name, Path: filepath.Join(dir, "Corefile"), ConfigMap: c.CoreDNSConfigMap(),
		Options: RenderOptions{Bind: c.DNS, Kubeconfig: kubeconfig, Context: c.Context}, Logf: logf}
	if c.Layout == LayoutK3s {
		// The Pod's volumes: coredns (Corefile, NodeHosts) at /etc/coredns, coredns-custom (optional) at
		// /etc/coredns/custom. Both land under dir: dir/NodeHosts and dir/custom/ (CustomDir).
		sy.Files, sy.Custom = []string{"NodeHosts"}, ConfigMapCoreDNSCustom
		sy.Options.Mounts = map[string]string{K3sConfigMount: dir + "/", K3sCustomMount: sy.CustomDir() + "/"}
	}
	return sy
}

// WithLayout is a modify for StartT and StartNT: the named clusters get layout.
func WithLayout(layout string, names ...string) func(*Cluster) {
	return func(c *Cluster) {
		if slices.Contains(names, c.Name) {
			c.Layout = layout
		}
	}
}

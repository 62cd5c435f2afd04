package sandbox

import (
	"path/filepath"
	"slices"

	"github.com/meshd-io/meshd/internal/corefile"
)

// NodeLocal DNSCache, as kubernetes/kubernetes cluster/addons/dns/nodelocaldns/nodelocaldns.yaml installs it
// (iptables mode): a DaemonSet of node-cache, which is CoreDNS with a Corefile taken from the ConfigMap
// kube-system/node-local-dns (key Corefile). The install instructions' sed fills __PILLAR__LOCAL__DNS__,
// __PILLAR__DNS__DOMAIN__ and __PILLAR__DNS__SERVER__ in the manifest; __PILLAR__CLUSTER__DNS__ (the
// kube-dns-upstream Service's address) and __PILLAR__UPSTREAM__SERVERS__ (the node's resolv.conf unless
// kube-dns's ConfigMap names upstreams) stay in the ConfigMap, and node-cache fills them when it writes the
// Corefile it runs.
//
// In the sandbox, a cluster with Cluster.NodeLocal gets that ConfigMap from Seed, and Start runs a second
// real CoreDNS for it, on the NodeLocal addresses: the stand-in for node-cache. Its kubelet stand-in (a
// CorefileSyncer in Sandbox.NodeLocalSyncers) fills the two pillars as node-cache does, with the cluster's
// CoreDNS address (Cluster.DNSAddr) for __PILLAR__CLUSTER__DNS__ and /etc/resolv.conf (what the cluster's
// CoreDNS forwards . to) for __PILLAR__UPSTREAM__SERVERS__, and renders it like any Corefile: every server
// block, those meshd adds included, gets `bind <NodeLocal addresses>` in place of its bind line.
const (
	ConfigMapNodeLocalDNS = "node-local-dns"
	// NodeLocalIP is the link-local address the install instructions use for __PILLAR__LOCAL__DNS__, and
	// KubeDNSServiceIP the kube-dns Service address of an EKS cluster whose VPC is in 10.0.0.0/8 (service
	// range 172.20.0.0/16), for __PILLAR__DNS__SERVER__: the bind lines of the ConfigMap carry both, as on
	// a node.
	NodeLocalIP      = "169.254.20.10"
	KubeDNSServiceIP = "172.20.0.10"
	// The pillars node-cache fills at run time.
	PillarClusterDNS      = "__PILLAR__CLUSTER__DNS__"
	PillarUpstreamServers = "__PILLAR__UPSTREAM__SERVERS__"
)

// NodeLocalCorefile is the Corefile of the cluster's kube-system/node-local-dns ConfigMap: nodelocaldns.yaml's
// after the install instructions' sed (the cluster's domain, NodeLocalIP, KubeDNSServiceIP), with
// PillarClusterDNS and PillarUpstreamServers left for node-cache.
func (c Cluster) NodeLocalCorefile() string {
	return corefile.NodeLocalDefault(c.ClusterDomain(), NodeLocalIP, KubeDNSServiceIP)
}

// nodeLocalSyncer is the kubelet and node-cache stand-in of the cluster's NodeLocal DNSCache, writing to
// dir/Corefile.
func (c Cluster) nodeLocalSyncer(dir string, logf func(string, ...any)) *CorefileSyncer {
	return &CorefileSyncer{Cluster: c.Name, Path: filepath.Join(dir, "Corefile"), ConfigMap: ConfigMapNodeLocalDNS,
		Options: RenderOptions{Bind: c.NodeLocal}, Logf: logf,
		Pillars: map[string]string{PillarClusterDNS: c.DNSAddr(), PillarUpstreamServers: "/etc/resolv.conf"}}
}

// NodeLocalAddr is the address to query the cluster's NodeLocal DNSCache at (port 53); false when the
// cluster has none.
func (s *Sandbox) NodeLocalAddr(cluster string) (string, bool) {
	c, ok := s.Cluster(cluster)
	if !ok || len(c.NodeLocal) == 0 {
		return "", false
	}
	return c.NodeLocal[0], true
}

// WithNodeLocal is a modify for StartT and StartNT: the named clusters get a NodeLocal DNSCache, on an address
// of the loopback set StartNT locked for the sandbox (127.0.0.2<n>, 127.0.7.2<n> or 127.0.9.2<n> for
// tidb-<n>, beside its CoreDNS's 127.0.0.1<n>, ...).
func WithNodeLocal(names ...string) func(*Cluster) {
	return func(c *Cluster) {
		if slices.Contains(names, c.Name) && c.spareNodeLocal != "" {
			c.NodeLocal = []string{c.spareNodeLocal}
		}
	}
}

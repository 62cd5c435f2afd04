package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
)

// TestSandboxLayouts runs one cluster per CoreDNS layout with the real CoreDNS: tidb-1 is a k3s cluster
// (coredns plus coredns-custom), tidb-2 an RKE2 cluster with its own domain cluster2.com, tidb-3 an EKS
// cluster with a NodeLocal DNSCache. Each change is queried once, after WaitLoaded has seen CoreDNS run it,
// so a failure means the change is not served (and no retried query leaves for the machine's resolver).
func TestSandboxLayouts(t *testing.T) {
	s := sandbox.StartNT(t, 3, sandbox.WithLayout(sandbox.LayoutK3s, "tidb-1"), sandbox.WithLayout(sandbox.LayoutRKE2, "tidb-2"),
		sandbox.WithNodeLocal("tidb-3"), func(c *sandbox.Cluster) {
			if c.Name == "tidb-2" {
				c.Domain = "cluster2.com"
			}
		})
	ctx := context.Background()
	k3s, rke2, nl := s.Clusters[0], s.Clusters[1], s.Clusters[2]
	nlAddr, ok := s.NodeLocalAddr(nl.Name)
	if !ok {
		t.Fatalf("%s has no NodeLocal DNSCache", nl.Name)
	}
	if _, ok := s.NodeLocalAddr(k3s.Name); ok {
		t.Errorf("%s has a NodeLocal DNSCache it was not given", k3s.Name)
	}
	resolves := func(addr, name, want string) {
		t.Helper()
		if ips, err := testenv.LookupA(addr, name, false); err != nil || len(ips) != 1 || ips[0].String() != want {
			t.Errorf("%s answers %s with %v, %v; want %s", addr, name, ips, err, want)
		}
	}
	nxdomain := func(addr, name string) {
		t.Helper()
		var rc *testenv.RcodeError
		if ips, err := testenv.LookupA(addr, name, false); !errors.As(err, &rc) || rc.Rcode != testenv.RcodeNXDomain {
			t.Errorf("%s answers %s with %v, %v; want NXDOMAIN", addr, name, ips, err)
		}
	}
	loaded := func(d *testenv.DNSServer) {
		t.Helper()
		if err := sandbox.WaitLoaded(ctx, d, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	// (a) Each cluster serves its own name, tidb-3 also through its node-local cache.
	for _, c := range s.Clusters {
		resolves(c.DNSAddr(), c.SampleName(), c.SampleIP)
		if c.EKS != (c.Layout == sandbox.LayoutEKS) {
			t.Errorf("%s (layout %q) has EKS %v", c.Name, c.Layout, c.EKS)
		}
	}
	resolves(nlAddr, nl.SampleName(), nl.SampleIP)
	if _, err := s.Clients[rke2.Name].CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the RKE2 cluster has kube-system/coredns (%v)", err)
	}
	// The user's coredns-custom key is imported: its log plugin logs tidb-1's queries.
	waitFor(t, 10*time.Second, "tidb-1's CoreDNS to log the query (example.override's log plugin)", func() bool {
		b, _ := os.ReadFile(s.DNS[k3s.Name].LogPath)
		return strings.Contains(string(b), `"A IN `+k3s.SampleName()+`. udp`)
	})

	// (b) A server block in coredns-custom key meshd.server is served once CoreDNS has reloaded: the kubelet
	// stand-in writes only the imported file, and CoreDNS's reload plugin sees it.
	sy := s.Syncers[k3s.Name]
	writes := sy.Writes()
	nxdomain(k3s.DNSAddr(), nl.SampleName())
	customs := s.Clients[k3s.Name].CoreV1().ConfigMaps("kube-system")
	custom, err := customs.Get(ctx, sandbox.ConfigMapCoreDNSCustom, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	custom.Data["meshd.server"] = fmt.Sprintf("%s.svc.cluster.local:53 {\n    errors\n    cache 30\n    forward . %s {\n        force_tcp\n    }\n}\n",
		nl.Namespace, nl.DNSAddr())
	if _, err := customs.Update(ctx, custom, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	server := filepath.Join(sy.CustomDir(), "meshd.server")
	waitFor(t, 10*time.Second, server, func() bool {
		b, _ := os.ReadFile(server)
		return strings.Contains(string(b), "bind "+strings.Join(k3s.DNS, " "))
	})
	loaded(s.DNS[k3s.Name])
	resolves(k3s.DNSAddr(), nl.SampleName(), nl.SampleIP)
	if sy.Writes() != writes {
		t.Errorf("the k3s Corefile was rewritten %d times; only coredns-custom changed", sy.Writes()-writes)
	}
	if b, err := os.ReadFile(filepath.Join(sy.CustomDir(), sandbox.K3sUserKey)); err != nil || string(b) != sandbox.K3sUserOverride {
		t.Errorf("the user's %s: %q, %v", sandbox.K3sUserKey, b, err)
	}
	// Without coredns-custom (the volume is optional) the directory is empty and the block is gone.
	if err := customs.Delete(ctx, sandbox.ConfigMapCoreDNSCustom, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the custom directory to be emptied", func() bool {
		entries, err := os.ReadDir(sy.CustomDir())
		return err == nil && len(entries) == 0
	})
	loaded(s.DNS[k3s.Name])
	nxdomain(k3s.DNSAddr(), nl.SampleName())
	resolves(k3s.DNSAddr(), k3s.SampleName(), k3s.SampleIP)

	// (c) A block meshd adds to node-local-dns for another cluster's domain, forwarding to
	// __PILLAR__CLUSTER__DNS__, is served: the node-local cache sends cluster2.com to tidb-3's CoreDNS, which
	// forwards it to tidb-2's.
	setCorefile(t, s, nl.Name, nl.Corefile()+fmt.Sprintf("\ncluster2.com:53 {\n    errors\n    cache 30\n    forward . %s {\n        force_tcp\n    }\n}\n", rke2.DNSAddr()))
	waitFor(t, 10*time.Second, "tidb-3's Corefile forwarding cluster2.com", func() bool {
		b, _ := os.ReadFile(s.Syncers[nl.Name].Path)
		return strings.Contains(string(b), "cluster2.com:53")
	})
	loaded(s.DNS[nl.Name])
	resolves(nl.DNSAddr(), rke2.SampleName(), rke2.SampleIP)

	nlcms := s.Clients[nl.Name].CoreV1().ConfigMaps("kube-system")
	cm, err := nlcms.Get(ctx, sandbox.ConfigMapNodeLocalDNS, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["Corefile"] += fmt.Sprintf("# meshd:tidb\ncluster2.com:53 {\n    errors\n    cache 30\n    bind %s %s\n    forward . %s {\n        force_tcp\n    }\n}\n",
		sandbox.NodeLocalIP, sandbox.KubeDNSServiceIP, sandbox.PillarClusterDNS)
	if _, err := nlcms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	nlPath := s.NodeLocalSyncers[nl.Name].Path
	waitFor(t, 10*time.Second, nlPath+" with the cluster2.com block", func() bool {
		b, _ := os.ReadFile(nlPath)
		return strings.Contains(string(b), fmt.Sprintf("cluster2.com:53 {\n    bind %s\n    errors\n    cache 30\n    forward . %s {", nlAddr, nl.DNSAddr()))
	})
	loaded(s.NodeLocalDNS[nl.Name])
	resolves(nlAddr, rke2.SampleName(), rke2.SampleIP)
	resolves(nlAddr, nl.SampleName(), nl.SampleIP)
}

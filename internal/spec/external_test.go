package spec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSelfManagedSpec: the example of three clusters joined by Cilium ClusterMesh loads, each an external
// member with the DNS Service it asks for.
func TestSelfManagedSpec(t *testing.T) {
	m := loadClean(t, "../../specs/self-managed.hcl")
	type got struct {
		External      bool
		Type          string
		NodeAddresses []string
		Annotations   map[string]string
	}
	var have []got
	for _, c := range m.Clusters {
		have = append(have, got{c.External(), c.DNSServiceType(), c.DNS.NodeAddresses, c.DNS.ServiceAnnotations})
	}
	want := []got{
		{true, ServiceTypeLoadBalancer, nil, map[string]string{"metallb.io/address-pool": "dns"}},
		{true, ServiceTypeLoadBalancer, nil, map[string]string{"metallb.io/address-pool": "dns", "metallb.io/loadBalancerIPs": "192.168.20.53"}},
		{true, ServiceTypeNodePort, []string{"192.168.30.11", "192.168.30.12", "192.168.30.13"}, nil},
	}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("clusters (-want +got):\n%s", diff)
	}
}

// TestMixedMesh: AWS and external members in one mesh; an AWS member may add annotations to its NLB's,
// and node addresses are kept in canonical form.
func TestMixedMesh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mixed.hcl")
	src := `mesh "tidb" {}
cluster "aws" {
  region       = "us-west-2"
  kube_context = "aws"
  eks_cluster  = "aws"
  namespace    = "pingcap-1"
  dns {
    service_annotations = { "service.beta.kubernetes.io/aws-load-balancer-subnets" = "subnet-1,subnet-2" }
  }
}
cluster "dc" {
  network      = "external"
  kube_context = "dc"
  namespace    = "pingcap-2"
  dns {
    service_type   = "NodePort"
    node_addresses = ["::ffff:192.168.1.1", "FD00::1"]
  }
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	m := loadClean(t, path)
	aws, dc := m.Cluster("aws"), m.Cluster("dc")
	if aws.External() || aws.DNSServiceType() != ServiceTypeLoadBalancer || aws.DNS.ServiceAnnotations["service.beta.kubernetes.io/aws-load-balancer-subnets"] != "subnet-1,subnet-2" {
		t.Errorf("aws: external %v, type %s, annotations %v", aws.External(), aws.DNSServiceType(), aws.DNS.ServiceAnnotations)
	}
	if !dc.External() || dc.Region != "" || !cmp.Equal(dc.DNS.NodeAddresses, []string{"192.168.1.1", "fd00::1"}) {
		t.Errorf("dc: external %v, region %q, node addresses %v", dc.External(), dc.Region, dc.DNS.NodeAddresses)
	}
}

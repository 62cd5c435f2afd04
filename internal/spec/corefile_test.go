package spec

import "testing"

// dns { corefile | corefile_import } is read from the mesh's dns block for every member, and a member's own
// dns block overrides it; unset means "detect".
func TestCorefileLocation(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, `mesh "m" {
  dns {
    corefile = "dns/coredns:Corefile.main"
  }
}
cluster "a" {
  kube_context      = "a"
  namespace         = "a"
  network           = "external"
  dns {
    service_type    = "LoadBalancer"
    corefile_import = "kube-system/coredns-custom"
  }
}
cluster "b" {
  kube_context = "b"
  namespace    = "b"
  network      = "external"
  dns {
    service_type = "LoadBalancer"
  }
}
`)
	m, diags := Load(dir)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got, want := m.CorefileLocation(m.Cluster("a")), (CorefileLocation{Namespace: "kube-system", Name: "coredns-custom", Key: ImportKey, Import: true}); got != want {
		t.Errorf("a: %+v, want %+v", got, want)
	}
	if got, want := m.CorefileLocation(m.Cluster("b")), (CorefileLocation{Namespace: "dns", Name: "coredns", Key: "Corefile.main"}); got != want {
		t.Errorf("b: %+v, want the mesh's %+v", got, want)
	}
	if _, ok := m.Cluster("a").Attrs["dns.corefile_import"]; !ok {
		t.Error("a's dns.corefile_import has no source range")
	}
}

package corefile

import (
	"slices"
	"strings"
	"testing"
)

// nodeLocalCorefile is the node-local-dns ConfigMap's Corefile as the upstream manifest installs it.
var nodeLocalCorefile = NodeLocalDefault("cluster.local", "169.254.20.10", "172.20.0.10")

func TestCacheRouteOfNodeLocalDNS(t *testing.T) {
	r, err := CacheRouteOf(nodeLocalCorefile, "cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Bind, []string{"169.254.20.10", "172.20.0.10"}) || !slices.Equal(r.Forward, []string{"__PILLAR__CLUSTER__DNS__"}) {
		t.Fatalf("route %+v", r)
	}
	if _, err := CacheRouteOf(nodeLocalCorefile, "cluster2.com"); err == nil {
		t.Error("a zone the cache has no block for gave a route")
	}
	out, rep, err := Merge(nodeLocalCorefile, "tidb", nil, []Block{{Zone: "cluster2.com", Cache: &r}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Added, []string{"cluster2.com"}) || !strings.HasPrefix(out, nodeLocalCorefile) {
		t.Fatalf("added %v; the cache's own text was not kept:\n%s", rep.Added, out)
	}
	for _, want := range []string{"cluster2.com:53 {", "bind 169.254.20.10 172.20.0.10", "forward . __PILLAR__CLUSTER__DNS__ {"} {
		if !strings.Contains(out[len(nodeLocalCorefile):], want) {
			t.Errorf("meshd's block lacks %q:\n%s", want, out)
		}
	}
	back, _, err := Remove(out, "tidb", rep.Owned)
	if err != nil || back != nodeLocalCorefile {
		t.Errorf("removing meshd's block did not give the cache's Corefile back (err %v):\n%s", err, back)
	}
}

func TestCacheBlockRefusesArgumentsThatDoNotCopy(t *testing.T) {
	for _, r := range []CacheRoute{{Forward: nil}, {Forward: []string{"{$UPSTREAM}"}}, {Bind: []string{"a b"}, Forward: []string{"10.0.0.10"}}} {
		if _, err := Render("tidb", Block{Zone: "cluster2.com", Cache: &r}); err == nil {
			t.Errorf("route %+v rendered", r)
		}
	}
}

func TestServerImports(t *testing.T) {
	k3s := `.:53 {
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
    }
    forward . /etc/resolv.conf
    import /etc/coredns/custom/*.override
}
import /etc/coredns/custom/*.server
`
	for _, c := range []struct {
		name, src string
		want      []string
	}{
		{"k3s", k3s, []string{"/etc/coredns/custom/*.server"}},
		{"aks", "import custom/*.server\n.:53 {\n    import custom/*.override\n    forward . /etc/resolv.conf\n}\n", []string{"custom/*.server"}},
		{"eks", EKSDefault, nil},
	} {
		got, err := ServerImports(c.src)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}

package corefile

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshd-io/meshd/internal/testenv"
)

// TestRealCoreDNS runs a Corefile Merge wrote in CoreDNS itself: CoreDNS must load it (the forward
// plugin accepts 15 upstreams, IPv6 upstreams and force_tcp) and resolve a remote cluster's name through
// meshd's block, over TCP, from a second CoreDNS playing the remote cluster. The remote listens on a free
// high port of a loopback address, so that the test runs without root: meshd's upstreams have no port
// (forward's default, 53), and only the running copy of the block for it gets that port.
func TestRealCoreDNS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts CoreDNS")
	}
	testenv.Require(t, testenv.BinCoreDNS)
	remoteAddr := testenv.FreeDNSAddr(t, "127.0.0.12")
	remote, remotePort, _ := net.SplitHostPort(remoteAddr)
	dir := t.TempDir()

	// The remote cluster's DNS, reachable over TCP only as far as meshd's block is concerned.
	remoteCorefile := filepath.Join(dir, "remote")
	writeFile(t, remoteCorefile, fmt.Sprintf("pingcap-2.svc.cluster.local:%s {\n    bind %s\n    hosts {\n        10.9.8.7 web.pingcap-2.svc.cluster.local\n    }\n}\n", remotePort, remote))
	testenv.StartCoreDNS(t, remoteCorefile, remoteAddr)

	local := testenv.FreeDNSAddr(t, "127.0.0.11")
	host, port, _ := net.SplitHostPort(local)
	user := fmt.Sprintf("# the user's block\n.:%s {\n    bind %s\n    errors\n    whoami\n}\n", port, host)
	var many []string
	for i := range 14 {
		many = append(many, fmt.Sprintf("10.200.0.%d", i+1))
	}
	out, r, err := Merge(user, mesh, nil, []Block{
		{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{remote}},
		{Zone: "pingcap-3.svc.cluster.local", Upstreams: append(many, "fd00::1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Added) != 2 || !strings.HasPrefix(out, user) {
		t.Fatalf("report %+v\n%s", r, out)
	}
	// Only the listeners change for the test: meshd's blocks serve port 53 on every address, which a
	// test cannot take, and forward to port 53 of the remote, which here listens on remotePort. Everything
	// else the forward plugin reads (15 upstreams, an IPv6 one, force_tcp) is as Merge wrote it.
	run := strings.ReplaceAll(out, ".svc.cluster.local:53 {\n", fmt.Sprintf(".svc.cluster.local:%s {\n    bind %s\n", port, host))
	upstream := "    forward . " + remote + " {\n"
	if strings.Count(run, upstream) != 1 {
		t.Fatalf("no %q in the merged Corefile:\n%s", upstream, run)
	}
	run = strings.Replace(run, upstream, "    forward . "+remoteAddr+" {\n", 1)
	localCorefile := filepath.Join(dir, "local")
	writeFile(t, localCorefile, run)
	testenv.StartCoreDNS(t, localCorefile, local)

	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", local)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := res.LookupHost(ctx, "web.pingcap-2.svc.cluster.local.")
	if err != nil || !slices.Equal(addrs, []string{"10.9.8.7"}) {
		t.Fatalf("lookup through meshd's block: %v %v", addrs, err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

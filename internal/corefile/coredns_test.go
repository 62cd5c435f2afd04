package corefile

import (
	"context"
	"fmt"
	"math/rand"
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
// meshd's block, over TCP, from a second CoreDNS playing the remote cluster on port 53.
func TestRealCoreDNS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts CoreDNS")
	}
	testenv.Require(t, testenv.BinCoreDNS)
	if os.Geteuid() != 0 {
		t.Skip("the remote CoreDNS must listen on port 53, as forward upstreams have no port")
	}
	remote := freePort53(t)
	dir := t.TempDir()

	// The remote cluster's DNS, reachable over TCP only as far as meshd's block is concerned.
	remoteCorefile := filepath.Join(dir, "remote")
	writeFile(t, remoteCorefile, fmt.Sprintf("pingcap-2.svc.cluster.local:53 {\n    bind %s\n    hosts {\n        10.9.8.7 web.pingcap-2.svc.cluster.local\n    }\n}\n", remote))
	testenv.StartCoreDNS(t, remoteCorefile, net.JoinHostPort(remote, "53"))

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
	// Only the listener changes for the test: meshd's blocks serve port 53 on every address, which a
	// test cannot take. Everything the forward plugin reads is as Merge wrote it.
	run := strings.ReplaceAll(out, ".svc.cluster.local:53 {\n", fmt.Sprintf(".svc.cluster.local:%s {\n    bind %s\n", port, host))
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

// freePort53 returns an address in 127.0.0.0/8 whose port 53 is free for TCP and UDP.
func freePort53(t *testing.T) string {
	t.Helper()
	for range 20 {
		ip := fmt.Sprintf("127.%d.%d.%d", 100+rand.Intn(100), rand.Intn(256), 1+rand.Intn(254))
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "53"))
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "53"))
		l.Close()
		if err == nil {
			pc.Close()
			return ip
		}
	}
	t.Skip("no address in 127.0.0.0/8 with port 53 free")
	return ""
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

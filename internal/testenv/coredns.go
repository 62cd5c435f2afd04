package testenv

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// CoreDNSStartTimeout bounds how long StartCoreDNS waits for CoreDNS to answer.
const CoreDNSStartTimeout = 30 * time.Second

// DNSServer is a running CoreDNS.
type DNSServer struct {
	*Process
	Addr     string // host:port it was probed on
	Corefile string
}

// RunCoreDNS starts CoreDNS with the Corefile at corefilePath and waits (bounded by ctx) until it answers DNS
// over UDP and TCP at addr ("host:port", or "host" for port 53). The port is passed as -dns.port, the
// default for server blocks that name none; the host must match the blocks' `bind` (CoreDNS listens on all
// addresses without one). The whole 127.0.0.0/8 is local on Linux, so each simulated cluster can have its
// own address (127.0.0.11, 127.0.0.12, ...) without configuration. The caller stops the process.
func RunCoreDNS(ctx context.Context, corefilePath, addr, logPath string) (*DNSServer, error) {
	bin, err := Lookup(BinCoreDNS)
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, "53"
	}
	addr = net.JoinHostPort(host, port)
	if _, err := strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("testenv: CoreDNS address %q: bad port", addr)
	}
	p, err := startReady(ctx, 1, "coredns", bin, nil, logPath, 50*time.Millisecond, func() ([]string, func(context.Context) error, error) {
		return []string{"-conf", corefilePath, "-dns.port", port}, func(ctx context.Context) error {
			if err := dnsPing(ctx, addr, false); err != nil {
				return err
			}
			return dnsPing(ctx, addr, true)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return &DNSServer{Process: p, Addr: addr, Corefile: corefilePath}, nil
}

// StartCoreDNS starts CoreDNS for the test (see RunCoreDNS) and stops it when the test ends.
func StartCoreDNS(t testing.TB, corefilePath, addr string) *DNSServer {
	t.Helper()
	Require(t, BinCoreDNS)
	ctx, cancel := context.WithTimeout(context.Background(), CoreDNSStartTimeout)
	defer cancel()
	s, err := RunCoreDNS(ctx, corefilePath, addr, filepath.Join(t.TempDir(), "coredns.log"))
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, s.Process)
	return s
}

// FreeDNSAddr returns ip:<port> with a port free for TCP and UDP on ip (e.g. "127.0.0.11"), for tests that
// must not collide on port 53 with other tests running at the same time.
func FreeDNSAddr(t testing.TB, ip string) string {
	t.Helper()
	port, err := FreeDNSPort(ip)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// Reload makes CoreDNS re-read its Corefile now (SIGUSR1), without waiting for the reload plugin.
func (s *DNSServer) Reload() error { return s.Signal(syscall.SIGUSR1) }

// dnsPing sends a message without a question, which a DNS server answers (FORMERR or SERVFAIL) without
// consulting any plugin or upstream; any answer with the right id means the server is serving.
func dnsPing(ctx context.Context, addr string, tcp bool) error {
	msg := make([]byte, dnsHeaderLen)
	_, _ = rand.Read(msg[:2])
	_, err := exchange(ctx, addr, tcp, msg)
	return err
}

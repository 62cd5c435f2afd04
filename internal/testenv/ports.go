package testenv

import (
	"fmt"
	"net"
	"strconv"
	"testing"
)

// FreePort returns a TCP port that is free on host (e.g. "127.0.0.1") at the time of the call. Another process
// may take it before it is used; the Start functions retry when that happens.
func FreePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("testenv: allocate a port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeDNSPort returns a port free for both TCP and UDP on host, for a DNS server.
func FreeDNSPort(host string) (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, fmt.Errorf("testenv: allocate a port on %s: %w", host, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		l.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("testenv: no port free for both TCP and UDP on %s", host)
}

// FreePortT is FreePort on 127.0.0.1 that fails the test on error.
func FreePortT(t testing.TB) int {
	t.Helper()
	p, err := FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

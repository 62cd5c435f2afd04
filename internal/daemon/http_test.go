package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// bigMetrics is a registry whose /metrics body (about 16 MB) is far more than the socket buffers of a
// connection hold (a few MB on Linux), so that a client that stops reading blocks the server's write.
func bigMetrics(t *testing.T) (*Metrics, int) {
	t.Helper()
	m := NewMetrics()
	pad := strings.Repeat("x", 100)
	for i := range 110_000 {
		m.Add(MetricAPICalls, Labels{"api": "aws", "operation": fmt.Sprintf("EC2.%s%07d", pad, i)}, 1)
	}
	var b strings.Builder
	if _, err := m.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return m, b.Len()
}

// requestMetrics sends GET /metrics and returns the connection, unread.
func requestMetrics(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: meshd\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	return conn
}

// TestScraperThatStopsReadingDoesNotBlockAdd: a client that opens /metrics and stops reading a body larger
// than the connection buffers leaves the server blocked in its write; Add (the AWS and Kubernetes call hooks,
// the pass) goes on all the same.
func TestScraperThatStopsReadingDoesNotBlockAdd(t *testing.T) {
	m, _ := bigMetrics(t)
	// A write timeout longer than the test: Add must not wait for the server to drop the client.
	limits := defaultTimeouts
	limits.write = time.Hour
	srv := &Server{Metrics: m, limits: &limits}
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	conn := requestMetrics(t, srv.Addr())
	defer conn.Close() // before Shutdown: the server's write then fails and its handler returns
	// The first byte of the response: the server is writing the body now, and stops once the buffers are full.
	if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
		t.Fatalf("reading the first byte of /metrics: %v", err)
	}

	added := make(chan struct{})
	go func() {
		m.Add(MetricAPICalls, Labels{"api": "kubernetes", "operation": "get configmaps"}, 1)
		close(added)
	}()
	select {
	case <-added:
	case <-time.After(30 * time.Second):
		conn.Close() // unblocks the server, and so Add, for goleak
		<-added
		t.Fatal("Metrics.Add blocked while a /metrics client was not reading")
	}
	if got := m.Value(MetricAPICalls, Labels{"api": "kubernetes", "operation": "get configmaps"}); got != 1 {
		t.Errorf("the series added meanwhile: %v, want 1", got)
	}
}

// TestServerDropsSlowClients: a client that stops reading the response is dropped once the write timeout
// has passed, as is a kept-alive connection left idle and one that never sends a request.
func TestServerDropsSlowClients(t *testing.T) {
	m, size := bigMetrics(t)
	limits := timeouts{readHeader: 200 * time.Millisecond, read: 200 * time.Millisecond, write: 300 * time.Millisecond, idle: 200 * time.Millisecond}
	srv := &Server{Metrics: m, Trigger: func(string) {}, limits: &limits}
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if err := srv.StartTrigger("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}

	// A client that stops reading for longer than the write timeout, from the first byte on: by the time it
	// reads again, the server's deadline (set when it read the request, before that byte) has passed, and it
	// gave up on the rest of the body. (When rendering took longer than the timeout, not even a byte comes.)
	conn := requestMetrics(t, srv.Addr())
	n, err := io.ReadFull(conn, make([]byte, 1))
	if err == nil {
		time.Sleep(2 * limits.write) // the client stalls: this is the scenario, not a wait for a condition
		var rest int64
		rest, err = io.Copy(io.Discard, conn)
		n += int(rest)
	}
	if err != nil && err != io.EOF && !isReset(err) {
		t.Fatalf("reading /metrics: %v", err)
	}
	if n >= size/2 {
		t.Errorf("a client that stopped reading got %d bytes of a %d-byte /metrics: the server did not drop it", n, size)
	}
	conn.Close()

	for name, addr := range map[string]string{"metrics": srv.Addr(), "trigger": srv.TriggerAddr()} {
		// A kept-alive connection left idle after a request is closed by the server.
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		method, path := "GET", "/healthz"
		if name == "trigger" {
			method, path = "POST", "/trigger"
		}
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: meshd\r\nContent-Length: 0\r\n\r\n", method, path)
		_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if _, err := br.ReadByte(); err != io.EOF && !isReset(err) {
			t.Errorf("%s: an idle kept-alive connection: read %v, want the server to close it (EOF)", name, err)
		}
		conn.Close()

		// A connection that never sends a request is closed too.
		conn, err = net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := conn.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
			t.Errorf("%s: a connection without a request: read %v, want the server to close it (EOF)", name, err)
		}
		conn.Close()
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

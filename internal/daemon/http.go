package daemon

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Server serves /metrics, /healthz, /readyz and POST /trigger.
type Server struct {
	Metrics *Metrics
	// Ready reports whether the daemon can do its job (a valid spec is loaded).
	Ready func() bool
	// Trigger asks for a pass now.
	Trigger func(why string)

	srv  *http.Server
	addr atomic.Value
}

// Start listens on addr ("127.0.0.1:9090", ":0" for any free port) and serves in the background.
func (s *Server) Start(addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = s.Metrics.WriteTo(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.Ready != nil && !s.Ready() {
			http.Error(w, "not ready: no valid spec loaded", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("POST /trigger", func(w http.ResponseWriter, _ *http.Request) {
		s.Trigger("http")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("pass requested\n"))
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.addr.Store(ln.Addr().String())
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string {
	a, _ := s.addr.Load().(string)
	return a
}

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Server serves /metrics, /healthz and /readyz on one listener (Start), for Prometheus and the kubelet's
// probes, and POST /trigger on another (StartTrigger), on loopback, since it is unauthenticated. Both drop a
// client that is slow to send its request, to read the response, or idle (defaultTimeouts).
type Server struct {
	Metrics *Metrics
	// Ready reports whether the daemon can do its job (a valid spec is loaded).
	Ready func() bool
	// Trigger asks for a pass now.
	Trigger func(why string)

	// Live says whether the loop runs (Controller.Running): /healthz, the liveness probe, fails when it does
	// not. Nil: /healthz always answers ok.
	Live func(now time.Time) error
	// StaleAfter, when positive, makes /readyz fail once no pass has completed successfully for this long
	// (meshd: three intervals): a meshd that runs but cannot correct anything is not restarted, since a
	// restart would not help, but shows as not ready. A daemon that has had no successful pass yet counts
	// from Started.
	StaleAfter time.Duration
	// LastSuccess is when the last pass completed successfully (zero: none yet); nil reads
	// MetricLastSuccess.
	LastSuccess func() time.Time
	// Started is when the daemon started; Start sets it to Now() when it is zero.
	Started time.Time
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	// limits, when set, replace defaultTimeouts (tests shorten them).
	limits *timeouts

	srv, trigger      *http.Server
	addr, triggerAddr atomic.Value
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Healthy returns nil, or why /healthz fails: the loop does not run (Live).
func (s *Server) Healthy() error {
	if s.Live == nil {
		return nil
	}
	return s.Live(s.now())
}

// Readiness returns nil, or why /readyz fails: no valid spec is loaded, or no pass has completed
// successfully for StaleAfter.
func (s *Server) Readiness() error {
	if s.Ready != nil && !s.Ready() {
		return errors.New("no valid spec loaded")
	}
	if s.StaleAfter <= 0 {
		return nil
	}
	var last time.Time
	if s.LastSuccess != nil {
		last = s.LastSuccess()
	} else if sec := s.Metrics.Value(MetricLastSuccess, nil); sec > 0 {
		last = time.Unix(int64(sec), 0)
	}
	now := s.now()
	if last.IsZero() {
		if since := now.Sub(s.Started); !s.Started.IsZero() && since > s.StaleAfter {
			return fmt.Errorf("no pass has completed successfully since the start %s ago (limit %s)", since.Round(time.Second), s.StaleAfter)
		}
		return nil
	}
	if since := now.Sub(last); since > s.StaleAfter {
		return fmt.Errorf("no pass has completed successfully for %s (last at %s, limit %s)",
			since.Round(time.Second), last.UTC().Format(time.RFC3339), s.StaleAfter)
	}
	return nil
}

// Start listens on addr ("127.0.0.1:9090", ":0" for any free port) and serves /metrics, /healthz and
// /readyz in the background.
func (s *Server) Start(addr string) error {
	if s.Started.IsZero() {
		s.Started = s.now()
	}
	if s.Metrics != nil {
		s.Metrics.Set(MetricStarted, nil, float64(s.Started.Unix()))
		if s.StaleAfter > 0 {
			s.Metrics.Set(MetricStaleAfter, nil, s.StaleAfter.Seconds())
		}
	}
	srv, bound, err := serve(addr, s.handler(), s.timeouts())
	if err != nil {
		return err
	}
	s.srv = srv
	s.addr.Store(bound)
	return nil
}

// handler serves /metrics, /healthz and /readyz.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = s.Metrics.WriteTo(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.Healthy(); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.Readiness(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("POST /trigger", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "POST /trigger is served on --trigger-addr (loopback), not on --metrics-addr", http.StatusNotFound)
	})
	return mux
}

// StartTrigger listens on addr ("127.0.0.1:9091") and serves POST /trigger in the background. It answers
// only requests from loopback addresses, whatever addr is: the endpoint is unauthenticated.
func (s *Server) StartTrigger(addr string) error {
	mux := http.NewServeMux()
	mux.Handle("POST /trigger", s.TriggerHandler())
	srv, bound, err := serve(addr, mux, s.timeouts())
	if err != nil {
		return err
	}
	s.trigger = srv
	s.triggerAddr.Store(bound)
	return nil
}

// TriggerHandler asks for a pass, for a request from a loopback address; any other is refused (403).
func (s *Server) TriggerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopback(r.RemoteAddr) {
			http.Error(w, "POST /trigger is accepted from loopback only (kubectl port-forward or kubectl exec)", http.StatusForbidden)
			return
		}
		s.Trigger("http")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("pass requested\n"))
	})
}

// loopback reports whether a request's RemoteAddr ("host:port") is a loopback address.
func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// timeouts bound what one client can hold of the listeners: a connection and a goroutine.
type timeouts struct {
	// readHeader and read bound receiving a request, write the handler and sending its response, idle a
	// kept-alive connection waiting for the next request.
	readHeader, read, write, idle time.Duration
}

// defaultTimeouts: a request is a few hundred bytes, and /metrics some tens of kilobytes that Prometheus
// reads within its scrape timeout (10 s by default); a client slower than these is dropped.
var defaultTimeouts = timeouts{readHeader: 5 * time.Second, read: 10 * time.Second, write: 30 * time.Second, idle: time.Minute}

func serve(addr string, h http.Handler, t timeouts) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: t.readHeader, ReadTimeout: t.read, WriteTimeout: t.write, IdleTimeout: t.idle}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().String(), nil
}

func (s *Server) timeouts() timeouts {
	if s.limits != nil {
		return *s.limits
	}
	return defaultTimeouts
}

// Addr is the address /metrics is served on.
func (s *Server) Addr() string {
	a, _ := s.addr.Load().(string)
	return a
}

// TriggerAddr is the address POST /trigger is served on.
func (s *Server) TriggerAddr() string {
	a, _ := s.triggerAddr.Load().(string)
	return a
}

// Shutdown stops both listeners.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range []*http.Server{s.srv, s.trigger} {
		if srv != nil {
			errs = append(errs, srv.Shutdown(ctx))
		}
	}
	return errors.Join(errs...)
}

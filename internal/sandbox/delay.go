package sandbox

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// DelayProxy stands in for the distance to a real AWS endpoint: a reverse proxy in front of moto (which
// answers in about 5 ms) that waits Delay before forwarding each request, as a regional endpoint's round
// trip does (80 ms is typical). Pointing meshd's AWS_ENDPOINT_URL at it delays every AWS call meshd makes,
// retries included, the way a user's network does; the test's own calls go to moto directly.
type DelayProxy struct {
	URL   string
	delay atomic.Int64
	srv   *http.Server
}

// StartDelayProxy starts a DelayProxy on loopback in front of target (moto's endpoint URL).
func StartDelayProxy(target string, delay time.Duration) (*DelayProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &DelayProxy{URL: "http://" + ln.Addr().String()}
	p.SetDelay(delay)
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(time.Duration(p.delay.Load()))
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// SetDelay changes the delay of the requests that arrive from now on.
func (p *DelayProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Close stops the proxy.
func (p *DelayProxy) Close() error { return p.srv.Close() }

package kube

import (
	"context"
	"io"
	"net/http"
	"time"
)

// withRequestTimeout bounds every request except watches: the response must arrive, and its body be read
// and closed, within d, as with http.Client.Timeout. rest.Config.Timeout cannot be used: client-go applies
// it to watches too, so every informer's watch would be cut and reopened each d (4 requests a minute per
// watch at 15 s); informers bound their watches themselves (5 to 10 minutes).
func withRequestTimeout(rt http.RoundTripper, d time.Duration) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Query().Get("watch") == "true" {
			return rt.RoundTrip(req)
		}
		ctx, cancel := context.WithTimeout(req.Context(), d)
		resp, err := rt.RoundTrip(req.WithContext(ctx))
		if err != nil {
			cancel()
			return nil, err
		}
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
		return resp, nil
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// cancelOnClose releases a request's timeout once its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

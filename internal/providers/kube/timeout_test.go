package kube

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/meshd-io/meshd/internal/testenv"
)

// TestRequestTimeoutSparesWatches: a request that hangs fails after the timeout; a watch that outlives it
// keeps streaming.
func TestRequestTimeoutSparesWatches(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") != "true" {
			select { // a hung API server
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		for _, line := range []string{"first\n", "second\n"} {
			_, _ = io.WriteString(w, line)
			w.(http.Flusher).Flush()
			time.Sleep(600 * time.Millisecond)
		}
	}))
	defer srv.Close()
	client := &http.Client{Transport: withRequestTimeout(http.DefaultTransport, 300*time.Millisecond)}

	start := time.Now()
	_, err := client.Get(srv.URL + "/api/v1/namespaces/kube-system/configmaps/coredns")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GET against a hung server: err %v, want a deadline error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the hung GET took %v; the 300ms timeout did not apply", took)
	}

	resp, err := client.Get(srv.URL + "/api/v1/namespaces/kube-system/configmaps?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "first\nsecond\n" {
		t.Errorf("a watch streaming for 1.2s through a 300ms request timeout read %q, %v; want both lines", body, err)
	}
}

// TestWatchOutlivesRequestTimeout opens a watch through the provider's client against a real kube-apiserver,
// with a 1s request timeout, and receives an event 2.5s later on the same watch.
func TestWatchOutlivesRequestTimeout(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	api := testenv.StartAPIServer(t, etcd.ClientURL, "watch")
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := api.WriteKubeconfig(kubeconfig, "watch"); err != nil {
		t.Fatal(err)
	}
	p := New(Options{Kubeconfig: kubeconfig, RequestTimeout: time.Second})
	c, err := p.Client("watch")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := c.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", "late").String()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	time.Sleep(2500 * time.Millisecond)
	if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("the watch was closed before the event: the request timeout cut it")
		}
		if ev.Type != watch.Added {
			t.Errorf("event %s, want ADDED", ev.Type)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
}

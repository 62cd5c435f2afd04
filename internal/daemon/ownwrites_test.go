package daemon

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	watchapi "k8s.io/apimachinery/pkg/watch"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/testenv"
)

// TestOwnWritesAreToldByResourceVersion: against a real API server, another writer's update, meshd's and
// another's again, in the same second (managedFields cannot order them then): the watch events of the
// other writer's updates trigger, meshd's does not, by the resourceVersion meshd's update returned through
// its clients' transport.
func TestOwnWritesAreToldByResourceVersion(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	server := testenv.StartAPIServers(t, etcd.ClientURL, "a")["a"]
	own := &OwnWrites{}
	client := func(wrap func(http.RoundTripper) http.RoundTripper) kubeclient.Interface {
		cfg := server.RESTConfig()
		var transports []http.RoundTripper
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			transports = append(transports, rt)
			if wrap != nil {
				rt = wrap(rt)
			}
			return rt
		}
		c, err := kubeclient.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, rt := range transports {
				utilnet.CloseIdleConnectionsFor(rt)
			}
		})
		return c
	}
	meshd, other := client(own.Wrap), client(nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cms := func(c kubeclient.Interface) interface {
		Update(context.Context, *corev1.ConfigMap, metav1.UpdateOptions) (*corev1.ConfigMap, error)
	} {
		return c.CoreV1().ConfigMaps("kube-system")
	}
	created, err := other.CoreV1().ConfigMaps("kube-system").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns"}, Data: map[string]string{"Corefile": "0"}}, metav1.CreateOptions{FieldManager: "eks"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := other.CoreV1().ConfigMaps("kube-system").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=coredns", ResourceVersion: created.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	cur := created
	for i, by := range []kubeclient.Interface{other, meshd, other} {
		cur = cur.DeepCopy()
		cur.Data["Corefile"] = strings.Repeat("x", i+1)
		manager := "eks"
		if by == meshd {
			manager = model.FieldManager
		}
		if cur, err = cms(by).Update(ctx, cur, metav1.UpdateOptions{FieldManager: manager}); err != nil {
			t.Fatal(err)
		}
	}
	matters := updateMatters(plan.Watch{}, own)
	var got []bool
	prev := metav1.Object(created)
	for len(got) < 3 {
		select {
		case ev := <-w.ResultChan():
			if ev.Type != watchapi.Modified {
				t.Fatalf("watch event %s, want MODIFIED", ev.Type)
			}
			obj := ev.Object.(*corev1.ConfigMap)
			got = append(got, matters(prev, obj))
			prev = obj
		case <-ctx.Done():
			t.Fatalf("watch events: %v, want 3", got)
		}
	}
	if want := []bool{true, false, true}; !equalBools(got, want) {
		t.Errorf("triggered by the updates of another, meshd and another: %v, want %v", got, want)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// heldTransport answers a write with an object once released.
type heldTransport struct{ release chan struct{} }

func (h heldTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	<-h.release
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"kind":"ConfigMap","metadata":{"uid":"u1","resourceVersion":"42"}}`)), Request: req}, nil
}

// TestOwnWritesWaitForWritesUnderWay: the watch event of meshd's write can come before the write's response;
// while a write is under way, Wrote waits for it rather than take meshd's write for another's.
func TestOwnWritesWaitForWritesUnderWay(t *testing.T) {
	own := &OwnWrites{}
	release := make(chan struct{})
	rt := own.Wrap(heldTransport{release: release})
	req, err := http.NewRequest(http.MethodPut, "http://example.invalid/api/v1/namespaces/kube-system/configmaps/coredns", nil)
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		resp, err := rt.RoundTrip(req)
		if err == nil {
			_, _ = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
		}
	}()
	// The write is under way once the transport counts it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		own.mu.Lock()
		n := own.inflight
		own.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the write was not under way within 30 s")
		}
	}
	answer := make(chan bool)
	go func() { answer <- own.Wrote(&metav1.ObjectMeta{UID: "u1", ResourceVersion: "42"}) }()
	close(release)
	if !<-answer {
		t.Error("the event of a write under way was not taken as meshd's once the write was answered")
	}
	<-written
	if own.Wrote(&metav1.ObjectMeta{UID: "u1", ResourceVersion: "43"}) {
		t.Error("another resourceVersion of the object was taken as meshd's write")
	}
}

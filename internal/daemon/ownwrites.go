package daemon

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// OwnWrites recognises meshd's own writes when the watches see them: it remembers the resourceVersion that
// each of meshd's writes returned, by object (its UID), and the watch drops an event whose object carries
// one of them. A resourceVersion names one write of one object exactly, where managedFields times have a
// resolution of one second and cannot tell meshd's write from another writer's in the same second (a spare
// pass, which took the next --min-interval slot from the next repair).
//
// It is filled by the Kubernetes clients' transport (Wrap), so that every write meshd makes is recorded,
// whichever executor makes it, without the executors knowing.
type OwnWrites struct {
	mu sync.Mutex
	// written: by UID and resourceVersion, when it was recorded (entries older than ownWriteTTL go).
	written map[string]time.Time
	// inflight counts writes sent and not yet answered; idle is closed when it drops to zero.
	inflight int
	idle     chan struct{}
}

const (
	// ownWriteTTL is how long a write is remembered: far longer than its watch event takes to arrive.
	ownWriteTTL = 10 * time.Minute
	// ownWriteWait bounds how long the watch waits for meshd's writes under way to be answered before it
	// takes an event for someone else's: the watch event of a write can arrive before its response.
	ownWriteWait = 5 * time.Second
)

func ownKey(uid, resourceVersion string) string { return uid + "/" + resourceVersion }

// Record remembers that meshd's write made resourceVersion of the object with uid.
func (w *OwnWrites) Record(uid, resourceVersion string) {
	if uid == "" || resourceVersion == "" {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.written == nil {
		w.written = map[string]time.Time{}
	}
	for k, at := range w.written {
		if now.Sub(at) > ownWriteTTL {
			delete(w.written, k)
		}
	}
	w.written[ownKey(uid, resourceVersion)] = now
}

// Wrote reports whether obj, as the watch delivered it, is the result of one of meshd's writes. While
// meshd has writes under way, it waits (up to ownWriteWait) for them to be answered before saying no.
func (w *OwnWrites) Wrote(obj metav1.Object) bool {
	key := ownKey(string(obj.GetUID()), obj.GetResourceVersion())
	deadline := time.NewTimer(ownWriteWait)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		_, ok := w.written[key]
		idle := w.idle
		busy := w.inflight > 0
		w.mu.Unlock()
		if ok || !busy {
			return ok
		}
		select {
		case <-idle:
		case <-deadline.C:
			return false
		}
	}
}

func (w *OwnWrites) begin() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inflight == 0 {
		w.idle = make(chan struct{})
	}
	w.inflight++
}

func (w *OwnWrites) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inflight--
	if w.inflight == 0 {
		close(w.idle)
	}
}

// Wrap wraps a Kubernetes client's transport so that the object each write (create, update, patch,
// server-side apply) returns is recorded.
func (w *OwnWrites) Wrap(rt http.RoundTripper) http.RoundTripper {
	return &ownWritesTransport{w: w, next: rt}
}

type ownWritesTransport struct {
	w    *OwnWrites
	next http.RoundTripper
}

func (t *ownWritesTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return t.next.RoundTrip(req)
	}
	t.w.begin()
	defer t.w.end()
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode/100 != 2 || resp.Body == nil {
		return resp, err
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "application/json" {
		return resp, nil
	}
	body, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if rerr != nil {
		// The client reads what came, then the error.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{rerr}))
		return resp, nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var obj struct {
		Metadata struct {
			UID             string `json:"uid"`
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if json.Unmarshal(body, &obj) == nil {
		t.w.Record(obj.Metadata.UID, obj.Metadata.ResourceVersion)
	}
	return resp, nil
}

// WrappedRoundTripper lets client-go reach the transport underneath (to cancel requests, for one).
func (t *ownWritesTransport) WrappedRoundTripper() http.RoundTripper { return t.next }

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

package kubeobj_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshd-io/meshd/internal/kubeobj"
)

// quoteLabel marks the Secrets the quoting webhook refuses, so that it touches no other test's objects.
const quoteLabel = "meshd-test/quote"

// testErrorsQuotingSecrets: a validating admission webhook (a real one, called by the real API server)
// refuses writes of labelled Secrets with a message that quotes their data: on create the object sent, on
// update the object in the cluster (oldObject), whose value meshd did not send. Admission webhooks' messages
// are free text, so this is what an error may carry; meshd's errors must show neither value.
func (cl *cluster) testErrorsQuotingSecrets(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewTLSServer(http.HandlerFunc(quotingWebhook))
	defer srv.Close()
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	hooks := cl.kube.Resource(schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"})
	cfg := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
		"metadata": map[string]any{"name": "meshd-test-quote"},
		"webhooks": []any{map[string]any{
			"name":                    "quote.meshd.test",
			"clientConfig":            map[string]any{"url": srv.URL + "/validate", "caBundle": caBundle},
			"rules":                   []any{map[string]any{"apiGroups": []any{""}, "apiVersions": []any{"v1"}, "resources": []any{"secrets"}, "operations": []any{"CREATE", "UPDATE"}}},
			"objectSelector":          map[string]any{"matchLabels": map[string]any{quoteLabel: "true"}},
			"sideEffects":             "None",
			"admissionReviewVersions": []any{"v1"},
			"failurePolicy":           "Fail",
		}},
	}}
	if _, err := hooks.Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hooks.Delete(context.Background(), "meshd-test-quote", metav1.DeleteOptions{}) }()

	labelled := func(name, value string) kubeobj.Object {
		o := object(t, "Secret", ns, name, map[string]any{"type": "Opaque", "data": kubeobj.SecretData(map[string][]byte{"extra": []byte(value)})})
		o.Labels = map[string]string{quoteLabel: "true"}
		return o
	}
	// The API server loads webhook configurations asynchronously: create until the webhook answers.
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = cl.c.Create(ctx, labelled("meshd-quoted", secretValue))
		if err != nil || time.Now().After(deadline) {
			break
		}
		if derr := cl.kube.CoreV1().Secrets(ns).Delete(ctx, "meshd-quoted", metav1.DeleteOptions{}); derr != nil {
			t.Fatal(derr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err == nil {
		t.Fatal("the quoting webhook never refused a create")
	}
	assertNoSecret(t, "the create error quoting the object sent", err.Error(), secretValue)
	assertQuoted(t, err.Error())

	// An update: the object in the cluster, created meshd's but without the webhook's label (so the webhook
	// let it in), holds a value meshd's update does not carry; the webhook quotes that one (oldObject), which
	// meshd only knows from the object it read back.
	const theirs = "their-value-in-the-cluster"
	unlabelled := labelled("meshd-current", theirs)
	unlabelled.Labels = nil
	if _, err := cl.c.Create(ctx, unlabelled); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cl.kube.CoreV1().Secrets(ns).Delete(context.Background(), "meshd-current", metav1.DeleteOptions{})
	}()
	_, err = cl.c.Update(ctx, labelled("meshd-current", "meshd-new-value"))
	if err == nil {
		t.Fatal("the quoting webhook let meshd's update through")
	}
	assertNoSecret(t, "the update error quoting the object in the cluster", err.Error(), theirs, "meshd-new-value")
	assertQuoted(t, err.Error())
}

func assertQuoted(t *testing.T, msg string) {
	t.Helper()
	if !strings.Contains(msg, "refused: the Secret holds extra=<redacted>") {
		t.Errorf("the webhook's message did not come through (redacted) at all: %s", msg)
	}
}

// quotingWebhook refuses every write it is sent, quoting the data of the object in the cluster (on
// update) or of the object sent (on create).
func quotingWebhook(w http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "bad review", http.StatusBadRequest)
		return
	}
	raw := review.Request.Object.Raw
	if review.Request.Operation == admissionv1.Update {
		raw = review.Request.OldObject.Raw
	}
	var obj struct {
		Data map[string][]byte `json:"data"`
	}
	_ = json.Unmarshal(raw, &obj)
	msg := "refused: the Secret holds"
	for k, v := range obj.Data {
		msg += fmt.Sprintf(" %s=%s", k, v)
	}
	review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: false,
		Result: &metav1.Status{Message: msg}}
	review.Request = nil
	_ = json.NewEncoder(w).Encode(review)
}

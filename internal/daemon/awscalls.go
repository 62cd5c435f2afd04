package daemon

import (
	"context"
	"net/http"
	"strings"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// CountAWSCalls is an SDK middleware that counts every AWS API call by service and operation.
func (m *Metrics) CountAWSCalls(s *middleware.Stack) error {
	return s.Initialize.Add(middleware.InitializeMiddlewareFunc("meshd-count-calls", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		m.Add(MetricAPICalls, Labels{"api": "aws", "operation": awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)}, 1)
		return next.HandleInitialize(ctx, in)
	}), middleware.Before)
}

// CountKubeCalls wraps a Kubernetes client's transport to count API calls by verb and resource.
func (m *Metrics) CountKubeCalls(rt http.RoundTripper) http.RoundTripper {
	return &countingTransport{m: m, next: rt}
}

type countingTransport struct {
	m    *Metrics
	next http.RoundTripper
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.m.Add(MetricAPICalls, Labels{"api": "kubernetes", "operation": req.Method + " " + kubeResource(req.URL.Path)}, 1)
	return t.next.RoundTrip(req)
}

// WrappedRoundTripper lets client-go reach the transport underneath (to cancel requests, for one).
func (t *countingTransport) WrappedRoundTripper() http.RoundTripper { return t.next }

// kubeResource reduces a request path to its resource type, so that series do not multiply by object name:
// /api/v1/namespaces/kube-system/configmaps/coredns -> configmaps.
func kubeResource(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := len(parts) - 1; i >= 0; i-- {
		switch parts[i] {
		case "configmaps", "services", "secrets", "leases", "events", "namespaces", "endpointslices":
			if parts[i] == "namespaces" && i+2 < len(parts) {
				continue
			}
			return parts[i]
		}
	}
	return "other"
}

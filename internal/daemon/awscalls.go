package daemon

import (
	"context"
	"errors"
	"net/http"
	"strings"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// CountAWSCalls is an SDK middleware that counts every AWS API call by service and operation
// (meshd_api_calls_total, once per call) and every failed attempt by error code (meshd_api_errors_total,
// once per attempt: it sits after the retry middleware, so throttled attempts that a retry recovers from are
// counted too).
func (m *Metrics) CountAWSCalls(s *middleware.Stack) error {
	if err := s.Initialize.Add(middleware.InitializeMiddlewareFunc("meshd-count-calls", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		m.Add(MetricAPICalls, Labels{"api": "aws", "operation": awsOperation(ctx)}, 1)
		return next.HandleInitialize(ctx, in)
	}), middleware.Before); err != nil {
		return err
	}
	return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("meshd-count-errors", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleFinalize(ctx, in)
		if err != nil && ctx.Err() == nil {
			code := "transport"
			if apiErr, ok := errors.AsType[smithy.APIError](err); ok && apiErr.ErrorCode() != "" {
				code = apiErr.ErrorCode()
			}
			m.Add(MetricAPIErrors, Labels{"api": "aws", "operation": awsOperation(ctx), "code": code}, 1)
		}
		return out, md, err
	}), middleware.After)
}

func awsOperation(ctx context.Context) string {
	return awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
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

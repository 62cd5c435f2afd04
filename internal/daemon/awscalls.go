package daemon

import (
	"context"

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

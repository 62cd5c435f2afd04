package aws

import (
	"context"
	"errors"

	"github.com/aws/smithy-go"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/errclass"
	"github.com/meshd-io/meshd/internal/plan"
)

// ErrorCode returns the AWS error code of err ("RouteAlreadyExists"), or "" when err is not an API error.
// Errors are classified by code, never by message text: messages change, codes are the API's contract.
func ErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// HasCode reports whether err is an AWS API error with one of the codes.
func HasCode(err error, codes ...string) bool {
	code := ErrorCode(err)
	if code == "" {
		return false
	}
	for _, c := range codes {
		if c == code {
			return true
		}
	}
	return false
}

// Error codes meshd reacts to.
const (
	codeRouteExists         = "RouteAlreadyExists"
	codeRouteNotFound       = "InvalidRoute.NotFound"
	codePermissionDuplicate = "InvalidPermission.Duplicate"
	codePermissionNotFound  = "InvalidPermission.NotFound"
	codeRuleIDNotFound      = "InvalidSecurityGroupRuleId.NotFound"
	codePeeringNotFound     = "InvalidVpcPeeringConnectionID.NotFound"
	codePeeringIDNotFound   = "InvalidVpcPeeringConnectionId.NotFound"
	codeInvalidStateTransit = "InvalidStateTransition"
	codeEKSNotFound         = "ResourceNotFoundException"
)

// transientCodes are errors worth retrying later (the SDK's retryer already retried them a few times). EC2
// and ELBv2 say RequestLimitExceeded, ServiceUnavailable or InternalError; EKS says ServerException (its
// HTTP 500) and ServiceUnavailableException (its 503), which its API reference tells callers to retry.
var transientCodes = []string{"RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestTimeout",
	"ServiceUnavailable", "InternalError", "Unavailable", "ServerException", "ServiceUnavailableException"}

// IsTransient reports whether err is throttling or a passing AWS fault.
func IsTransient(err error) bool { return HasCode(err, transientCodes...) }

// classified marks err with its class (errclass.Transient) when AWS says it is throttling or a passing
// fault, so that callers outside the provider can tell without knowing AWS error codes. The provider calls it
// on every error it returns: from Observe, LoadBalancers and the executors.
func classified(err error) error {
	if IsTransient(err) {
		return errclass.Transient(err)
	}
	return err
}

// classifying is an executor whose errors are classified.
type classifying struct{ next apply.Executor }

func (c classifying) Execute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	out, err := c.next.Execute(ctx, ch, known)
	return out, classified(err)
}

// classifyingAll wraps every executor of the map.
func classifyingAll(executors map[plan.Kind]apply.Executor) map[plan.Kind]apply.Executor {
	for kind, e := range executors {
		executors[kind] = classifying{e}
	}
	return executors
}

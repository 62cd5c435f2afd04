package aws

import (
	"errors"

	"github.com/aws/smithy-go"
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

// transientCodes are errors worth retrying later (the SDK's retryer already retried them a few times).
var transientCodes = []string{"RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestTimeout",
	"ServiceUnavailable", "InternalError", "Unavailable"}

// IsTransient reports whether err is throttling or a passing AWS fault.
func IsTransient(err error) bool { return HasCode(err, transientCodes...) }

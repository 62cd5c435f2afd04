package sandbox

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/smithy-go"
)

func TestRetried(t *testing.T) {
	dup := fmt.Errorf("operation error EC2: AttachInternetGateway: %w", &smithy.GenericAPIError{Code: "Resource.AlreadyAssociated"})
	if !Retried(dup, "RouteAlreadyExists", "Resource.AlreadyAssociated") {
		t.Error("Resource.AlreadyAssociated not taken for a retried create")
	}
	for _, err := range []error{nil, errors.New("Resource.AlreadyAssociated"), &smithy.GenericAPIError{Code: "InvalidVpcID.NotFound"}} {
		if Retried(err, "Resource.AlreadyAssociated") {
			t.Errorf("%v taken for a retried create", err)
		}
	}
}

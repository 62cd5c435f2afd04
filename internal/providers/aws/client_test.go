package aws

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// TestHungEndpointTimesOut: an AWS endpoint that accepts the request and never answers fails the request
// after RequestTimeout instead of hanging the pass.
func TestHungEndpointTimesOut(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer hung.Close()
	defer close(release) // before Close, which waits for the handler
	t.Setenv("AWS_ENDPOINT_URL", hung.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	p, err := New(context.Background(), Options{RequestTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = p.EC2("us-west-1").DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{},
		func(o *ec2.Options) { o.RetryMaxAttempts = 1 })
	if err == nil {
		t.Fatal("a request to a hung endpoint succeeded")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the request took %v against a 300ms timeout", took)
	}
}

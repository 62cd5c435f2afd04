package daemon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"
)

// TestAWSErrorsCountedPerAttempt: a call the SDK retries after two throttled answers (EC2's 503
// RequestLimitExceeded) counts once in meshd_api_calls_total and twice in meshd_api_errors_total by its code,
// so throttling shows even when the retries succeed; a call that fails for good counts each attempt.
func TestAWSErrorsCountedPerAttempt(t *testing.T) {
	var n atomic.Int32
	var failAll atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failAll.Load() {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>no</Message></Error></Errors><RequestID>r</RequestID></Response>`))
			return
		}
		if n.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>r</RequestID></Response>`))
			return
		}
		_, _ = w.Write([]byte(`<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><vpcSet/></DescribeVpcsResponse>`))
	}))
	defer srv.Close()
	m := NewMetrics()
	client := ec2.New(ec2.Options{
		Region:       "us-west-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		}),
		APIOptions: []func(*middleware.Stack) error{m.CountAWSCalls},
	})
	if _, err := client.DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatal(err)
	}
	op := Labels{"api": "aws", "operation": "EC2.DescribeVpcs"}
	if got := m.Value(MetricAPICalls, op); got != 1 {
		t.Errorf("meshd_api_calls_total = %v, want 1", got)
	}
	throttled := Labels{"api": "aws", "operation": "EC2.DescribeVpcs", "code": "RequestLimitExceeded"}
	if got := m.Value(MetricAPIErrors, throttled); got != 2 {
		t.Errorf("meshd_api_errors_total{code=RequestLimitExceeded} = %v, want 2", got)
	}
	failAll.Store(true)
	if _, err := client.DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{}); err == nil {
		t.Fatal("want UnauthorizedOperation")
	}
	denied := Labels{"api": "aws", "operation": "EC2.DescribeVpcs", "code": "UnauthorizedOperation"}
	if got := m.Value(MetricAPIErrors, denied); got != 1 {
		t.Errorf("meshd_api_errors_total{code=UnauthorizedOperation} = %v, want 1 (not retried)", got)
	}
	var page strings.Builder
	if _, err := m.WriteTo(&page); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), `meshd_api_errors_total{api="aws",code="RequestLimitExceeded",operation="EC2.DescribeVpcs"} 2`) {
		t.Errorf("/metrics lacks the throttled attempts:\n%s", page.String())
	}
}

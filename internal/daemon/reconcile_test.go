package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/errclass"
)

// timeoutErr is a net.Error that timed out (a dial or read deadline).
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestUnitIsTransient(t *testing.T) {
	cases := map[string]struct {
		reason string
		err    error
		want   bool
	}{
		"Marked":   {reason: "a provider's transient mark survives wrapping", err: fmt.Errorf("observing us-west-1: %w", errclass.Transient(errors.New("Throttling"))), want: true},
		"Deadline": {reason: "a deadline that passed is worth a quick retry", err: fmt.Errorf("listing: %w", context.DeadlineExceeded), want: true},
		"Timeout":  {reason: "a network timeout is worth a quick retry", err: &net.OpError{Op: "dial", Err: timeoutErr{}}, want: true},
		"Plain":    {reason: "an unmarked error waits for the next interval", err: errors.New("InvalidVpcID.NotFound"), want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, isTransient(tc.err)); diff != "" {
				t.Errorf("%s\nisTransient(%q): -want, +got:\n%s", tc.reason, tc.err, diff)
			}
		})
	}
}

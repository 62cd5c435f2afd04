package errclass

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUnitTransient(t *testing.T) {
	base := errors.New("RequestLimitExceeded: slow down")
	cases := map[string]struct {
		reason        string
		err           error
		wantTransient bool
		wantMessage   string
	}{
		"Unmarked": {
			reason:      "an error nobody marked is not transient",
			err:         base,
			wantMessage: "RequestLimitExceeded: slow down",
		},
		"Marked": {
			reason:        "a marked error is transient and reads as before",
			err:           Transient(base),
			wantTransient: true,
			wantMessage:   "RequestLimitExceeded: slow down",
		},
		"WrappedAfterMarking": {
			reason:        "wrapping with %w keeps the mark",
			err:           fmt.Errorf("observing us-west-1: %w", Transient(base)),
			wantTransient: true,
			wantMessage:   "observing us-west-1: RequestLimitExceeded: slow down",
		},
		"Joined": {
			reason:        "a joined error is transient when one of its parts is",
			err:           errors.Join(errors.New("other"), Transient(base)),
			wantTransient: true,
			wantMessage:   "other\nRequestLimitExceeded: slow down",
		},
		"MarkedTwice": {
			reason:        "marking twice is marking once",
			err:           Transient(Transient(base)),
			wantTransient: true,
			wantMessage:   "RequestLimitExceeded: slow down",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.wantTransient, IsTransient(tc.err)); diff != "" {
				t.Errorf("%s\nIsTransient(...): -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantMessage, tc.err.Error()); diff != "" {
				t.Errorf("%s\nError(): -want, +got:\n%s", tc.reason, diff)
			}
			if !errors.Is(tc.err, base) {
				t.Errorf("%s\nerrors.Is(err, base) = false: the mark hides the error it wraps", tc.reason)
			}
		})
	}
	if Transient(nil) != nil {
		t.Error("Transient(nil) is not nil")
	}
}

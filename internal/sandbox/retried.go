package sandbox

import (
	"errors"

	"github.com/aws/smithy-go"
)

// Retried reports whether err is the answer to the SDK's retry of a create that moto had already done: the
// first attempt stored the object and then failed with HTTP 500 (seen under load: plain moto_server runs
// requests on threads over unlocked dicts, "dictionary changed size during iteration"), so the retry finds
// the object there and gets one of the duplicate codes. testenv.RunMoto now runs moto's writes one at a
// time, which removes that cause; this stays for any other failure after the write (a reset connection). Only pass codes that, for the
// call at hand, can mean nothing but "already done": the sandbox is the only writer of what it creates.
// Tests and the sandbox call it on their own setup calls; meshd's executors handle the same case
// themselves.
func Retried(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}

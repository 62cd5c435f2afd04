// Package errclass lets an error say what kind of failure it is, so that code far from where it happened
// (the daemon deciding how soon to retry) can tell without knowing the API it came from. A provider marks
// the errors it returns; the mark survives any wrapping with %w.
package errclass

import "errors"

// errTransient is the mark: never returned alone, only found with errors.Is through Transient's wrapper.
var errTransient = errors.New("transient")

// transient wraps an error without changing its message, so that logs and the errors users read stay as
// they were.
type transient struct{ err error }

func (t *transient) Error() string        { return t.err.Error() }
func (t *transient) Unwrap() error        { return t.err }
func (t *transient) Is(target error) bool { return target == errTransient }

// Transient marks err as a passing failure worth retrying soon: throttling, a service briefly unavailable.
// Transient(nil) is nil.
func Transient(err error) error {
	if err == nil || IsTransient(err) {
		return err
	}
	return &transient{err}
}

// IsTransient reports whether err, or any error it wraps, was marked with Transient.
func IsTransient(err error) bool { return errors.Is(err, errTransient) }

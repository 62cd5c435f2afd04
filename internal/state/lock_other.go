//go:build !unix

package state

import (
	"context"
	"errors"
)

// Lock is not implemented on this platform: the local backend's lock relies on flock(2).
func (l *Local) Lock(ctx context.Context) (func() error, error) {
	return nil, errors.New("lock state: the local state backend's lock needs flock(2), which this platform lacks")
}

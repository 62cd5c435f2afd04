// Package secretstate keeps meshd's state in a Kubernetes Secret of a management cluster, locked with a
// Lease, for the daemon's replicas. It lives apart from package state so that the planner, which depends on
// state, does not depend on client-go.
package secretstate

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/state"
)

// secretKey holds the gzip-compressed JSON state: a 100-cluster mesh records ~30,000 routes, several MB of
// JSON, and a Secret holds at most 1 MiB.
const secretKey = "state.json.gz"

// maxSecretBytes is Kubernetes' limit on a Secret's data.
const maxSecretBytes = 1 << 20

// maxStateBytes bounds the state once decompressed. meshd's JSON compresses about 35 to 1 (30,000 routes: 6.6 MB
// into 180 KB), so a state that fits in a Secret stays well under 64 times the Secret's limit; a gzip bomb
// (deflate reaches 1000 to 1, a 1 MiB Secret can hold 1 GiB of zeros) stops here, at a size a 256 MiB pod
// survives, instead of killing meshd at every pass. Write refuses a larger state, so whatever meshd wrote it
// can read.
const maxStateBytes = 64 * maxSecretBytes

// Secret keeps the state in a Kubernetes Secret, for the daemon running in a management cluster. The lock is
// a coordination.k8s.io Lease named "<secret>-lock" whose holder is the locking process; a lease not renewed
// for LeaseDuration is free again (its holder died).
type Secret struct {
	Client    kubeclient.Interface
	Namespace string
	Name      string
	// Identity names this process in the lease (pod name, or host and PID).
	Identity string
	// LeaseDuration is how long a lock holds without renewal. The holder renews it every third of that
	// while it holds the lock, so a long pass keeps it and a holder that dies frees it quickly. Default 15s.
	LeaseDuration time.Duration

	resourceVersion string        // of the Secret as last read, for an optimistic update
	lost            chan struct{} // of the lock taken last; closed when it is lost
}

// Lost is closed when the lock taken by the last Lock is lost: its Lease now names another holder, or it
// could not be renewed for LeaseDuration, after which another process may take it (state.LosableLock).
func (s *Secret) Lost() <-chan struct{} { return s.lost }

// NewSecret returns a Secret backend.
func NewSecret(c kubeclient.Interface, namespace, name, identity string) *Secret {
	return &Secret{Client: c, Namespace: namespace, Name: name, Identity: identity, LeaseDuration: 15 * time.Second}
}

func (s *Secret) where() string { return fmt.Sprintf("secret %s/%s", s.Namespace, s.Name) }

var managedLabels = map[string]string{"app.kubernetes.io/managed-by": "meshd"}

// Lock takes the Lease, waiting (until ctx is done) while another live holder has it.
func (s *Secret) Lock(ctx context.Context) (func() error, error) {
	leases := s.Client.CoordinationV1().Leases(s.Namespace)
	name := s.Name + "-lock"
	seconds := int32(s.LeaseDuration / time.Second)
	delay := 50 * time.Millisecond
	// A lease is judged expired by how long its renew time has stayed the same on this host's clock, not by
	// comparing the holder's clock with ours (as client-go's leader election does): skew between a laptop
	// and a pod must not let two processes hold the lock.
	var seenRenew string
	var seenAt time.Time
	// held is the last "held by" answer: when the wait runs out during a request (a rate limiter's wait, a
	// slow API server), the user is told who holds the lock, not that a request was cut short.
	var held error
	for {
		now := metav1.NewMicroTime(time.Now())
		lease, err := leases.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.Namespace, Labels: managedLabels},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: &s.Identity, LeaseDurationSeconds: &seconds, AcquireTime: &now, RenewTime: &now},
			}, metav1.CreateOptions{})
			if err == nil {
				return s.hold(name), nil
			}
		case err == nil:
			holder := ""
			if lease.Spec.HolderIdentity != nil {
				holder = *lease.Spec.HolderIdentity
			}
			renew := ""
			if lease.Spec.RenewTime != nil {
				renew = lease.Spec.RenewTime.Format(time.RFC3339Nano)
			}
			if renew != seenRenew || seenAt.IsZero() {
				seenRenew, seenAt = renew, time.Now()
			}
			expired := lease.Spec.LeaseDurationSeconds == nil ||
				time.Since(seenAt) > time.Duration(*lease.Spec.LeaseDurationSeconds)*time.Second
			if holder == "" || holder == s.Identity || expired {
				lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds = &s.Identity, &seconds
				lease.Spec.AcquireTime, lease.Spec.RenewTime = &now, &now
				if _, err = leases.Update(ctx, lease, metav1.UpdateOptions{}); err == nil {
					return s.hold(name), nil
				}
			} else {
				err = fmt.Errorf("%w: held by %s since %s (lease %s/%s)", state.ErrLocked, holder, lease.Spec.AcquireTime.Format(time.RFC3339), s.Namespace, name)
				held = err
			}
		}
		if err != nil && ctx.Err() != nil && held != nil {
			return nil, held
		}
		if err != nil && !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) && !errors.Is(err, state.ErrLocked) {
			return nil, fmt.Errorf("lock %s: %w", s.where(), err)
		}
		select {
		case <-ctx.Done():
			if held != nil {
				return nil, held
			}
			if err == nil || !errors.Is(err, state.ErrLocked) {
				err = fmt.Errorf("%w: lease %s/%s", state.ErrLocked, s.Namespace, name)
			}
			return nil, err
		case <-time.After(delay):
			delay = min(2*delay, time.Second)
		}
	}
}

// hold renews the Lease until the returned unlock is called, then releases it. When the lock is lost it
// closes s.lost and stops renewing.
func (s *Secret) hold(name string) func() error {
	stop := make(chan struct{})
	done := make(chan struct{})
	lost := make(chan struct{})
	s.lost = lost
	go func() {
		defer close(done)
		t := time.NewTicker(s.LeaseDuration / 3)
		defer t.Stop()
		renewed := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				switch ours, err := s.renew(name); {
				case !ours:
					close(lost)
					return
				case err == nil:
					renewed = time.Now()
				case time.Since(renewed) >= s.LeaseDuration:
					close(lost) // expired for the others: one of them may hold it now
					return
				}
			}
		}
	}()
	var once sync.Once
	release := s.unlock(name)
	return func() error {
		var err error
		once.Do(func() {
			close(stop)
			<-done
			err = release()
		})
		return err
	}
}

// renew moves the Lease's renew time forward if this process still holds it, and reports whether it does
// (true when that cannot be told: an error). A failed renewal is retried at the next tick; past
// LeaseDuration the lock counts as lost. Should a write come anyway, it is optimistic and fails rather
// than overwrite.
func (s *Secret) renew(name string) (ours bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.LeaseDuration/3)
	defer cancel()
	leases := s.Client.CoordinationV1().Leases(s.Namespace)
	lease, err := leases.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return !apierrors.IsNotFound(err), err
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != s.Identity {
		return false, nil
	}
	now := metav1.NewMicroTime(time.Now())
	lease.Spec.RenewTime = &now
	// A conflict (the Lease changed meanwhile) is read again at the next tick, like any other error.
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return true, err
}

func (s *Secret) unlock(name string) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		leases := s.Client.CoordinationV1().Leases(s.Namespace)
		lease, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("unlock %s: %w", s.where(), err)
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != s.Identity {
			return nil // taken over after expiry: not ours to release
		}
		empty := ""
		lease.Spec.HolderIdentity = &empty
		if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("unlock %s: %w", s.where(), err)
		}
		return nil
	}
}

// Read returns the stored state, or an empty one when the Secret does not exist.
func (s *Secret) Read(ctx context.Context) (*state.State, error) {
	sec, err := s.Client.CoreV1().Secrets(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s.resourceVersion = ""
		return state.New(""), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.where(), err)
	}
	s.resourceVersion = sec.ResourceVersion
	zr, err := gzip.NewReader(bytes.NewReader(sec.Data[secretKey]))
	if err != nil {
		return nil, fmt.Errorf("%s: key %s is not gzip data: %w", s.where(), secretKey, err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, maxStateBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.where(), err)
	}
	if len(data) > maxStateBytes {
		return nil, fmt.Errorf("%s: key %s expands to more than %d MiB, the most a state meshd writes can be; it was not written by meshd", s.where(), secretKey, maxStateBytes>>20)
	}
	return state.Decode(s.where(), data)
}

// Write stores st, refusing to overwrite a Secret changed since the last Read.
func (s *Secret) Write(ctx context.Context, st *state.State) error {
	oldSerial, oldLineage := st.Serial, st.Lineage
	st.Serial++
	if st.Lineage == "" {
		lineage, err := state.NewLineage()
		if err != nil {
			st.Serial = oldSerial
			return err
		}
		st.Lineage = lineage
	}
	st.Version = state.FormatVersion
	data, err := state.Encode(st)
	if err != nil {
		st.Serial, st.Lineage = oldSerial, oldLineage
		return err
	}
	if len(data) > maxStateBytes {
		st.Serial, st.Lineage = oldSerial, oldLineage
		return fmt.Errorf("write %s: the state is %d MiB, over the %d MiB meshd reads back from a Secret; use the local state file", s.where(), len(data)>>20, maxStateBytes>>20)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(data)
	_ = zw.Close()
	if buf.Len() > maxSecretBytes {
		st.Serial, st.Lineage = oldSerial, oldLineage
		return fmt.Errorf("write %s: the state is %d bytes compressed, over Kubernetes' 1 MiB limit for a Secret; use the local state file", s.where(), buf.Len())
	}
	secrets := s.Client.CoreV1().Secrets(s.Namespace)
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: managedLabels, ResourceVersion: s.resourceVersion},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{secretKey: buf.Bytes()},
	}
	var out *corev1.Secret
	if s.resourceVersion == "" {
		out, err = secrets.Create(ctx, sec, metav1.CreateOptions{})
	} else {
		out, err = secrets.Update(ctx, sec, metav1.UpdateOptions{})
	}
	if err != nil {
		st.Serial, st.Lineage = oldSerial, oldLineage
		return fmt.Errorf("write %s: %w", s.where(), err)
	}
	s.resourceVersion = out.ResourceVersion
	return nil
}

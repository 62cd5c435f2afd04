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
// for the duration it records is free again (its holder died).
//
// Two writers never overlap: a waiter takes a Lease only once it has seen it unchanged, on its own clock,
// for the whole duration the Lease records (spec.leaseDurationSeconds, rounded up from the holder's
// LeaseDuration), while the holder counts its lock as lost when no renewal it started in the last two thirds
// of LeaseDuration has succeeded. A successful renewal is in the Lease before a waiter can see it, and the
// holder counts from when it sent it, so the holder gives up at least a third of LeaseDuration before any
// waiter can take over.
type Secret struct {
	Client    kubeclient.Interface
	Namespace string
	Name      string
	// Identity names this process in the lease (pod name, or host and PID).
	Identity string
	// LeaseDuration is how long a lock holds without renewal. The holder renews it every third of that
	// while it holds the lock, so a long pass keeps it and a holder that dies frees it quickly. Default 15s.
	LeaseDuration time.Duration
	// Wait bounds how long Lock waits for a holder that is alive (seen renewing its Lease); zero waits until
	// ctx is done. A holder that is not seen renewing is waited out whatever Wait is, until its Lease has
	// expired, so that the Lease of a holder that crashed is taken however long a duration it records.
	Wait time.Duration

	resourceVersion string        // of the Secret as last read, for an optimistic update
	lost            chan struct{} // of the lock taken last; closed when it is lost
	// seenVersion is the Lease's resourceVersion as this process last saw it, first at seenAt (local
	// clock). It outlives one Lock, so a daemon whose every pass waits less than a crashed holder's lease
	// duration still takes that Lease after a few passes.
	seenVersion string
	seenAt      time.Time
}

// Lost is closed when the lock taken by the last Lock is lost: its Lease now names another holder, or no
// renewal succeeded for two thirds of LeaseDuration, after which another process may soon take it
// (state.LosableLock).
func (s *Secret) Lost() <-chan struct{} { return s.lost }

// NewSecret returns a Secret backend.
func NewSecret(c kubeclient.Interface, namespace, name, identity string) *Secret {
	return &Secret{Client: c, Namespace: namespace, Name: name, Identity: identity, LeaseDuration: 15 * time.Second}
}

func (s *Secret) where() string { return fmt.Sprintf("secret %s/%s", s.Namespace, s.Name) }

var managedLabels = map[string]string{"app.kubernetes.io/managed-by": "meshd"}

// leaseSeconds is LeaseDuration as the Lease records it: rounded up, so that a waiter never waits less than
// the holder assumes.
func (s *Secret) leaseSeconds() int32 {
	return int32(max((s.LeaseDuration+time.Second-1)/time.Second, 1))
}

// lostAfter is how long the holder keeps counting its lock as held without a successful renewal: two thirds
// of LeaseDuration, which leaves a third as the margin before a waiter may take the Lease.
func (s *Secret) lostAfter() time.Duration { return s.LeaseDuration * 2 / 3 }

// Lock takes the Lease, waiting while another holder has it: until ctx is done, and for a holder seen alive
// at most Wait.
func (s *Secret) Lock(ctx context.Context) (func() error, error) {
	if s.LeaseDuration <= 0 {
		s.LeaseDuration = 15 * time.Second
	}
	leases := s.Client.CoordinationV1().Leases(s.Namespace)
	name := s.Name + "-lock"
	seconds := s.leaseSeconds()
	start := time.Now()
	delay := 50 * time.Millisecond
	// held is the last "held by" answer: when the wait runs out during a request (a rate limiter's wait, a
	// slow API server), the user is told who holds the lock, not that a request was cut short.
	var held error
	// alive: the Lease changed while this Lock waited, so its holder renews it.
	alive := false
	for {
		// Taken before the request: the holder counts its lock from when it sent the write.
		now := metav1.NewMicroTime(time.Now())
		lease, err := leases.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.Namespace, Labels: managedLabels},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: &s.Identity, LeaseDurationSeconds: &seconds, AcquireTime: &now, RenewTime: &now},
			}, metav1.CreateOptions{})
			if err == nil {
				return s.hold(name, now.Time), nil
			}
		case err == nil:
			holder := ""
			if lease.Spec.HolderIdentity != nil {
				holder = *lease.Spec.HolderIdentity
			}
			// A lease is judged expired by how long it has stayed the same on this host's clock, not by
			// comparing the holder's clock with ours (as client-go's leader election does): skew between a
			// laptop and a pod must not let two processes hold the lock.
			if lease.ResourceVersion != s.seenVersion {
				alive = alive || (s.seenVersion != "" && held != nil)
				s.seenVersion, s.seenAt = lease.ResourceVersion, time.Now()
			}
			unchanged := time.Since(s.seenAt)
			expired := lease.Spec.LeaseDurationSeconds == nil ||
				unchanged > time.Duration(*lease.Spec.LeaseDurationSeconds)*time.Second
			if holder == "" || holder == s.Identity || expired {
				lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds = &s.Identity, &seconds
				lease.Spec.AcquireTime, lease.Spec.RenewTime = &now, &now
				if _, err = leases.Update(ctx, lease, metav1.UpdateOptions{}); err == nil {
					return s.hold(name, now.Time), nil
				}
			} else {
				since := "an unknown time"
				if lease.Spec.AcquireTime != nil {
					since = lease.Spec.AcquireTime.Format(time.RFC3339)
				}
				err = fmt.Errorf("%w: held by %s since %s (lease %s/%s of %ds, seen unchanged for %s)", state.ErrLocked, holder,
					since, s.Namespace, name, *lease.Spec.LeaseDurationSeconds, unchanged.Round(time.Second))
				held = err
			}
		}
		if err != nil && ctx.Err() != nil && held != nil {
			return nil, held
		}
		if err != nil && !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) && !errors.Is(err, state.ErrLocked) {
			return nil, fmt.Errorf("lock %s: %w", s.where(), err)
		}
		if alive && s.Wait > 0 && time.Since(start) >= s.Wait && errors.Is(err, state.ErrLocked) {
			return nil, err
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

// hold renews the Lease until the returned unlock is called, then releases it. renewed is when the write
// that took the Lease was sent. When the lock is lost it closes s.lost and stops renewing.
func (s *Secret) hold(name string, renewed time.Time) func() error {
	stop := make(chan struct{})
	done := make(chan struct{})
	lost := make(chan struct{})
	s.lost = lost
	go func() {
		defer close(done)
		every := s.LeaseDuration / 3
		retry := min(s.LeaseDuration/12, time.Second) // after a failed renewal, so that one failure costs little
		next := time.NewTimer(every)
		defer next.Stop()
		for {
			deadline := renewed.Add(s.lostAfter())
			giveUp := time.NewTimer(time.Until(deadline))
			select {
			case <-stop:
				giveUp.Stop()
				return
			case <-giveUp.C:
				close(lost) // a waiter may take the Lease a third of LeaseDuration from now
				return
			case <-next.C:
				giveUp.Stop()
				sent := time.Now()
				ours, err := s.renew(name, deadline)
				switch {
				case !ours:
					close(lost)
					return
				case err == nil:
					renewed = sent
					next.Reset(every)
				case !time.Now().Before(deadline):
					close(lost)
					return
				default:
					next.Reset(retry)
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
// (true when that cannot be told: an error). A request still unanswered at deadline, when the lock counts as
// lost, is abandoned. A failed renewal is retried soon; should a write under a lost lock come anyway, it is
// optimistic and fails rather than overwrite.
func (s *Secret) renew(name string, deadline time.Time) (ours bool, err error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
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
	// A conflict (the Lease changed meanwhile) is read again at the next try, like any other error.
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

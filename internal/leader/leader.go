// Package leader elects one acting meshd among replicas with a coordination.k8s.io Lease (client-go's
// leader election), so that two or more replicas can run for availability while exactly one plans and writes.
package leader

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/meshd-io/meshd/internal/kubeclient"
)

// Elector campaigns for the Lease and reports whether this replica leads.
type Elector struct {
	Client    kubeclient.Interface
	Namespace string
	Name      string
	Identity  string
	// Timings of client-go's election; defaults 15s / 10s / 2s as in kube-controller-manager. A dead leader is
	// replaced within about LeaseDuration. Run keeps RenewDeadline at most two thirds of LeaseDuration (and
	// RetryPeriod short enough for client-go), whatever was set: a leader that cannot renew stops a third of
	// the lease before another replica may take over, and a short LeaseDuration alone is not refused.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Log                                       *zap.Logger
	// OnLost is called when leadership that was held is lost; meshd stops then, so that a replica that can
	// no longer renew never acts next to a new leader.
	OnLost func()

	leading atomic.Bool
}

// IsLeader reports whether this replica holds the Lease now.
func (e *Elector) IsLeader() bool { return e.leading.Load() }

// Run campaigns until ctx is done; onLead is called (once) when this replica becomes the leader. The Lease
// is released on return, so a replica stopping cleanly hands over at once.
func (e *Elector) Run(ctx context.Context, onLead func()) error {
	if e.LeaseDuration == 0 {
		e.LeaseDuration, e.RenewDeadline, e.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
	}
	if renew, retry := timings(e.LeaseDuration, e.RenewDeadline, e.RetryPeriod); renew != e.RenewDeadline || retry != e.RetryPeriod {
		e.Log.Warn("leader election timings adjusted to the lease duration",
			zap.Duration("lease_duration", e.LeaseDuration), zap.Duration("renew_deadline", renew), zap.Duration("retry_period", retry),
			zap.Duration("renew_deadline_asked", e.RenewDeadline), zap.Duration("retry_period_asked", e.RetryPeriod))
		e.RenewDeadline, e.RetryPeriod = renew, retry
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, e.Namespace, e.Name,
		e.Client.CoreV1(), e.Client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: e.Identity})
	if err != nil {
		return err
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   e.LeaseDuration,
		RenewDeadline:   e.RenewDeadline,
		RetryPeriod:     e.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            e.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				e.leading.Store(true)
				e.Log.Info("became the leader", zap.String("identity", e.Identity), zap.String("lease", e.Namespace+"/"+e.Name))
				if onLead != nil {
					onLead()
				}
			},
			OnStoppedLeading: func() {
				was := e.leading.Swap(false)
				if was && ctx.Err() == nil {
					e.Log.Warn("lost leadership", zap.String("identity", e.Identity))
					if e.OnLost != nil {
						e.OnLost()
					}
				}
			},
			OnNewLeader: func(identity string) {
				if identity != e.Identity {
					e.Log.Info("following", zap.String("leader", identity))
				}
			},
		},
	})
	if err != nil {
		return err
	}
	le.Run(ctx)
	return nil
}

// timings returns the renew deadline and retry period to use with lease: as given when they leave the
// leader a third of the lease between giving up and a takeover, else two thirds of the lease and a fifth of
// that (client-go refuses a renew deadline not longer than 1.2 retry periods, and one not shorter than the
// lease: with --leader-elect-lease-duration=5s and the default 10s deadline, a replica never led).
func timings(lease, renew, retry time.Duration) (time.Duration, time.Duration) {
	if most := lease * 2 / 3; renew <= 0 || renew > most {
		renew = most
	}
	if retry <= 0 || float64(retry)*leaderelection.JitterFactor >= float64(renew) {
		retry = renew / 5
	}
	return renew, retry
}

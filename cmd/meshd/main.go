// Command meshd keeps a mesh as its spec says: it loops observe -> plan -> apply, on a timer for AWS, on
// watches for Kubernetes and the spec file, and on demand (SIGHUP, POST /trigger).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/smithy-go/middleware"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"

	"github.com/meshd-io/meshd/internal/daemon"
	"github.com/meshd-io/meshd/internal/engine"
	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/leader"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
	"github.com/meshd-io/meshd/internal/state/secretstate"
)

// version is meshd's version, set at build time (the Makefile stamps the git description):
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/meshd
var version = "dev"

type options struct {
	spec, statePath, kubeconfig, metricsAddr, triggerAddr, policy, logLevel string
	interval, minInterval, grace, waitTimeout, observeTimeout               time.Duration
	dryRun, fullObserve, allowMassRemoval, version                          bool

	// The management cluster holds the leader Lease and, with --state-secret, the state.
	managementContext, stateSecret            string
	leaderElect                               bool
	leaseNamespace, leaseName                 string
	leaseDuration, renewDeadline, retryPeriod time.Duration
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.spec, "spec", "", "spec file or directory of *.hcl files (watched for changes)")
	fs.StringVar(&o.statePath, "state", "meshd.state.json", "state file (ignored with --state-secret)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, then ~/.kube/config)")
	fs.DurationVar(&o.interval, "interval", 30*time.Second, "period of the AWS observation (in the background) and of the pass of every cluster that follows it, ±10% jitter")
	fs.DurationVar(&o.minInterval, "min-interval", time.Second, "least time between two observations of AWS (each makes 6 EC2 Describe calls per region): on the interval, and by passes asked for by the spec, SIGHUP or POST /trigger; a pass asked for by a Kubernetes watch makes no AWS call and waits only 50 ms after the last")
	fs.DurationVar(&o.grace, "shutdown-grace", 20*time.Second, "on SIGTERM, how long the pass under way may go on before it is abandoned")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "127.0.0.1:9090", "address for /metrics, /healthz and /readyz (empty: off); /healthz fails when the loop stops running passes, /readyz after three intervals without a successful pass")
	fs.StringVar(&o.triggerAddr, "trigger-addr", "127.0.0.1:9091", "address for POST /trigger, which asks for a pass; it answers loopback clients only, whatever the address (empty: off)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "observe and report drift, change nothing")
	fs.StringVar(&o.policy, "policy", "sync", "sync (create, update, delete) or upsert-only (never delete)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&o.waitTimeout, "wait-timeout", 90*time.Second, "how long one pass waits for a peering or a DNS load balancer before leaving it to the next pass; also the longest a pass holds the state lock")
	fs.DurationVar(&o.observeTimeout, "aws-observe-timeout", 30*time.Second, "how long a pass waits for AWS to be observed before it corrects Kubernetes from the last AWS observation (and changes nothing in AWS)")
	fs.BoolVar(&o.fullObserve, "full-observe", false, "observe all of AWS and Kubernetes on every pass, also on one triggered by a Kubernetes watch (by default such a pass reads only the cluster that changed and reuses the last AWS observation while younger than --interval)")
	fs.BoolVar(&o.allowMassRemoval, "allow-mass-removal", false, "accept a spec that removes all, or more than half, of the members the state records (refused by default: the last good spec stays enforced; meshctl destroy is the way to remove a mesh)")
	fs.BoolVar(&o.version, "version", false, "print meshd's version and exit")
	fs.StringVar(&o.managementContext, "management-context", "", "kubeconfig context of the cluster holding the Lease and state Secret (empty: in-cluster config)")
	fs.StringVar(&o.stateSecret, "state-secret", "", "keep the state in this Secret (NAMESPACE/NAME) of the management cluster instead of a file")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "run as one of several replicas: only the holder of the Lease acts")
	fs.StringVar(&o.leaseNamespace, "leader-elect-namespace", "meshd-system", "namespace of the leader Lease")
	fs.StringVar(&o.leaseName, "leader-elect-name", "", "name of the leader Lease (default meshd-<mesh>)")
	fs.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "how long a leader holds the Lease without renewing it")
	fs.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "how long the leader keeps trying to renew before it gives up")
	fs.DurationVar(&o.retryPeriod, "leader-elect-retry-period", 2*time.Second, "how often replicas try to take or renew the Lease")
}

func main() {
	var o options
	fs := flag.NewFlagSet("meshd", flag.ExitOnError)
	o.register(fs)
	_ = fs.Parse(os.Args[1:])
	if o.version {
		fmt.Printf("meshd %s\nstate format version %d\n", version, state.FormatVersion)
		return
	}

	log, err := newLogger(o.logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshd:", err)
		os.Exit(1)
	}
	defer log.Sync()
	if err := run(o, log); err != nil {
		log.Error("meshd stopped", zap.Error(err))
		os.Exit(1)
	}
}

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.EncoderConfig.TimeKey = "time"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return cfg.Build()
}

func run(o options, log *zap.Logger) error {
	if o.spec == "" {
		return fmt.Errorf("--spec is required")
	}
	if o.policy != "sync" && o.policy != "upsert-only" {
		return fmt.Errorf("--policy must be sync or upsert-only, not %q", o.policy)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	metrics := daemon.NewMetrics()
	specs, m, err := loadSpec(o, log)
	if err != nil {
		return err
	}
	// meshd's own writes are told apart from others' in its watches by the resourceVersion each returned.
	own := &daemon.OwnWrites{}
	eng, err := newEngine(ctx, o, m, metrics, own, log)
	if err != nil {
		return err
	}
	identity := podIdentity()
	backend, mgmt, err := newBackend(o, eng, identity)
	if err != nil {
		return err
	}
	rec := newReconciler(o, eng, backend, specs, metrics, log, identity)
	// Control-plane tokens are renewed when due, not only when the interval comes round.
	renewal := &daemon.RenewalTimer{}
	defer renewal.Stop()
	rec.Planned = renewal.Schedule
	ctl := newController(o, rec)
	rec.AWSChanged = ctl.ObserveSoon
	renewal.Trigger = ctl.Trigger

	if o.leaderElect {
		var stopElecting func()
		ctx, stopElecting = elect(ctx, o, m, mgmt, rec, ctl, metrics, log, identity)
		defer stopElecting()
	} else {
		metrics.Set(daemon.MetricLeader, nil, 1)
	}

	// The watches follow the spec the passes enforce: a spec on disk that a pass refuses (it would remove most
	// members) does not take the watches of the members it removes away.
	watches := &kubeWatches{client: eng.KubeClient, log: log, trigger: ctl.TriggerKube, own: own}
	watches.restart(ctx, specs.Current())
	rec.Enforcing = func(m *spec.Mesh) { watches.restart(ctx, m) }
	if err := watchSpec(ctx, specs, ctl, metrics, log); err != nil {
		return err
	}
	defer triggerOnSIGHUP(ctx, ctl)()
	srv, err := startServers(o, specs, rec, ctl, metrics, log)
	if srv != nil {
		defer shutdown(srv)
	}
	if err != nil {
		return err
	}
	log.Info("meshd started", zap.String("mesh", m.Name), zap.String("spec", o.spec), zap.Duration("interval", o.interval),
		zap.Bool("dry_run", o.dryRun), zap.String("policy", o.policy))
	ctl.Run(ctx)
	watches.stop()
	log.Info("meshd stopping")
	return nil
}

// loadSpec reads the spec meshd starts with; SpecSource keeps the last valid one from then on.
func loadSpec(o options, log *zap.Logger) (*daemon.SpecSource, *spec.Mesh, error) {
	specs := &daemon.SpecSource{Path: o.spec}
	_, m, diags := specs.Reload()
	for _, d := range daemon.FormatDiagnostics(diags) {
		log.Error("invalid spec", zap.String("diagnostic", d))
	}
	if specs.Current() == nil {
		return nil, nil, fmt.Errorf("the spec at %s has errors; fix it and start again", o.spec)
	}
	return specs, m, nil
}

// newEngine builds the engine as the daemon runs it.
func newEngine(ctx context.Context, o options, m *spec.Mesh, metrics *daemon.Metrics, own *daemon.OwnWrites, log *zap.Logger) (*engine.Engine, error) {
	return engine.New(ctx, engine.Options{
		Mesh: m.Name, Kubeconfig: o.kubeconfig,
		Progress:      func(msg string) { log.Info(msg) },
		ApplyProgress: func(msg string) { log.Debug(msg) },
		// PartialDNS: one member cluster that is down must not stop the corrections meshd can make elsewhere.
		PartialDNS: true,
		// Each pass also checks every path between members (meshd_path_ok), from the same observation plus
		// the network ACLs: one more EC2 call per region and pass.
		ObserveNetwork:    true,
		VerifyPaths:       true,
		AWSAPIOptions:     []func(*middleware.Stack) error{metrics.CountAWSCalls},
		KubeWrapTransport: func(rt http.RoundTripper) http.RoundTripper { return own.Wrap(metrics.CountKubeCalls(rt)) },
		// A pass must not hold the state for minutes on a load balancer or a peering that is slow to come: it
		// gives up and the next pass looks again.
		WaitTimeout:       o.waitTimeout,
		AWSObserveTimeout: o.observeTimeout,
	})
}

// podIdentity names this replica: its pod, else host and process.
func podIdentity() string {
	if identity := os.Getenv("POD_NAME"); identity != "" {
		return identity
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s_%d", host, os.Getpid())
}

// newBackend is the state backend: the local file, or the Secret of --state-secret in the management
// cluster (whose client it also returns, for the leader Lease).
func newBackend(o options, eng *engine.Engine, identity string) (state.Backend, kubeclient.Interface, error) {
	if o.leaderElect && o.stateSecret == "" {
		return nil, nil, fmt.Errorf("--leader-elect needs --state-secret: replicas must share one state, or a new leader would plan from a stale one")
	}
	if !o.leaderElect && o.stateSecret == "" {
		return state.NewLocal(o.statePath), nil, nil
	}
	mgmt, err := managementClient(eng.KubeClient, o.managementContext)
	if err != nil {
		return nil, nil, err
	}
	ns, name, ok := strings.Cut(o.stateSecret, "/")
	if !ok || ns == "" || name == "" {
		return nil, nil, fmt.Errorf("--state-secret must be NAMESPACE/NAME, not %q", o.stateSecret)
	}
	secret := secretstate.NewSecret(mgmt, ns, name, identity)
	secret.LeaseDuration = o.leaseDuration
	return secret, mgmt, nil
}

// newReconciler is one pass's work, with Events on the objects each correction touched.
func newReconciler(o options, eng *engine.Engine, backend state.Backend, specs *daemon.SpecSource, metrics *daemon.Metrics, log *zap.Logger, identity string) *daemon.Reconciler {
	var rec *daemon.Reconciler
	rec = &daemon.Reconciler{
		Engine: eng, Backend: backend, Spec: specs, Log: log, Metrics: metrics,
		DryRun: o.dryRun, UpsertOnly: o.policy == "upsert-only", ShutdownGrace: o.grace,
		AWSInterval: awsReuse(o), FullObserve: o.fullObserve, MaxLockHold: o.waitTimeout,
		AllowMassRemoval: o.allowMassRemoval,
		Events: &daemon.KubeEvents{Host: identity, Client: func(cluster string) (kubeclient.Interface, error) {
			// The Events go to the objects of the plan, made from the spec the pass enforced.
			m := rec.Enforced()
			if m == nil {
				m = specs.Current()
			}
			c := m.Cluster(cluster)
			if c == nil {
				return nil, fmt.Errorf("no cluster %q", cluster)
			}
			return eng.KubeClient(engine.KubeContext(c))
		}},
	}
	return rec
}

// awsReuse is how old an AWS observation a pass asked for by watch events plans from. AWS is observed in
// the background every --interval (±10%), which takes up to --aws-observe-timeout: twice the interval and
// the timeout leave room for one observation that failed (a full pass then observes AWS itself). With
// --full-observe every pass observes AWS.
func awsReuse(o options) time.Duration {
	if o.fullObserve {
		return o.interval
	}
	return 2*o.interval + o.observeTimeout
}

// newController decides when the reconciler's passes run. AWS is observed in the background on the
// interval (rec.ObserveAWS), so that no pass asked for by a watch waits for it; not with --full-observe.
func newController(o options, rec *daemon.Reconciler) *daemon.Controller {
	var observe func(context.Context) error
	if !o.fullObserve {
		observe = rec.ObserveAWS
	}
	return &daemon.Controller{Interval: o.interval, Jitter: 0.1, MinInterval: o.minInterval, MaxPass: rec.PassBound(), Observe: observe,
		Pass: func(ctx context.Context, why daemon.Reason) error {
			err := rec.PassFor(ctx, why)
			// A pass allocates far more than meshd keeps between passes (AWS and Kubernetes responses, the
			// plan); hand that back to the OS now rather than holding it for the runtime's slow scavenger, so
			// an idle meshd stays small. One extra GC of a ~10 MiB heap per pass is cheap.
			debug.FreeOSMemory()
			return err
		}}
}

// elect runs the leader election on the Lease. The returned context ends when leadership is lost; the
// returned func, deferred by run, releases the Lease once the last pass has returned.
func elect(ctx context.Context, o options, m *spec.Mesh, mgmt kubeclient.Interface, rec *daemon.Reconciler, ctl *daemon.Controller,
	metrics *daemon.Metrics, log *zap.Logger, identity string) (context.Context, func()) {
	name := o.leaseName
	if name == "" {
		name = "meshd-" + m.Name
	}
	// Losing the Lease stops everything at once: the pass under way is abandoned without the SIGTERM
	// grace, so this replica never acts beside the new leader.
	lost, loseLeadership := context.WithCancel(context.Background())
	rec.Abandon = lost
	runCtx, stopRun := context.WithCancel(ctx)
	// The elector outlives ctx: it releases the Lease only once the last pass has returned (below), so
	// that on SIGTERM the next leader does not start while this one still finishes its pass.
	electCtx, stopElecting := context.WithCancel(context.Background())
	elected := make(chan struct{})
	elector := &leader.Elector{Client: mgmt, Namespace: o.leaseNamespace, Name: name, Identity: identity, Log: log,
		LeaseDuration: o.leaseDuration, RenewDeadline: o.renewDeadline, RetryPeriod: o.retryPeriod,
		OnLost: func() { loseLeadership(); stopRun(); metrics.Set(daemon.MetricLeader, nil, 0) }}
	rec.IsLeader = elector.IsLeader
	metrics.Set(daemon.MetricLeader, nil, 0)
	go func() {
		defer close(elected)
		_ = elector.Run(electCtx, func() {
			metrics.Set(daemon.MetricLeader, nil, 1)
			ctl.Trigger("became the leader")
		})
	}()
	return runCtx, func() {
		stopElecting()
		<-elected
		stopRun()
		loseLeadership()
	}
}

// watchSpec reloads the spec when its files change and asks for a pass when it did.
func watchSpec(ctx context.Context, specs *daemon.SpecSource, ctl *daemon.Controller, metrics *daemon.Metrics, log *zap.Logger) error {
	return specs.Watch(ctx, 200*time.Millisecond, func() {
		prev := specs.Current()
		changed, next, diags := specs.Reload()
		if changed && next.Name != prev.Name {
			// The providers tag and label with the mesh name they were started with; a renamed mesh is a new mesh.
			specs.Set(prev)
			metrics.Add(daemon.MetricSpecReloads, daemon.Labels{"result": "invalid"}, 1)
			log.Error("the spec on disk renames the mesh; enforcing the last good spec (restart meshd to manage another mesh)",
				zap.String("from", prev.Name), zap.String("to", next.Name))
			return
		}
		if diags.HasErrors() {
			metrics.Add(daemon.MetricSpecReloads, daemon.Labels{"result": "invalid"}, 1)
			for _, d := range daemon.FormatDiagnostics(diags) {
				log.Error("spec on disk is invalid; enforcing the last good spec", zap.String("diagnostic", d))
			}
			return
		}
		metrics.Add(daemon.MetricSpecReloads, daemon.Labels{"result": "ok"}, 1)
		if changed {
			// The pass checks it against the state before enforcing it (and then restarts the watches).
			log.Info("spec changed on disk")
			ctl.Trigger("spec changed")
		}
	})
}

// triggerOnSIGHUP asks for a pass on every SIGHUP until ctx ends; the returned func stops taking the signal.
// It takes it before returning: a SIGHUP that came before would end the process.
func triggerOnSIGHUP(ctx context.Context, ctl *daemon.Controller) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				ctl.Trigger("SIGHUP")
			}
		}
	}()
	return func() { signal.Stop(hup) }
}

// startServers serves /metrics, /healthz and /readyz, and POST /trigger. /healthz fails when the loop stops
// running passes (one hangs, or none starts when due): the kubelet then restarts a meshd that is stuck.
// Passes that fail do not count: a restart would not fix a member that is down or a missing permission, and
// would interrupt the leader's apply. They make /readyz fail after three intervals without a successful
// pass (a follower's skipped passes count). The server is returned also on error, to be shut down.
func startServers(o options, specs *daemon.SpecSource, rec *daemon.Reconciler, ctl *daemon.Controller, metrics *daemon.Metrics, log *zap.Logger) (*daemon.Server, error) {
	srv := &daemon.Server{Metrics: metrics, Trigger: ctl.Trigger, Ready: func() bool { return specs.Current() != nil },
		Live: ctl.Running, StaleAfter: 3 * o.interval, LastSuccess: rec.LastSuccess, Started: time.Now()}
	if o.metricsAddr != "" {
		if err := srv.Start(o.metricsAddr); err != nil {
			return srv, err
		}
		log.Info("serving metrics", zap.String("addr", srv.Addr()))
	}
	if o.triggerAddr != "" {
		if err := srv.StartTrigger(o.triggerAddr); err != nil {
			return srv, fmt.Errorf("--trigger-addr: %w", err)
		}
		log.Info("serving POST /trigger (loopback clients only)", zap.String("addr", srv.TriggerAddr()))
	}
	return srv, nil
}

func shutdown(srv *daemon.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// kubeClient returns the client of a kubeconfig context (the engine's KubeClient).
type kubeClient func(kubeContext string) (kubeclient.Interface, error)

// managementClient is the client of the cluster holding the Lease and the state Secret: the named context,
// or the in-cluster configuration when meshd runs in a pod.
func managementClient(client kubeClient, kubeContext string) (kubeclient.Interface, error) {
	if kubeContext != "" {
		return client(kubeContext)
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("--management-context is required outside a Kubernetes pod: %w", err)
	}
	return kubeclient.NewForConfig(cfg)
}

// kubeWatches runs the Kubernetes watch triggers for the clusters of the current spec, restarted when the
// spec changes.
type kubeWatches struct {
	client  kubeClient
	log     *zap.Logger
	trigger func(daemon.KubeEvent)
	own     *daemon.OwnWrites

	mu     sync.Mutex
	cancel context.CancelFunc
	// hash is the spec the running watches are for: restarting for the same spec is a no-op.
	hash string
}

func (w *kubeWatches) restart(ctx context.Context, m *spec.Mesh) {
	if m == nil {
		w.stop()
		return
	}
	w.mu.Lock()
	same := w.cancel != nil && w.hash == m.Hash()
	w.mu.Unlock()
	if same {
		return
	}
	w.stop()
	ctx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	w.cancel, w.hash = cancel, m.Hash()
	w.mu.Unlock()
	var clusters []daemon.WatchedCluster
	for _, c := range m.Clusters {
		client, err := w.client(engine.KubeContext(c))
		if err != nil {
			w.log.Warn("cannot watch cluster; its drift is seen on the interval", zap.String("cluster", c.Name), zap.Error(err))
			continue
		}
		clusters = append(clusters, daemon.WatchedCluster{Name: c.Name, Client: client, Own: w.own})
	}
	go func() {
		if err := daemon.WatchKubernetes(ctx, m, clusters, w.trigger); err != nil && ctx.Err() == nil {
			w.log.Warn("Kubernetes watches failed; drift is seen on the interval", zap.Error(err))
		}
	}()
}

func (w *kubeWatches) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancel != nil {
		w.cancel()
		w.cancel = nil
	}
}

// Command meshd keeps a mesh as its spec says: it loops observe -> plan -> apply, on a timer for AWS, on
// watches for Kubernetes and the spec file, and on demand (SIGHUP, POST /trigger).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/smithy-go/middleware"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/meshd-io/meshd/internal/daemon"
	"github.com/meshd-io/meshd/internal/engine"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/state"
)

type options struct {
	spec, statePath, kubeconfig, metricsAddr, policy, logLevel string
	interval, minInterval, grace                               time.Duration
	dryRun                                                     bool
}

func main() {
	var o options
	fs := flag.NewFlagSet("meshd", flag.ExitOnError)
	fs.StringVar(&o.spec, "spec", "", "spec file or directory of *.hcl files (watched for changes)")
	fs.StringVar(&o.statePath, "state", "meshd.state.json", "state file")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, then ~/.kube/config)")
	fs.DurationVar(&o.interval, "interval", 30*time.Second, "period of the full pass (AWS is observed on this timer), ±10% jitter")
	fs.DurationVar(&o.minInterval, "min-interval", 2*time.Second, "least time between two passes, whatever triggers them")
	fs.DurationVar(&o.grace, "shutdown-grace", 20*time.Second, "on SIGTERM, how long the pass under way may go on before it is abandoned")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "127.0.0.1:9090", "address for /metrics, /healthz, /readyz and POST /trigger (empty: off)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "observe and report drift, change nothing")
	fs.StringVar(&o.policy, "policy", "sync", "sync (create, update, delete) or upsert-only (never delete)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	_ = fs.Parse(os.Args[1:])

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
	specs := &daemon.SpecSource{Path: o.spec}
	_, m, diags := specs.Reload()
	for _, d := range daemon.FormatDiagnostics(diags) {
		log.Error("invalid spec", zap.String("diagnostic", d))
	}
	if specs.Current() == nil {
		return fmt.Errorf("the spec at %s has errors; fix it and start again", o.spec)
	}

	provider, err := awsprovider.New(ctx, awsprovider.Options{
		Mesh:       m.Name,
		APIOptions: []func(*middleware.Stack) error{metrics.CountAWSCalls},
		Progress:   func(msg string) { log.Info(msg) },
	})
	if err != nil {
		return err
	}
	eng := &engine.Engine{AWS: provider, Progress: func(msg string) { log.Debug(msg) }}

	rec := &daemon.Reconciler{
		Engine: eng, Backend: state.NewLocal(o.statePath), Spec: specs, Log: log, Metrics: metrics,
		DryRun: o.dryRun, UpsertOnly: o.policy == "upsert-only", ShutdownGrace: o.grace,
	}
	metrics.Set(daemon.MetricLeader, nil, 1)
	ctl := &daemon.Controller{Pass: rec.Pass, Interval: o.interval, Jitter: 0.1, MinInterval: o.minInterval}

	if err := specs.Watch(ctx, 200*time.Millisecond, func() {
		changed, _, diags := specs.Reload()
		if diags.HasErrors() {
			metrics.Add(daemon.MetricSpecReloads, daemon.Labels{"result": "invalid"}, 1)
			for _, d := range daemon.FormatDiagnostics(diags) {
				log.Error("spec on disk is invalid; enforcing the last good spec", zap.String("diagnostic", d))
			}
			return
		}
		metrics.Add(daemon.MetricSpecReloads, daemon.Labels{"result": "ok"}, 1)
		if changed {
			log.Info("spec changed on disk")
			ctl.Trigger("spec changed")
		}
	}); err != nil {
		return err
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
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

	if o.metricsAddr != "" {
		srv := &daemon.Server{Metrics: metrics, Trigger: ctl.Trigger, Ready: func() bool { return specs.Current() != nil }}
		if err := srv.Start(o.metricsAddr); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		log.Info("serving metrics", zap.String("addr", srv.Addr()))
	}
	log.Info("meshd started", zap.String("mesh", m.Name), zap.String("spec", o.spec), zap.Duration("interval", o.interval),
		zap.Bool("dry_run", o.dryRun), zap.String("policy", o.policy))
	ctl.Run(ctx)
	log.Info("meshd stopping")
	return nil
}

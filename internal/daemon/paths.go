package daemon

import (
	"strings"

	"go.uber.org/zap"

	"github.com/meshd-io/meshd/internal/verify"
)

// PathVerifier is an Engine that also checks, with each plan, that every pair of members can reach and
// resolve each other (the engine with VerifyPaths).
type PathVerifier interface {
	Paths() (verify.Report, bool)
}

// pathVerdicts remembers the last verdict of each (from, to, layer), to log only changes.
type pathVerdicts map[string]verify.Verdict

// reportPaths exports the last plan's path verdicts as meshd_path_ok and logs each verdict that changed:
// a path that breaks as a warning with its causes, one that is fixed again as information. The first
// verdict of a path is logged only when it fails.
func (r *Reconciler) reportPaths(log *zap.Logger) {
	pv, ok := r.Engine.(PathVerifier)
	if !ok {
		return
	}
	report, ok := pv.Paths()
	if !ok {
		return
	}
	if r.paths == nil {
		r.paths = pathVerdicts{}
	}
	r.Metrics.Reset(MetricPathOK)
	for _, v := range report.Verdicts {
		if v.Status == verify.Skipped {
			continue
		}
		value := 0.0
		if v.Status == verify.OK {
			value = 1
		}
		r.Metrics.Set(MetricPathOK, Labels{"from": v.From, "to": v.To, "layer": string(v.Layer)}, value)
		key := v.From + "|" + v.To + "|" + string(v.Layer)
		prev, seen := r.paths[key]
		r.paths[key] = v
		fields := []zap.Field{zap.String("from", v.From), zap.String("to", v.To), zap.String("layer", string(v.Layer))}
		switch {
		case seen && prev.Status == v.Status && strings.Join(prev.Causes, "\n") == strings.Join(v.Causes, "\n"):
		case v.Status == verify.Fail:
			log.Warn("path check fails", append(fields, zap.Strings("causes", v.Causes))...)
		case seen:
			log.Info("path check passes again", fields...)
		}
	}
}

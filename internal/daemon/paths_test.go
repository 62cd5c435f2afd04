package daemon

import (
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/meshd-io/meshd/internal/verify"
)

// pathEngine is a worldEngine that also reports path verdicts, as the engine does with VerifyPaths.
type pathEngine struct {
	*worldEngine
	report verify.Report
}

func (p *pathEngine) Paths() (verify.Report, bool) { return p.report, true }

// TestPathVerdictsExportedAndChangesLogged: each pass exports meshd_path_ok per checked layer, and logs a
// verdict only when it changes (a first failure, a break, a fix), never a skipped layer.
func TestPathVerdictsExportedAndChangesLogged(t *testing.T) {
	r, w := newReconciler(t)
	core, logs := observer.New(zap.InfoLevel)
	r.Log = zap.New(core)
	pe := &pathEngine{worldEngine: w}
	r.Engine = pe
	verdicts := func(routes verify.Status, causes ...string) verify.Report {
		return verify.Report{Members: []string{"c001", "c002"}, Verdicts: []verify.Verdict{
			{From: "c001", To: "c002", Layer: verify.LayerPeering, Status: verify.OK},
			{From: "c001", To: "c002", Layer: verify.LayerRoutes, Status: routes, Causes: causes},
			{From: "c001", To: "c002", Layer: verify.LayerProbe, Status: verify.Skipped},
		}}
	}
	routes := Labels{"from": "c001", "to": "c002", "layer": "routes"}
	type step struct {
		reason   string
		report   verify.Report
		routesOK float64
		logged   []string
	}
	steps := []step{
		{"first pass, all fine: exported, nothing logged", verdicts(verify.OK), 1, nil},
		{"a route is gone: 0 and a warning with the cause", verdicts(verify.Fail, "rtb-1 has no route to 10.0.1.0/24"), 0, []string{"path check fails"}},
		{"still gone: no new line", verdicts(verify.Fail, "rtb-1 has no route to 10.0.1.0/24"), 0, nil},
		{"fixed: 1 and a line saying so", verdicts(verify.OK), 1, []string{"path check passes again"}},
	}
	for _, s := range steps {
		pe.report = s.report
		logs.TakeAll()
		if err := r.Pass(t.Context(), "test"); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range logs.TakeAll() {
			if e.Message == "path check fails" || e.Message == "path check passes again" {
				got = append(got, e.Message)
			}
		}
		if r.Metrics.Value(MetricPathOK, routes) != s.routesOK || len(got) != len(s.logged) || (len(got) > 0 && got[0] != s.logged[0]) {
			t.Errorf("%s: meshd_path_ok{routes} = %v (want %v), logged %q (want %q)", s.reason, r.Metrics.Value(MetricPathOK, routes), s.routesOK, got, s.logged)
		}
		var exported strings.Builder
		if _, err := r.Metrics.WriteTo(&exported); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(exported.String(), `meshd_path_ok{from="c001",layer="routes",to="c002"}`) || strings.Contains(exported.String(), `layer="probe"`) {
			t.Errorf("%s: /metrics should have the routes series and no probe series:\n%s", s.reason, exported.String())
		}
	}
}

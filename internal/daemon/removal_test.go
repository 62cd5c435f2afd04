package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// specEngine plans for the clusters the spec names, as the real engine does (worldEngine plans for its
// fixed members), and records the spec of each plan.
type specEngine struct {
	*worldEngine
	all     []model.Member
	planned []*spec.Mesh
}

func (e *specEngine) Plan(ctx context.Context, m *spec.Mesh, st *state.State, destroy bool) (*plan.Plan, hcl.Diagnostics, error) {
	e.planned = append(e.planned, m)
	e.members = nil
	for _, mb := range e.all {
		if m.Cluster(mb.Name) != nil {
			e.members = append(e.members, mb)
		}
	}
	return e.worldEngine.Plan(ctx, m, st, destroy)
}

// meshSpec is a spec of mesh "tidb" with the clusters named (c001..c003, as plantest.Grid names them).
func meshSpec(names ...string) string {
	var b strings.Builder
	b.WriteString("mesh \"tidb\" {}\n")
	for _, name := range names {
		n := strings.TrimLeft(name, "c0")
		fmt.Fprintf(&b, "cluster %q {\n  region = \"us-west-1\"\n  kube_context = \"c%s\"\n  namespace = \"n%s\"\n  vpc_id = \"vpc-0000000%s\"\n  security_group_id = \"sg-0000000%s\"\n}\n",
			name, n, n, n, n)
	}
	return b.String()
}

// removalReconciler is a Reconciler over a world of c001..c003, converged by a first pass of the full spec,
// so that the state records the three members; logs go to the returned observer.
func removalReconciler(t *testing.T) (*Reconciler, *specEngine, *observer.ObservedLogs) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "mesh.hcl")
	if err := os.WriteFile(path, []byte(meshSpec("c001", "c002", "c003")), 0o644); err != nil {
		t.Fatal(err)
	}
	src := &SpecSource{Path: path}
	if _, _, diags := src.Reload(); diags.HasErrors() {
		t.Fatal(diags)
	}
	w, members := plantest.NewWorld("tidb", plantest.Grid(3, 1))
	eng := &specEngine{worldEngine: &worldEngine{world: w}, all: members}
	core, logs := observer.New(zapcore.InfoLevel)
	r := &Reconciler{Engine: eng, Backend: state.NewLocal(filepath.Join(dir, "state.json")), Spec: src,
		Log: zap.New(core), Metrics: NewMetrics()}
	if err := r.Pass(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if got := recordedMembers(t, r); len(got) != 3 {
		t.Fatalf("the state records %v after the first pass, want 3 members", got)
	}
	return r, eng, logs
}

// reloadSpec writes a spec with the clusters named and reloads it, as meshd's spec watch does.
func reloadSpec(t *testing.T, r *Reconciler, names ...string) *spec.Mesh {
	t.Helper()
	if err := os.WriteFile(r.Spec.Path, []byte(meshSpec(names...)), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, m, diags := r.Spec.Reload()
	if !changed || diags.HasErrors() {
		t.Fatalf("reload: changed %v, %v", changed, diags)
	}
	return m
}

func recordedMembers(t *testing.T, r *Reconciler) []string {
	t.Helper()
	st, err := r.Backend.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for name := range st.Members {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func livePeerings(e *specEngine) int {
	n := 0
	for _, p := range e.world.Observed.Peerings {
		if p.Status == model.PeeringActive {
			n++
		}
	}
	return n
}

// refusals are the warnings that a spec was refused, with the members each names.
func refusals(logs *observer.ObservedLogs) [][]string {
	var out [][]string
	for _, e := range logs.FilterLevelExact(zapcore.WarnLevel).All() {
		if strings.HasPrefix(e.Message, "refusing the spec") {
			members, _ := e.ContextMap()["members"].([]interface{})
			var names []string
			for _, m := range members {
				names = append(names, fmt.Sprint(m))
			}
			out = append(out, names)
		}
	}
	return out
}

// TestSpecRemovingMostMembersIsRefused: a spec that would remove 2 of the 3 members the state records (a
// placeholder ConfigMap applied over the user's) is refused: the last good spec stays enforced (a route
// deleted meanwhile is restored, nothing is removed), the refusal is counted once in
// meshd_spec_reloads_total{result="refused"} and a warning names the members. Once the state no longer
// records them (meshctl applied that spec), the same spec is accepted.
func TestSpecRemovingMostMembersIsRefused(t *testing.T) {
	r, eng, logs := removalReconciler(t)
	ctx := context.Background()
	good := r.Spec.Current()

	reloadSpec(t, r, "c001")
	eng.world.DeleteRoute(eng.all[0].RouteTableIDs[0], eng.all[1].CIDRs[0])
	for i := 0; i < 2; i++ {
		if err := r.Pass(ctx, "test"); err != nil {
			t.Fatalf("pass %d with the refused spec: %v", i, err)
		}
		if got := eng.planned[len(eng.planned)-1]; got != good {
			t.Fatalf("pass %d planned from a spec with %d clusters, want the last good one", i, len(got.Clusters))
		}
	}
	if got := r.Metrics.Value(MetricSpecReloads, Labels{"result": "refused"}); got != 1 {
		t.Errorf(`meshd_spec_reloads_total{result="refused"} = %v, want 1 (counted once, not per pass)`, got)
	}
	if diff := cmp.Diff([][]string{{"c002", "c003"}}, refusals(logs)); diff != "" {
		t.Errorf("refusal warnings (members named), -want, +got:\n%s", diff)
	}
	if got := recordedMembers(t, r); len(got) != 3 || livePeerings(eng) != 3 {
		t.Errorf("after the refusal the state records %v and %d peerings are live, want 3 and 3", got, livePeerings(eng))
	}
	if got := r.Metrics.Value(MetricCorrected, Labels{"kind": "route", "action": "create"}); got != 7 {
		t.Errorf("route creations %v, want 7 (6 + the deleted one, restored from the last good spec)", got)
	}
	if r.Enforced() != good {
		t.Errorf("Enforced() is not the last good spec")
	}

	// meshctl apply of the new spec removes the two members; the state then records only c001, and meshd's
	// next pass accepts the spec on disk.
	st, err := r.Backend.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SetMembers(map[string]model.Member{"c001": st.Members["c001"]})
	if err := r.Backend.Write(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := r.Pass(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if got := eng.planned[len(eng.planned)-1]; got != r.Spec.Current() || len(got.Clusters) != 1 {
		t.Errorf("once the state no longer records the removed members, the spec on disk is not enforced")
	}
	if got := r.Metrics.Value(MetricSpecReloads, Labels{"result": "refused"}); got != 1 {
		t.Errorf(`meshd_spec_reloads_total{result="refused"} = %v after the spec was accepted, want 1`, got)
	}
}

// TestSpecRemovalLimits: removing one of three members is an ordinary change; all of them, or more than
// half, is refused; --allow-mass-removal lets it through.
func TestSpecRemovalLimits(t *testing.T) {
	for name, tc := range map[string]struct {
		reason   string
		keep     []string
		allow    bool
		refused  bool
		recorded []string
	}{
		"one of three": {reason: "a member leaving the mesh is what a spec change is for",
			keep: []string{"c001", "c002"}, recorded: []string{"c001", "c002"}},
		"two of three": {reason: "more than half", keep: []string{"c001"}, refused: true,
			recorded: []string{"c001", "c002", "c003"}},
		"all": {reason: "a mesh block with no clusters (the old placeholder)", keep: nil, refused: true,
			recorded: []string{"c001", "c002", "c003"}},
		"two of three, allowed": {reason: "--allow-mass-removal", keep: []string{"c001"}, allow: true,
			recorded: []string{"c001"}},
	} {
		t.Run(name, func(t *testing.T) {
			r, eng, logs := removalReconciler(t)
			r.AllowMassRemoval = tc.allow
			next := reloadSpec(t, r, tc.keep...)
			if err := r.Pass(context.Background(), "test"); err != nil {
				t.Fatal(err)
			}
			if got := eng.planned[len(eng.planned)-1] != next; got != tc.refused {
				t.Errorf("%s: refused %v, want %v", tc.reason, got, tc.refused)
			}
			if got := r.Metrics.Value(MetricSpecReloads, Labels{"result": "refused"}) == 1; got != tc.refused {
				t.Errorf("%s: refused counted %v, want %v", tc.reason, got, tc.refused)
			}
			if diff := cmp.Diff(tc.recorded, recordedMembers(t, r)); diff != "" {
				t.Errorf("%s: members the state records, -want, +got:\n%s", tc.reason, diff)
			}
			if want := len(tc.recorded) * (len(tc.recorded) - 1) / 2; livePeerings(eng) != want {
				t.Errorf("%s: %d live peerings, want %d", tc.reason, livePeerings(eng), want)
			}
			if tc.allow && !slices.ContainsFunc(logs.FilterLevelExact(zapcore.WarnLevel).All(), func(e observer.LoggedEntry) bool {
				return strings.Contains(e.Message, "--allow-mass-removal")
			}) {
				t.Errorf("%s: no warning that the removal was allowed", tc.reason)
			}
		})
	}
}

// TestFirstSpecRemovingMostMembersIsRefused: a meshd started with a spec that would remove most of the
// members the state records (its ConfigMap replaced while it was down) has no earlier spec to fall back on:
// its passes fail and change nothing, until the spec is fixed.
func TestFirstSpecRemovingMostMembersIsRefused(t *testing.T) {
	converged, eng, _ := removalReconciler(t)
	ctx := context.Background()
	if err := os.WriteFile(converged.Spec.Path, []byte(meshSpec("c001")), 0o644); err != nil {
		t.Fatal(err)
	}
	// A new meshd on the same state.
	src := &SpecSource{Path: converged.Spec.Path}
	if _, _, diags := src.Reload(); diags.HasErrors() {
		t.Fatal(diags)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	r := &Reconciler{Engine: eng, Backend: converged.Backend, Spec: src, Log: zap.New(core), Metrics: NewMetrics()}
	planned, applies := len(eng.planned), eng.applies
	for i := 0; i < 2; i++ {
		err := r.Pass(ctx, "test")
		if !errors.Is(err, ErrMassRemoval) || !strings.Contains(err.Error(), "c002, c003") {
			t.Fatalf("pass %d: err %v, want ErrMassRemoval naming c002, c003", i, err)
		}
	}
	if len(eng.planned) != planned || eng.applies != applies {
		t.Errorf("a refused first spec was planned (%d plans) or applied (%d applies)", len(eng.planned)-planned, eng.applies-applies)
	}
	if got := r.Metrics.Value(MetricSpecReloads, Labels{"result": "refused"}); got != 1 {
		t.Errorf(`meshd_spec_reloads_total{result="refused"} = %v, want 1`, got)
	}
	if len(refusals(logs)) != 0 {
		t.Errorf("a refusal with nothing to fall back on logged that it enforces the last good spec")
	}
	if r.Enforced() != nil {
		t.Errorf("Enforced() is a spec, want nil")
	}
	// The spec fixed on disk is accepted by the next pass.
	reloadSpec(t, r, "c001", "c002", "c003")
	if err := r.Pass(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if r.Enforced() != r.Spec.Current() {
		t.Errorf("the fixed spec is not enforced")
	}
}

// Package cli implements the meshctl command line: flag parsing, printing and exit codes. The work itself
// is the engine's; this package only decides what to show and when to stop.
package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/middleware"
	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/engine"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/planfile"
	"github.com/meshd-io/meshd/internal/planview"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/providers/kube"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
	"github.com/meshd-io/meshd/internal/state/secretstate"
)

// Exit codes, as terraform plan -detailed-exitcode defines them.
const (
	ExitOK      = 0
	ExitError   = 1
	ExitChanges = 2
)

// lockTimeout bounds the wait for the state lock held by a live process (a crashed holder's Lease is waited
// out until it expires).
const lockTimeout = 10 * time.Second

// DefaultStatePath is where the local state lives when --state is not given.
const DefaultStatePath = "meshd.state.json"

// App is one meshctl invocation's environment. Tests fill AWSOptions to count calls or inject failures.
type App struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// AWSOptions are extra SDK middlewares; AWSTuning adjusts the provider (poll interval in tests).
	AWSOptions []func(*middleware.Stack) error
	AWSTuning  func(*awsprovider.Options)
	// KubeTuning adjusts the Kubernetes provider (poll interval in tests).
	KubeTuning func(*kube.Options)
	// Clock decides which control-plane tokens are due for renewal; nil: time.Now (tests inject one).
	Clock func() time.Time

	outMu sync.Mutex
}

// common are the flags every command takes.
type common struct {
	spec, state, kubeconfig string
	// stateSecret (NAMESPACE/NAME) keeps the state in a Secret of the management cluster, as meshd
	// --state-secret does; stateContext is that cluster's kubeconfig context (default: the current one).
	stateSecret, stateContext string
	stateSet                  bool // --state was given explicitly
}

// checkStateFlags checks the state flags against each other.
func (a *App) checkStateFlags(c *common) bool {
	if c.stateSecret != "" && c.stateSet {
		a.errorf("--state and --state-secret are mutually exclusive: the state is either a local file or a Secret of the management cluster")
		return false
	}
	if c.stateContext != "" && c.stateSecret == "" {
		a.errorf("--state-context needs --state-secret: it names the cluster holding the state Secret")
		return false
	}
	if c.stateSecret != "" {
		if _, _, err := splitSecret(c.stateSecret); err != nil {
			a.errorf("%v", err)
			return false
		}
	}
	return true
}

func splitSecret(s string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("--state-secret must be NAMESPACE/NAME, not %q", s)
	}
	return ns, name, nil
}

func (a *App) errorf(format string, args ...any) int {
	fmt.Fprintf(a.Stderr, "Error: "+format+"\n", args...)
	return ExitError
}

// loadSpec decodes the spec and prints its diagnostics; ok is false when there are errors.
func (a *App) loadSpec(path string) (*spec.Mesh, bool) {
	if path == "" {
		a.errorf("--spec is required: a spec file or a directory of *.hcl files")
		return nil, false
	}
	m, diags := spec.Load(path)
	a.printDiags(m.Files, diags)
	return m, !diags.HasErrors()
}

func (a *App) printDiags(files map[string][]byte, diags hcl.Diagnostics) {
	if len(diags) > 0 {
		_ = spec.PrintDiagnostics(a.Stderr, files, diags, false)
	}
}

func (a *App) validate(c *common) int {
	m, ok := a.loadSpec(c.spec)
	if !ok {
		return ExitError
	}
	fmt.Fprintf(a.Stdout, "Success! The spec is valid: mesh %q with %d cluster(s).\n", m.Name, len(m.Clusters))
	return ExitOK
}

func (a *App) progress(msg string) {
	a.outMu.Lock()
	defer a.outMu.Unlock()
	fmt.Fprintln(a.Stdout, msg)
}

// engine builds the engine and its providers, with the tests' tuning. Every progress line goes to stdout.
func (a *App) engine(ctx context.Context, mesh, kubeconfig string) (*engine.Engine, error) {
	return a.engineWith(ctx, mesh, kubeconfig, false)
}

// engineWith is engine, observing the network ACLs and egress rules too when network is set (verify).
func (a *App) engineWith(ctx context.Context, mesh, kubeconfig string, network bool) (*engine.Engine, error) {
	return engine.New(ctx, engine.Options{Mesh: mesh, Kubeconfig: kubeconfig, Progress: a.progress, ApplyProgress: a.progress,
		AWSAPIOptions: a.AWSOptions, AWSTuning: a.AWSTuning, KubeTuning: a.KubeTuning, ObserveNetwork: network, Clock: a.Clock})
}

// backend is the state backend the flags name: the local file, or the Secret of the management cluster
// (reached through the engine's kubeconfig, as meshd reaches it with --management-context).
func backend(c *common, eng *engine.Engine) (state.Backend, error) {
	if c.stateSecret == "" {
		return state.NewLocal(c.state), nil
	}
	ns, name, err := splitSecret(c.stateSecret)
	if err != nil {
		return nil, err
	}
	kubeContext := c.stateContext
	if kubeContext == "" {
		if kubeContext, err = eng.CurrentKubeContext(); err != nil {
			return nil, fmt.Errorf("--state-secret: %w (name the management cluster with --state-context)", err)
		}
	}
	client, err := eng.KubeClient(kubeContext)
	if err != nil {
		return nil, fmt.Errorf("--state-secret: %w", err)
	}
	secret := secretstate.NewSecret(client, ns, name, identity())
	secret.Wait = lockTimeout
	return secret, nil
}

// identity names this meshctl in the state Lease, so that meshd and other users see who holds it.
func identity() string {
	host, _ := os.Hostname()
	who := os.Getenv("USER")
	if who == "" {
		who = "meshctl"
	}
	return fmt.Sprintf("meshctl_%s@%s_%d", who, host, os.Getpid())
}

// lockedState opens the backend, takes its lock and reads the state.
func lockedState(ctx context.Context, c *common, eng *engine.Engine) (state.Backend, *state.State, func() error, error) {
	b, err := backend(c, eng)
	if err != nil {
		return nil, nil, nil, err
	}
	// Wait a little for another meshctl to finish, then say who holds the lock rather than hang. The Secret
	// bounds its own wait (Wait): the Lease of a holder that crashed is waited out, however long it records.
	lockCtx, cancel := ctx, context.CancelFunc(func() {})
	if _, ok := b.(*secretstate.Secret); !ok {
		lockCtx, cancel = context.WithTimeout(ctx, lockTimeout)
	}
	defer cancel()
	unlock, err := b.Lock(lockCtx)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := b.Read(ctx)
	if err != nil {
		_ = unlock()
		return nil, nil, nil, err
	}
	return b, st, unlock, nil
}

// release releases the state lock, warning when it could not (a Lease then stays held until it expires).
func (a *App) release(unlock func() error) {
	if err := unlock(); err != nil {
		fmt.Fprintf(a.Stderr, "Warning: releasing the state lock: %v\n", err)
	}
}

// checkStateMesh refuses to use one state for two meshes: the records would mix.
func checkStateMesh(st *state.State, mesh string, c *common) error {
	if st.Mesh != "" && st.Mesh != mesh {
		if c.stateSecret != "" {
			return fmt.Errorf("the state in Secret %s belongs to mesh %q, not %q: use another --state-secret", c.stateSecret, st.Mesh, mesh)
		}
		return fmt.Errorf("the state file belongs to mesh %q, not %q: use another --state", st.Mesh, mesh)
	}
	return nil
}

// session is what plan, apply and destroy open with: the spec, the engine over it, and the state under
// its lock (the caller releases it: defer a.release(s.unlock)).
type session struct {
	m       *spec.Mesh
	eng     *engine.Engine
	backend state.Backend
	st      *state.State
	unlock  func() error
}

// open loads the spec, builds the engine and takes the state, checking that it is this mesh's. On failure it
// has said why and returns the exit code.
func (a *App) open(ctx context.Context, c *common) (*session, int) {
	m, ok := a.loadSpec(c.spec)
	if !ok {
		return nil, ExitError
	}
	eng, err := a.engine(ctx, m.Name, c.kubeconfig)
	if err != nil {
		return nil, a.errorf("%v", err)
	}
	backend, st, unlock, err := lockedState(ctx, c, eng)
	if err != nil {
		return nil, a.errorf("%v", err)
	}
	if err := checkStateMesh(st, m.Name, c); err != nil {
		code := a.errorf("%v", err)
		a.release(unlock)
		return nil, code
	}
	return &session{m: m, eng: eng, backend: backend, st: st, unlock: unlock}, ExitOK
}

// makePlan plans the session's mesh and prints the diagnostics; on failure it returns the exit code.
func (a *App) makePlan(ctx context.Context, s *session, destroy bool) (*plan.Plan, int) {
	p, diags, err := s.eng.Plan(ctx, s.m, s.st, destroy)
	a.printDiags(s.m.Files, diags)
	if err != nil {
		return nil, a.errorf("%v", err)
	}
	if diags.HasErrors() {
		return nil, ExitError
	}
	return p, ExitOK
}

// planFlags are meshctl plan's own flags.
type planFlags struct {
	out                             string
	json, detailedExitcode, destroy bool
	// costs prints the topologies side by side (plan.TopologyCosts) with prices.
	costs  bool
	prices plan.Prices
}

func (a *App) plan(ctx context.Context, c *common, o planFlags) int {
	s, code := a.open(ctx, c)
	if code != ExitOK {
		return code
	}
	defer a.release(s.unlock)
	p, code := a.makePlan(ctx, s, o.destroy)
	if code != ExitOK {
		return code
	}
	p.SpecPath = absPath(c.spec)
	var err error
	if o.json {
		err = planview.RenderJSON(a.Stdout, p)
	} else {
		err = planview.RenderHuman(a.Stdout, p)
	}
	if err == nil && o.costs && !o.json {
		err = a.renderCosts(s.m, p, o.prices)
	}
	if err != nil {
		return a.errorf("%v", err)
	}
	if o.out != "" {
		if err := writePlan(o.out, p); err != nil {
			return a.errorf("%v", err)
		}
		if !o.json {
			fmt.Fprintf(a.Stdout, "\nSaved the plan to %s. To perform exactly these actions, run:\n    meshctl apply %s\n", o.out, o.out)
		}
	}
	if len(p.Conflicts) > 0 {
		return ExitError
	}
	if o.detailedExitcode && p.HasChanges() {
		return ExitChanges
	}
	return ExitOK
}

func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// writePlan saves p at path atomically with mode 0600, also over an existing file of a wider mode: a plan
// names what meshd manages and where, and a failed write must not leave half a plan for apply to refuse.
func writePlan(path string, p *plan.Plan) error {
	if err := state.WriteFileAtomic(path, func(w io.Writer) error { return planview.RenderJSON(w, p) }); err != nil {
		return fmt.Errorf("save the plan: %w", err)
	}
	return nil
}

// apply is meshctl apply, or with destroy meshctl destroy; args is the saved plan, if any.
func (a *App) apply(ctx context.Context, c *common, args []string, autoApprove, destroy bool) int {
	name := "apply"
	if destroy {
		name = "destroy"
	}
	saved := ""
	if len(args) > 0 {
		if destroy || len(args) > 1 {
			return a.errorf("unexpected arguments %q", args)
		}
		saved = args[0]
	}

	var p *plan.Plan
	if saved != "" {
		var err error
		if p, err = readPlan(saved); err != nil {
			return a.errorf("%v", err)
		}
		if c.spec == "" {
			c.spec = p.SpecPath
		}
	}
	sess, code := a.open(ctx, c)
	if code != ExitOK {
		return code
	}
	defer a.release(sess.unlock)
	m, eng, st := sess.m, sess.eng, sess.st

	if p != nil {
		if err := checkSavedPlan(p, m, st); err != nil {
			return a.errorf("%v", err)
		}
	} else {
		if p, code = a.makePlan(ctx, sess, destroy); code != ExitOK {
			return code
		}
		if err := planview.RenderHuman(a.Stdout, p); err != nil {
			return a.errorf("%v", err)
		}
	}
	if len(p.Conflicts) > 0 {
		return a.errorf("%d conflict(s) with objects meshd does not own (listed above): nothing was changed. "+
			"Resolve them, then plan again.", len(p.Conflicts))
	}
	if p.HasChanges() && saved == "" && !autoApprove {
		if !a.confirm(destroy) {
			fmt.Fprintf(a.Stderr, "\n%s cancelled.\n", strings.ToUpper(name[:1])+name[1:])
			return ExitError
		}
	}

	res := eng.Apply(ctx, p, st, 0)
	// Written even after Ctrl-C (ctx cancelled): what was done must be recorded.
	if err := sess.backend.Write(context.WithoutCancel(ctx), st); err != nil {
		return a.errorf("saving the state (the changes above were made): %v", err)
	}
	s := p.Summary()
	if err := res.Err(); err != nil {
		a.errorf("%v", err)
		if hint := engine.PermissionHint(err, m); hint != "" {
			fmt.Fprintln(a.Stderr, "\n"+hint)
		}
		return ExitError
	}
	verb := "Apply"
	if p.Destroy { // meshctl destroy, or apply of a saved plan made with plan --destroy
		verb = "Destroy"
	}
	fmt.Fprintf(a.Stdout, "\n%s complete! Resources: %d added, %d changed, %d destroyed, %d adopted.\n", verb, s.Add, s.Change, s.Destroy, s.Adopt)
	return ExitOK
}

func (a *App) confirm(destroy bool) bool {
	q := "Do you want to perform these actions?"
	if destroy {
		q = "Do you really want to destroy everything meshd created in this mesh?"
	}
	fmt.Fprintf(a.Stdout, "\n%s\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ", q)
	line, err := bufio.NewReader(a.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	return strings.TrimSpace(line) == "yes"
}

func readPlan(path string) (*plan.Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := planfile.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// checkSavedPlan refuses a plan made for another spec or against an older state: the world it describes may
// no longer be the world it would change.
func checkSavedPlan(p *plan.Plan, m *spec.Mesh, st *state.State) error {
	if p.SpecHash != m.Hash() {
		return fmt.Errorf("the saved plan was made for a different spec (the files under %s have changed since): run meshctl plan again", p.SpecPath)
	}
	if p.Mesh != m.Name {
		return fmt.Errorf("the saved plan is for mesh %q, the spec is for mesh %q", p.Mesh, m.Name)
	}
	if p.Lineage != "" && st.Lineage != p.Lineage {
		return fmt.Errorf("the saved plan was made against another state (lineage %s, this state has %s)", p.Lineage, st.Lineage)
	}
	if st.Serial != p.Serial {
		return fmt.Errorf("the saved plan is stale: the state has changed since it was made (serial %d, the plan was made at serial %d). Run meshctl plan again", st.Serial, p.Serial)
	}
	return nil
}

// renderCosts prints what each topology needs and costs for the plan's members.
func (a *App) renderCosts(m *spec.Mesh, p *plan.Plan, prices plan.Prices) error {
	var members []model.Member
	regions := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(p.Members)) {
		if mem := p.Members[name]; !mem.External {
			members = append(members, mem)
			regions[mem.Region] = true
		}
	}
	return planview.RenderTopologyCosts(a.Stdout, len(members), len(regions), prices, plan.TopologyCosts(m, members, prices))
}

package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/state"
	"github.com/meshd-io/meshd/internal/state/secretstate"
	"github.com/meshd-io/meshd/internal/testenv"
)

// newManagedHarness is newHarness with a management cluster (a real kube-apiserver) as its kubeconfig's
// current context "mgmt", for the state meshd keeps in a Secret there; it returns that cluster's client too.
func newManagedHarness(t *testing.T) (*harness, kubeclient.Interface) {
	t.Helper()
	etcd := testenv.StartEtcd(t)
	srv := testenv.StartAPIServer(t, etcd.ClientURL, "mgmt")
	mgmt, err := kubeclient.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.kubeconfig = filepath.Join(h.dir, "kubeconfig")
	if err := srv.WriteKubeconfig(h.kubeconfig, ""); err != nil {
		t.Fatal(err)
	}
	return h, mgmt
}

// TestStateSecret runs meshctl against the state meshd keeps in a Secret of a management cluster (a real
// kube-apiserver) and AWS in moto: apply records its routes in the Secret, a second plan is empty, a saved
// plan is checked against the Secret's lineage and serial, the Lease lock is shared with meshd, destroy
// removes every route, and the Lease is released after each command.
func TestStateSecret(t *testing.T) {
	h, mgmt := newManagedHarness(t)
	ctx := context.Background()
	const ns, name = "kube-system", "meshd-state"
	secretArgs := []string{"--state-secret", ns + "/" + name}
	leaseReleased := func(after string) {
		t.Helper()
		lease, err := mgmt.CoordinationV1().Leases(ns).Get(ctx, name+"-lock", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("after %s: %v", after, err)
		}
		if lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
			t.Errorf("after %s the Lease is still held by %q", after, *lease.Spec.HolderIdentity)
		}
	}

	// The two kinds of state exclude each other, with a clear error.
	h.stateArgs = append(secretArgs, "--state", h.state)
	r := h.mustRun(1, "plan")
	if !strings.Contains(r.stderr, "--state and --state-secret are mutually exclusive") {
		t.Errorf("--state with --state-secret: %s", r.stderr)
	}
	h.stateArgs = []string{"--state-context", "mgmt"}
	if r = h.mustRun(1, "plan"); !strings.Contains(r.stderr, "--state-context needs --state-secret") {
		t.Errorf("--state-context alone: %s", r.stderr)
	}
	h.stateArgs = []string{"--state-secret", "meshd-state"}
	if r = h.mustRun(1, "plan"); !strings.Contains(r.stderr, "NAMESPACE/NAME") {
		t.Errorf("--state-secret without a namespace: %s", r.stderr)
	}

	before := h.snapshot()
	h.stateArgs = secretArgs // the kubeconfig's current context
	planFile := filepath.Join(h.dir, "mesh.plan")
	h.mustRun(0, "plan", "--out", planFile)
	leaseReleased("plan")
	r = h.mustRun(0, "apply", planFile)
	if !strings.Contains(r.stdout, "Apply complete! Resources: 21 added") {
		t.Fatalf("apply:\n%s", r.stdout)
	}
	leaseReleased("apply")
	after := h.snapshot()
	h.assertConverged(after)
	if _, err := os.Stat(h.state); !os.IsNotExist(err) {
		t.Errorf("a local state file was written with --state-secret: %v", err)
	}

	// The Secret holds the state, with a record of every route meshd made.
	st, err := secretstate.NewSecret(mgmt, ns, name, "test").Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var routes int
	for _, rs := range after.Routes {
		for _, r := range rs {
			if strings.Contains(r, "via pcx-") {
				routes++
			}
		}
	}
	if st.Mesh != "tidb" || st.Serial != 1 || st.Lineage == "" || len(st.Routes) != routes || routes == 0 {
		t.Errorf("the Secret's state: mesh %q serial %d lineage %q, %d route records for %d routes", st.Mesh, st.Serial, st.Lineage, len(st.Routes), routes)
	}

	// verify reads the same Secret, without taking its lock, and checks it as the other commands do: a Secret
	// holding another mesh's state is refused, and --state with --state-secret is an error.
	r = h.run("verify")
	if r.code == 1 || !strings.Contains(r.stdout, "tidb-1") {
		t.Errorf("verify --state-secret after apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	leaseReleased("verify")
	foreign := secretstate.NewSecret(mgmt, ns, "other-state", "test")
	if err := foreign.Write(ctx, state.New("other")); err != nil {
		t.Fatal(err)
	}
	h.stateArgs = []string{"--state-secret", ns + "/other-state"}
	if r = h.mustRun(1, "verify"); !strings.Contains(r.stderr, `the state in Secret kube-system/other-state belongs to mesh "other"`) {
		t.Errorf("verify with another mesh's Secret state: %s", r.stderr)
	}
	h.stateArgs = append(secretArgs, "--state", h.state)
	if r = h.mustRun(1, "verify"); !strings.Contains(r.stderr, "--state and --state-secret are mutually exclusive") {
		t.Errorf("verify --state with --state-secret: %s", r.stderr)
	}

	h.stateArgs = []string{"--state-secret", ns + "/" + name, "--state-context", "mgmt"}
	if r = h.mustRun(0, "plan", "--detailed-exitcode"); !strings.Contains(r.stdout, "No changes.") {
		t.Errorf("second plan:\n%s", r.stdout)
	}
	// Saved plans are checked against the Secret's state: stale after the apply, and foreign to a local state.
	if r = h.mustRun(1, "apply", planFile); !strings.Contains(r.stderr, "stale") {
		t.Errorf("a stale saved plan: %s", r.stderr)
	}
	fresh := filepath.Join(h.dir, "fresh.plan")
	h.mustRun(0, "plan", "--out", fresh)
	h.stateArgs = nil
	if r = h.mustRun(1, "apply", fresh); !strings.Contains(r.stderr, "made against another state") {
		t.Errorf("a Secret state's plan applied to a local state: %s", r.stderr)
	}
	h.stateArgs = secretArgs

	// meshd's lock is the same Lease: while a replica holds it, meshctl waits, then says who holds it.
	unlock, err := secretstate.NewSecret(mgmt, ns, name, "meshd-0").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if r = h.mustRun(1, "destroy", "--auto-approve"); !strings.Contains(r.stderr, "held by meshd-0") {
		t.Errorf("destroy while meshd holds the lock: %s", r.stderr)
	}
	t.Logf("waited %s for the lock", time.Since(start).Round(time.Millisecond))
	if err := unlock(); err != nil {
		t.Fatal(err)
	}

	// A replica that crashed (SIGKILL: no renewal, no release) left a Lease longer than the 10 s meshctl gives
	// a live holder: meshctl waits it out and takes it, where it used to fail however often it was run.
	leases := mgmt.CoordinationV1().Leases(ns)
	lease, err := leases.Get(ctx, name+"-lock", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	crashed, seconds, now := "meshd-crashed", int32(12), metav1.NewMicroTime(time.Now())
	lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds, lease.Spec.AcquireTime, lease.Spec.RenewTime = &crashed, &seconds, &now, &now
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	h.mustRun(0, "plan")
	if d := time.Since(start); d < time.Duration(seconds)*time.Second {
		t.Errorf("meshctl took a %ds Lease after %s", seconds, d)
	}
	leaseReleased("plan after a crashed holder")

	r = h.mustRun(0, "destroy", "--auto-approve")
	if !strings.Contains(r.stdout, "Destroy complete!") {
		t.Errorf("destroy:\n%s", r.stdout)
	}
	if got := h.snapshot(); !equalWorld(before, got) {
		t.Errorf("destroy with --state-secret left something behind:\nbefore: %+v\nafter:  %+v", before, got)
	}
	leaseReleased("destroy")
	if st, err = secretstate.NewSecret(mgmt, ns, name, "test").Read(ctx); err != nil || len(st.Routes) != 0 {
		t.Errorf("the Secret after destroy: %v, %d route records", err, len(st.Routes))
	}
	h.mustRun(0, "plan", "--destroy", "--detailed-exitcode")
}

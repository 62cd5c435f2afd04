package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// TestInterruptedDestroyConverges: a destroy interrupted right after any one of its mutating calls (the
// call done in AWS but not seen done by meshd, as when the process is killed then) leaves an account and a
// state that the next destroy finishes from: the account is as before the mesh, the state records no route,
// and a destroy plan has nothing left to do. TestInterruptedApplyConverges does the same for apply.
func TestInterruptedDestroyConverges(t *testing.T) {
	// A full destroy makes 21 mutating calls: 12 route deletes, 6 rule revokes, 3 peering deletes.
	const calls = 21
	for n := int64(1); n <= calls; n++ {
		t.Run(fmt.Sprintf("after-call-%02d", n), func(t *testing.T) {
			h := newHarness(t)
			empty := h.snapshot()
			h.mustRun(0, "apply", "--auto-approve")
			applied := h.readState()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var routesDone atomic.Int64
			h.awsOptions = []func(*middleware.Stack) error{interruptAfter(n, cancel), countSeenDone("DeleteRoute", &routesDone)}
			if r := h.runCtx(ctx, "destroy", "--auto-approve"); r.code == 0 {
				t.Fatalf("interrupted destroy succeeded:\n%s", r.stdout)
			}
			h.awsOptions = nil
			// The interrupted destroy wrote the state (after Ctrl-C too), and it records exactly the routes
			// whose deletes meshd did not see succeed: the one cut off after its call may be gone already, the
			// next destroy finds it so.
			interrupted := h.readState()
			if interrupted.Serial != applied.Serial+1 {
				t.Errorf("state serial %d after the interrupted destroy, want %d: the state was not written", interrupted.Serial, applied.Serial+1)
			}
			if want := len(applied.Routes) - int(routesDone.Load()); len(interrupted.Routes) != want {
				t.Errorf("the state records %d routes after an interrupted destroy that saw %d of %d route deletes done, want %d",
					len(interrupted.Routes), routesDone.Load(), len(applied.Routes), want)
			}
			if left := untracked(h.snapshot(), interrupted); len(left) > 0 {
				t.Errorf("routes through a peering in AWS that the state no longer records: %q", left)
			}
			h.mustRun(0, "destroy", "--auto-approve")
			if got := h.snapshot(); !equalWorld(empty, got) {
				t.Errorf("after the interrupted destroy and another, the account is not as before the mesh:\nbefore: %+v\nafter:  %+v", empty, got)
			}
			if st := h.readState(); len(st.Routes) != 0 {
				t.Errorf("the state still records %d routes after the destroy", len(st.Routes))
			}
			h.mustRun(0, "plan", "--destroy", "--detailed-exitcode")
		})
	}
}

// stateFile is the part of the state file these tests read.
type stateFile struct {
	Serial uint64 `json:"serial"`
	Routes []struct {
		RouteTableID    string `json:"route_table_id"`
		DestinationCIDR string `json:"destination_cidr"`
	} `json:"routes"`
}

func (h *harness) readState() stateFile {
	h.t.Helper()
	data, err := os.ReadFile(h.state)
	if err != nil {
		h.t.Fatal(err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

// untracked lists the routes through a peering in w that st does not record.
func untracked(w world, st stateFile) []string {
	recorded := map[string]bool{}
	for _, r := range st.Routes {
		recorded[r.RouteTableID+" "+r.DestinationCIDR] = true
	}
	var out []string
	for table, routes := range w.Routes {
		for _, r := range routes {
			if cidr, target, _ := strings.Cut(r, " via "); strings.HasPrefix(target, "pcx-") && !recorded[table+" "+cidr] {
				out = append(out, table+" "+r)
			}
		}
	}
	sort.Strings(out)
	return out
}

// countSeenDone counts the calls of operation that meshd saw succeed (outermost, after retries and the
// interruption).
func countSeenDone(operation string, n *atomic.Int64) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("count-seen-done", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			if err == nil && awsmiddleware.GetOperationName(ctx) == operation {
				n.Add(1)
			}
			return out, md, err
		}), middleware.Before)
	}
}

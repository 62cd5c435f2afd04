package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"

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
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h.awsOptions = []func(*middleware.Stack) error{interruptAfter(n, cancel)}
			if r := h.runCtx(ctx, "destroy", "--auto-approve"); r.code == 0 {
				t.Fatalf("interrupted destroy succeeded:\n%s", r.stdout)
			}
			h.awsOptions = nil
			h.mustRun(0, "destroy", "--auto-approve")
			if got := h.snapshot(); !equalWorld(empty, got) {
				t.Errorf("after the interrupted destroy and another, the account is not as before the mesh:\nbefore: %+v\nafter:  %+v", empty, got)
			}
			data, err := os.ReadFile(h.state)
			if err != nil {
				t.Fatal(err)
			}
			var st struct {
				Routes []json.RawMessage `json:"routes"`
			}
			if err := json.Unmarshal(data, &st); err != nil {
				t.Fatal(err)
			}
			if len(st.Routes) != 0 {
				t.Errorf("the state still records %d routes after the destroy", len(st.Routes))
			}
			h.mustRun(0, "plan", "--destroy", "--detailed-exitcode")
		})
	}
}

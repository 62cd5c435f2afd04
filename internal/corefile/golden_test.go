package corefile

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite the golden outputs in testdata/golden")

const mesh = "tidb"

// goldenCase is one input under testdata/golden (<name>.in.Corefile), what Merge is asked for, the
// report it must give, and its output (<name>.out.Corefile, rewritten by -update).
type goldenCase struct {
	name    string
	owned   []string
	desired []Block
	want    Report
	// appendOnly: meshd only appends to this input, so Remove(out) must give the input back.
	appendOnly bool
}

var goldenCases = []goldenCase{
	{
		name: "eks-default",
		desired: []Block{
			{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.1.4.5", "10.1.2.3"}},
			{Zone: "pingcap-3.svc.cluster.local", Upstreams: []string{"10.1.6.7"}},
		},
		want: Report{
			Added: []string{"pingcap-2.svc.cluster.local", "pingcap-3.svc.cluster.local"},
			Owned: []string{"pingcap-2.svc.cluster.local", "pingcap-3.svc.cluster.local"},
		},
		appendOnly: true,
	},
	{
		// Comments (one right above a user block), a user block for an unrelated zone, a multi-key
		// block with its brace on the next line and a comment after it, a tab-only line, and a
		// trailing comment.
		name: "user-blocks",
		desired: []Block{
			{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.1.4.5", "10.1.2.3"}},
		},
		want: Report{
			Added: []string{"pingcap-2.svc.cluster.local"},
			Owned: []string{"pingcap-2.svc.cluster.local"},
		},
		appendOnly: true,
	},
	{
		// An older apply: pingcap-2 changed IPs, pingcap-3 is no longer desired, pingcap-4 was
		// written by an apply that died before saving the state (known by its marker only),
		// pingcap-5 predates the marker (known by the state only), pingcap-6 is new, and other-1
		// belongs to another mesh.
		name:  "older-apply",
		owned: []string{"pingcap-2.svc.cluster.local", "pingcap-3.svc.cluster.local", "pingcap-5.svc.cluster.local"},
		desired: []Block{
			{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.1.9.9", "10.1.2.3"}},
			{Zone: "pingcap-4.svc.cluster.local", Upstreams: []string{"10.4.0.2", "10.4.0.1"}},
			{Zone: "pingcap-5.svc.cluster.local", Upstreams: []string{"10.5.0.1"}},
			{Zone: "pingcap-6.svc.cluster.local", Upstreams: []string{"10.6.0.1"}},
		},
		want: Report{
			Added:   []string{"pingcap-6.svc.cluster.local"},
			Updated: []string{"pingcap-2.svc.cluster.local", "pingcap-5.svc.cluster.local"},
			Removed: []string{"pingcap-3.svc.cluster.local"},
			Owned: []string{"pingcap-2.svc.cluster.local", "pingcap-4.svc.cluster.local",
				"pingcap-5.svc.cluster.local", "pingcap-6.svc.cluster.local"},
		},
	},
	{
		// pingcap-2 has a hand-written block, pingcap-3 is one key of a user's multi-key block (and
		// meshd's own block for it must go: CoreDNS refuses a zone served twice), pingcap-4 exists
		// only on another port.
		name: "conflict",
		desired: []Block{
			{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.1.2.3"}},
			{Zone: "pingcap-3.svc.cluster.local", Upstreams: []string{"10.3.0.1"}},
			{Zone: "pingcap-4.svc.cluster.local", Upstreams: []string{"10.4.0.1"}},
		},
		want: Report{
			Added:   []string{"pingcap-4.svc.cluster.local"},
			Removed: []string{"pingcap-3.svc.cluster.local"},
			Conflicts: []Conflict{
				{Zone: "pingcap-2.svc.cluster.local", Line: 8, Key: "pingcap-2.svc.cluster.local:53"},
				{Zone: "pingcap-3.svc.cluster.local", Line: 13, Key: "dns://PINGCAP-3.svc.cluster.local.:53"},
			},
			Owned: []string{"pingcap-4.svc.cluster.local"},
		},
	},
}

func readGolden(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			in := readGolden(t, tc.name+".in.Corefile")
			out, r, err := Merge(in, mesh, tc.owned, tc.desired)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", tc.name+".out.Corefile")
			if *update {
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(readGolden(t, tc.name+".out.Corefile"), out); diff != "" {
				t.Errorf("output differs from %s (-want +got; go test -update rewrites it):\n%s", path, diff)
			}
			if diff := cmp.Diff(tc.want, r, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			assertOutsideUnchanged(t, in, out, tc.owned, r)
			assertIdempotent(t, out, r.Owned, tc.desired)

			removed, rr, err := Remove(out, mesh, r.Owned)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(r.Owned, rr.Removed, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Remove's report (-want +got):\n%s", diff)
			}
			assertNoMeshdBlocks(t, removed, r.Owned)
			if tc.appendOnly && removed != in {
				t.Errorf("Remove(Merge(x)) != x:\n%s", cmp.Diff(in, removed))
			}
		})
	}
}

// remainder is src without meshd's blocks (those OwnedBy(mesh, owned)). Of the zones keep says Merge
// keeps, the first block leaves just its own bytes (Start to End); every other block leaves what Remove
// cuts (the block's lines and the blank line meshd puts above it).
func remainder(t testing.TB, src string, owned []string, keep func(zone string) bool) string {
	return remainderCut(t, src, owned, keep, false)
}

// remainderCut is remainder; with linesOnly, cut blocks leave the blank line above them, as Merge cuts
// when taking it would change how the rest reads.
func remainderCut(t testing.TB, src string, owned []string, keep func(zone string) bool, linesOnly bool) string {
	t.Helper()
	blocks, err := Blocks(src)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	pos := 0
	seen := map[string]bool{}
	for _, sb := range blocks {
		if !sb.OwnedBy(mesh, owned) {
			continue
		}
		if sb.CutStart < pos || sb.CutStart > sb.Start || sb.End > sb.CutEnd || sb.Start > sb.End {
			t.Fatalf("bad ranges %+v (after %d)", sb, pos)
		}
		z := sb.Zones[0]
		start, end := sb.CutStart, sb.CutEnd
		if linesOnly {
			start = sb.cutLines
		}
		if keep(z) && !seen[z] {
			start, end = sb.Start, sb.End
		}
		seen[z] = true
		b.WriteString(src[pos:start])
		pos = end
	}
	b.WriteString(src[pos:])
	return b.String()
}

// assertOutsideUnchanged checks that every byte outside meshd's blocks is unchanged: the input without
// meshd's blocks equals the output without them (see remainder: blocks Merge cut or appended count with
// the blank line above them). The one thing Merge may add outside is the line break it writes before
// appending to a text that lacks a final one.
func assertOutsideUnchanged(t testing.TB, in, out string, owned []string, r Report) {
	t.Helper()
	kept := func(z string) bool { return slices.Contains(r.Owned, z) && !slices.Contains(r.Added, z) }
	want := remainder(t, in, owned, kept)
	got := remainder(t, out, r.Owned, func(z string) bool { return !slices.Contains(r.Added, z) })
	// The line break lands at the end of the remainder, as all that follows it is appended blocks.
	// An input that ends with a line break keeps it through any edit, so Merge adds none.
	if len(r.Added) > 0 && !strings.HasSuffix(in, "\n") && got == want+eolOf(in) {
		want = got
	}
	if want != got && len(r.Removed) > 0 {
		w := remainderCut(t, in, owned, kept, true)
		if len(r.Added) > 0 && !strings.HasSuffix(in, "\n") && got == w+eolOf(in) {
			w = got
		}
		if w == got {
			want = got
		}
	}
	if want != got {
		t.Errorf("bytes outside meshd's blocks changed (-in +out):\n%s", cmp.Diff(want, got))
	}
}

// eolOf is the line break Merge writes into s: CRLF if all of its line breaks are.
func eolOf(s string) string {
	if crlf := strings.Count(s, "\r\n"); crlf > 0 && crlf == strings.Count(s, "\n") {
		return "\r\n"
	}
	return "\n"
}

func assertIdempotent(t testing.TB, out string, owned []string, desired []Block) {
	t.Helper()
	again, r, err := Merge(out, mesh, owned, desired)
	if err != nil {
		t.Fatalf("second Merge: %v", err)
	}
	if again != out {
		t.Errorf("second Merge changed the output:\n%s", cmp.Diff(out, again))
	}
	if r.Changed() {
		t.Errorf("second Merge reports changes: %+v", r)
	}
	if !cmp.Equal(owned, r.Owned, cmpopts.EquateEmpty()) {
		t.Errorf("second Merge owns %v, first %v", r.Owned, owned)
	}
}

func assertNoMeshdBlocks(t testing.TB, src string, owned []string) {
	t.Helper()
	blocks, err := Blocks(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if b.OwnedBy(mesh, owned) {
			t.Errorf("meshd block left at line %d: %v", b.Line, b.Keys)
		}
	}
}

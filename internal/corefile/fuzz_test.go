package corefile

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fuzzZones are the zones FuzzMerge asks for; its seeds and the golden inputs use them.
var fuzzZones = []string{
	"pingcap-2.svc.cluster.local",
	"pingcap-3.svc.cluster.local",
	"pingcap-4.svc.cluster.local",
	"b.local",
	"consul.local",
}

// fuzzDesired picks desired blocks from sel: bit i asks for fuzzZones[i], bit i+5 changes its IPs.
func fuzzDesired(sel uint16) []Block {
	var out []Block
	for i, z := range fuzzZones {
		if sel&(1<<i) == 0 {
			continue
		}
		ups := []string{fmt.Sprintf("10.%d.0.1", i)}
		if sel&(1<<(i+5)) != 0 {
			ups = append(ups, fmt.Sprintf("fd00::%d", i+1), fmt.Sprintf("10.%d.0.2", i))
		}
		out = append(out, Block{Zone: z, Upstreams: ups})
	}
	return out
}

// bug reports errors that mean the package misread a Corefile rather than refused a bad one.
func bug(src string, err error) bool {
	return err != nil && (strings.Contains(err.Error(), "internal error") || strings.Contains(err.Error(), "cannot follow"))
}

func FuzzMerge(f *testing.F) {
	golden, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.Corefile"))
	for _, path := range golden {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, sel := range []uint16{0, 0x1f, 0x3ff, 0x15} {
			f.Add(string(b), "pingcap-2.svc.cluster.local,pingcap-3.svc.cluster.local,pingcap-5.svc.cluster.local", sel)
			f.Add(string(b), "", sel)
		}
		f.Add(strings.ReplaceAll(string(b), "\n", "\r\n"), "", uint16(0x1f))
		f.Add(strings.TrimSuffix(string(b), "\n"), "", uint16(0x1f))
	}
	for _, s := range []string{
		"", "\n", "# c", "a.local { } b.local { }\n", "b.local {\n} c.local {\n}", "\uFEFFb.local\n{\n}\n",
		"a#b c {\n}\n", "\"b.local\" {\n}#x y\n", "(s) {\n  b.local {\n  }\n}\nimport s\n",
		".:53 {\n  import /etc/x\n}\nimport y\n", "x \"", "b.local\nwhoami\n", "{$Z}:53 {\n}\n",
		Marker(mesh) + "\nb.local {\n}\n\n" + Marker(mesh) + "\nb.local {\n}\n",
	} {
		f.Add(s, "b.local", uint16(0x0f))
	}
	f.Fuzz(func(t *testing.T, src, ownedList string, sel uint16) {
		var owned []string
		if ownedList != "" {
			owned = strings.Split(ownedList, ",")
		}
		checkMerge(t, src, owned, fuzzDesired(sel))
	})
}

// checkMerge asserts Merge's properties for one input: no panic, no misreading (see bug); on success
// the output parses, bytes outside meshd's blocks are unchanged, a second Merge changes nothing, and
// Remove leaves no meshd block.
func checkMerge(t *testing.T, src string, owned []string, desired []Block) (outcome string) {
	t.Helper()
	{
		t.Logf("src %q owned %q desired %v", src, owned, desired)
		verr := Validate(src)
		if bug(src, verr) {
			t.Fatalf("Validate: %v", verr)
		}
		out, r, err := Merge(src, mesh, owned, desired)
		if bug(src, err) {
			t.Fatalf("Merge: %v", err)
		}
		if err != nil {
			if out != "" {
				t.Fatalf("output with error %v", err)
			}
			if verr == nil && !strings.Contains(err.Error(), "cannot append") && !strings.Contains(err.Error(), "cannot remove") {
				t.Fatalf("Merge failed on a valid Corefile: %v", err)
			}
			if verr != nil {
				return "invalid input"
			}
			return "refused: " + regexp.MustCompile(`(line \d+|\([^)]*\)|for \S+)`).ReplaceAllString(err.Error(), "…")
		}
		if verr != nil {
			t.Fatalf("Merge accepted a Corefile Validate rejects (%v)", verr)
		}
		if err := Validate(out); err != nil {
			t.Fatalf("output does not parse: %v\n%q", err, out)
		}
		assertOutsideUnchanged(t, src, out, owned, r)
		assertIdempotent(t, out, r.Owned, desired)

		removed, rr, err := Remove(out, mesh, r.Owned)
		if err != nil {
			if strings.Contains(err.Error(), "cannot remove") { // see cuttable
				return "merged; Remove refused" // a layout Merge can update in place but not cut
			}
			t.Fatalf("Remove: %v", err)
		}
		if len(rr.Owned) != 0 {
			t.Fatalf("Remove left %v", rr.Owned)
		}
		assertNoMeshdBlocks(t, removed, r.Owned)
	}
	return "merged"
}

// pieces are what TestMergeRandom builds Corefiles from: keys (some of them meshd's zones), braces,
// directives, comments, markers, quotes, separators and line endings in their odd forms.
var pieces = []string{
	"pingcap-2.svc.cluster.local:53", "pingcap-3.svc.cluster.local.", "dns://PINGCAP-4.svc.cluster.local:53", "b.local",
	"consul.local:53", ".:53", "a.local,", "x.local:1053", "tls://b.local", `"b.local"`, "(snip)", "import snip",
	"import /etc/x.conf", "{", "}", "{", "}", "{", "}", " ", " ", "\t", "\n", "\n", "\n", "\n\n", "\r\n",
	"errors", "cache 30", "forward . 10.0.0.1 {\n force_tcp\n}", "forward . 10.0.0.9",
	"# comment", "#c", Marker(mesh), Marker("other"), "\"q\"", `""`, "\"multi\nline\"", `"\""`, "\uFEFF",
	"\u00a0", "\r", "\xff", "{$ENV}",
}

// wellFormed pieces make whole blocks, so that many inputs parse and meshd has something to edit.
func wellFormed(r *rand.Rand) string {
	zones := append([]string{"pingcap-2.svc.cluster.local", "pingcap-3.svc.cluster.local.:53", "b.local", "consul.local"}, fuzzZones...)
	z := zones[r.Intn(len(zones))]
	switch r.Intn(6) {
	case 0:
		s, _ := Render(mesh, Block{Zone: strings.TrimSuffix(z, ":53"), Upstreams: []string{"10.0.0.1"}})
		return s
	case 1:
		return Marker(mesh) + "\n" + z + " {\n    forward . 10.0.0.2\n}\n"
	case 2:
		return z + " {\n    errors\n}"
	case 3:
		return z + "\n{\n}\n"
	case 4:
		return z + " { }"
	default:
		return defaultBlock
	}
}

// TestMergeRandom runs checkMerge on random Corefile-like inputs: a deterministic complement to
// FuzzMerge that reaches deep into the grammar at once.
func TestMergeRandom(t *testing.T) {
	n := randomRuns()
	if testing.Short() {
		n = 300
	}
	r := rand.New(rand.NewSource(seed()))
	outcomes := map[string]int{}
	for i := range n {
		var b strings.Builder
		for range r.Intn(12) {
			if r.Intn(3) == 0 {
				b.WriteString(wellFormed(r))
			} else {
				b.WriteString(pieces[r.Intn(len(pieces))])
			}
			if r.Intn(2) == 0 {
				b.WriteString([]string{"\n", " ", "\n\n", "\r\n"}[r.Intn(4)])
			}
		}
		var owned []string
		for _, z := range fuzzZones {
			if r.Intn(3) == 0 {
				owned = append(owned, z)
			}
		}
		src, sel := b.String(), uint16(r.Intn(1<<10))
		t.Run(fmt.Sprint(i), func(t *testing.T) { outcomes[checkMerge(t, src, owned, fuzzDesired(sel))]++ })
	}
	t.Logf("outcomes: %v", outcomes)
}

func seed() int64 {
	if s, err := strconv.ParseInt(os.Getenv("COREFILE_SEED"), 10, 64); err == nil {
		return s
	}
	return 1
}

func randomRuns() int {
	if n, err := strconv.Atoi(os.Getenv("COREFILE_RUNS")); err == nil {
		return n
	}
	return 3000
}

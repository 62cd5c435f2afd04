package corefile

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const defaultBlock = ".:53 {\n    errors\n    forward . /etc/resolv.conf\n    cache 30\n}\n"

func rendered2(zone string, ips ...string) string {
	s, err := Render(mesh, Block{Zone: zone, Upstreams: ips})
	if err != nil {
		panic(err)
	}
	return s
}

func TestRender(t *testing.T) {
	got, err := Render("tidb", Block{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.1.4.5", "10.1.2.3"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `# meshd.io/mesh=tidb: managed by meshd, edits here are overwritten
pingcap-2.svc.cluster.local:53 {
    errors
    cache 30
    forward . 10.1.2.3 10.1.4.5 {
        force_tcp
    }
}
`
	if got != want {
		t.Errorf("Render:\n%s", cmp.Diff(want, got))
	}
	if err := Validate(got); err != nil {
		t.Errorf("rendered block does not parse: %v", err)
	}
}

func TestRenderUpstreams(t *testing.T) {
	for _, tc := range []struct {
		name string
		zone string
		ips  []string
		want string // forward line arguments
	}{
		{"numeric order", "a.local", []string{"10.1.2.10", "10.1.2.9", "9.0.0.1"}, "9.0.0.1 10.1.2.9 10.1.2.10"},
		{"duplicates", "a.local", []string{"10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.1"}, "10.0.0.1 10.0.0.2"},
		{"v4 before v6", "a.local", []string{"fd00::2", "10.0.0.1", "fd00::1"}, "10.0.0.1 fd00::1 fd00::2"},
		{"v4-mapped is v4", "a.local", []string{"::ffff:10.0.0.1", "10.0.0.1"}, "10.0.0.1"},
		{"v6 normalised", "a.local", []string{"FD00:0:0::1"}, "fd00::1"},
		{"15 is the limit", "a.local", ips(15), strings.Join(ips(15), " ")},
		{"16 with a duplicate is 15", "a.local", append(ips(15), "10.0.0.1"), strings.Join(ips(15), " ")},
		{"zone lower case", "Pingcap-2.SVC.cluster.local.", []string{"10.0.0.1"}, "10.0.0.1"},
		{"node ports", "a.local", []string{"10.0.0.2:30053", "10.0.0.1:30053", "10.0.0.1:30054"}, "10.0.0.1:30053 10.0.0.1:30054 10.0.0.2:30053"},
		{"v6 node port", "a.local", []string{"[FD00::1]:30053"}, "[fd00::1]:30053"},
		{"port 53 is the default", "a.local", []string{"10.0.0.1:53", "10.0.0.1"}, "10.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(mesh, Block{Zone: tc.zone, Upstreams: tc.ips})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got, "    forward . "+tc.want+" {\n") {
				t.Errorf("want forward . %s in\n%s", tc.want, got)
			}
			if z := NormalizeZone(tc.zone); !strings.Contains(got, "\n"+z+":53 {\n") {
				t.Errorf("want key %s:53 in\n%s", z, got)
			}
		})
	}
}

// ips returns n distinct addresses 10.0.0.1 ... in numeric order.
func ips(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("10.0.0.%d", i+1)
	}
	return out
}

func TestRenderErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mesh string
		b    Block
		want []string // substrings of the error
	}{
		{"16 upstreams", mesh, Block{Zone: "pingcap-2.svc.cluster.local", Upstreams: ips(16)}, []string{`"pingcap-2.svc.cluster.local"`, "16 upstreams", "at most 15"}},
		{"no upstreams", mesh, Block{Zone: "pingcap-2.svc.cluster.local"}, []string{`"pingcap-2.svc.cluster.local"`, "no upstreams"}},
		{"not an IP", mesh, Block{Zone: "a.local", Upstreams: []string{"nlb.example.com"}}, []string{`"nlb.example.com"`, "not an IP"}},
		{"port 0", mesh, Block{Zone: "a.local", Upstreams: []string{"10.0.0.1:0"}}, []string{"not an IP"}},
		{"name with port", mesh, Block{Zone: "a.local", Upstreams: []string{"node-1:30053"}}, []string{"not an IP"}},
		{"IPv6 zone", mesh, Block{Zone: "a.local", Upstreams: []string{"fe80::1%eth0"}}, []string{"not an IP"}},
		{"root zone", mesh, Block{Zone: ".", Upstreams: []string{"10.0.0.1"}}, []string{"root zone"}},
		{"empty zone", mesh, Block{Zone: "", Upstreams: []string{"10.0.0.1"}}, []string{"root zone"}},
		{"other port", mesh, Block{Zone: "a.local:1053", Upstreams: []string{"10.0.0.1"}}, []string{"port 53"}},
		{"other transport", mesh, Block{Zone: "tls://a.local", Upstreams: []string{"10.0.0.1"}}, []string{"port 53"}},
		{"brace in zone", mesh, Block{Zone: "a.local {", Upstreams: []string{"10.0.0.1"}}, []string{"not a valid DNS name"}},
		{"comment in zone", mesh, Block{Zone: "a#b.local", Upstreams: []string{"10.0.0.1"}}, []string{"not a valid DNS name"}},
		{"empty label", mesh, Block{Zone: "a..local", Upstreams: []string{"10.0.0.1"}}, []string{"not a valid DNS name"}},
		{"bad mesh", "ti db\n", Block{Zone: "a.local", Upstreams: []string{"10.0.0.1"}}, []string{"mesh name"}},
		{"empty mesh", "", Block{Zone: "a.local", Upstreams: []string{"10.0.0.1"}}, []string{"mesh name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(tc.mesh, tc.b)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			// Merge refuses the same desired block, and writes nothing.
			out, _, err := Merge(defaultBlock, tc.mesh, nil, []Block{tc.b})
			if err == nil || out != "" {
				t.Errorf("Merge: out %q, err %v", out, err)
			}
		})
	}
}

func TestNormalizeZone(t *testing.T) {
	for in, want := range map[string]string{
		"foo.svc.cluster.local":             "foo.svc.cluster.local",
		"foo.svc.cluster.local.":            "foo.svc.cluster.local",
		"foo.svc.cluster.local:53":          "foo.svc.cluster.local",
		"foo.svc.cluster.local.:53":         "foo.svc.cluster.local",
		"dns://foo.svc.cluster.local:53":    "foo.svc.cluster.local",
		"dns://foo.svc.cluster.local.":      "foo.svc.cluster.local",
		"DNS://FOO.Svc.Cluster.Local.:053":  "foo.svc.cluster.local",
		"foo.svc.cluster.local:1053":        "dns://foo.svc.cluster.local:1053",
		"dns://foo.svc.cluster.local.:1053": "dns://foo.svc.cluster.local:1053",
		"tls://foo.svc.cluster.local":       "tls://foo.svc.cluster.local",
		"tls://foo.svc.cluster.local.:853":  "tls://foo.svc.cluster.local:853",
		".:53":                              ".",
		".":                                 ".",
		"dns://.":                           ".",
		"":                                  ".",
		"10.in-addr.arpa":                   "10.in-addr.arpa",
	} {
		if got := NormalizeZone(in); got != want {
			t.Errorf("NormalizeZone(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestZoneMatching: a desired zone is blocked by a user's block whatever way its key spells the zone,
// including as one of several keys; keys for another port, transport or a subdomain do not block it.
func TestZoneMatching(t *testing.T) {
	const zone = "foo.svc.cluster.local"
	for _, tc := range []struct {
		keys     string // the user's block's key line(s)
		conflict string // key reported, "" for none
		line     int
	}{
		{"foo.svc.cluster.local", "foo.svc.cluster.local", 7},
		{"foo.svc.cluster.local.:53", "foo.svc.cluster.local.:53", 7},
		{"dns://foo.svc.cluster.local:53", "dns://foo.svc.cluster.local:53", 7},
		{"FOO.svc.Cluster.local", "FOO.svc.Cluster.local", 7},
		{"a.local foo.svc.cluster.local:53", "foo.svc.cluster.local:53", 7},
		{"a.local, foo.svc.cluster.local", "foo.svc.cluster.local", 7},
		{"a.local,\n  foo.svc.cluster.local", "foo.svc.cluster.local", 8},
		{`"foo.svc.cluster.local:53"`, "foo.svc.cluster.local:53", 7},
		{"foo.svc.cluster.local:1053", "", 0},
		{"tls://foo.svc.cluster.local", "", 0},
		{"bar.foo.svc.cluster.local", "", 0},
		{"svc.cluster.local", "", 0},
	} {
		t.Run(tc.keys, func(t *testing.T) {
			src := defaultBlock + "\n" + tc.keys + " {\n    forward . 10.9.9.9\n}\n"
			out, r, err := Merge(src, mesh, nil, []Block{{Zone: zone, Upstreams: []string{"10.0.0.1"}}})
			if err != nil {
				t.Fatal(err)
			}
			if tc.conflict == "" {
				if len(r.Conflicts) != 0 || !cmp.Equal(r.Added, []string{zone}) {
					t.Errorf("want no conflict, got %+v", r)
				}
				return
			}
			want := Report{Conflicts: []Conflict{{Zone: zone, Line: tc.line, Key: tc.conflict}}}
			if diff := cmp.Diff(want, r, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			if out != src {
				t.Errorf("a conflict changed the Corefile:\n%s", cmp.Diff(src, out))
			}
			// The state claiming the zone does not make a multi-key user block meshd's.
			if strings.ContainsAny(tc.keys, " ,") {
				if out, r, err := Merge(src, mesh, []string{zone}, nil); err != nil || out != src || r.Changed() {
					t.Errorf("Remove touched a multi-key user block: %+v %v", r, err)
				}
			}
		})
	}
}

// TestOwnership: which blocks are meshd's.
func TestOwnership(t *testing.T) {
	const zone = "pingcap-2.svc.cluster.local"
	block := zone + ":53 {\n    errors\n    cache 30\n    forward . 10.0.0.9 {\n        force_tcp\n    }\n}\n"
	desired := []Block{{Zone: zone, Upstreams: []string{"10.0.0.1"}}}
	for _, tc := range []struct {
		name  string
		above string // what precedes the block
		owned []string
		mine  bool
	}{
		{"marker", Marker(mesh) + "\n", nil, true},
		{"marker, indented, trailing spaces", "   " + Marker(mesh) + "  \n", nil, true},
		{"marker reworded after the colon", "# meshd.io/mesh=tidb: do not edit\n", nil, true},
		{"marker with CR", Marker(mesh) + "\r\n", nil, true},
		{"state", "", []string{zone}, true},
		{"state, other spelling", "", []string{"dns://Pingcap-2.svc.cluster.local.:53"}, true},
		{"state and user comment", "# my comment\n", []string{zone}, true},
		{"neither", "", nil, false},
		{"user comment", "# my comment\n", nil, false},
		{"marker of another mesh", "# meshd.io/mesh=other: managed by meshd, edits here are overwritten\n", nil, false},
		{"marker of another mesh, state says ours", "# meshd.io/mesh=other: managed by meshd\n", []string{zone}, false},
		{"marker not right above", Marker(mesh) + "\n\n", nil, false},
		{"marker above a comment", Marker(mesh) + "\n# mine now\n", nil, false},
		{"marker inside a quoted token", "x \"\n" + Marker(mesh) + "\n\" {\n}\n", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := defaultBlock + "\n" + tc.above + block
			out, r, err := Merge(src, mesh, tc.owned, desired)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.mine {
				want := Report{Conflicts: []Conflict{{Zone: zone, Line: strings.Count(defaultBlock+"\n"+tc.above, "\n") + 1, Key: zone + ":53"}}}
				if diff := cmp.Diff(want, r, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("report (-want +got):\n%s", diff)
				}
				if out != src {
					t.Errorf("changed a user's block:\n%s", cmp.Diff(src, out))
				}
				return
			}
			want := Report{Updated: []string{zone}, Owned: []string{zone}}
			if diff := cmp.Diff(want, r, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			wantOut := defaultBlock + "\n" + rendered2(zone, "10.0.0.1")
			switch {
			case tc.above == "# my comment\n":
				wantOut = defaultBlock + "\n# my comment\n" + rendered2(zone, "10.0.0.1")
			case strings.HasPrefix(tc.above, "   "):
				// The indentation is outside the block, and stays.
				wantOut = defaultBlock + "\n   " + rendered2(zone, "10.0.0.1")
			}
			if out != wantOut {
				t.Errorf("output:\n%s", cmp.Diff(wantOut, out))
			}
			assertIdempotent(t, out, r.Owned, desired)
		})
	}
}

// TestUpdateInPlace: an owned block that differs is replaced exactly in its byte range; one that is
// equal is left byte for byte.
func TestUpdateInPlace(t *testing.T) {
	const zone = "pingcap-2.svc.cluster.local"
	desired := []Block{{Zone: zone, Upstreams: []string{"10.0.0.2", "10.0.0.1"}}}
	want := rendered2(zone, "10.0.0.1", "10.0.0.2")
	for _, tc := range []struct {
		name, before, after string // the Corefile is before + block + after
		block               string
		wantOut             string // "" for before + want + after
		updated             bool
	}{
		{name: "equal", before: defaultBlock + "\n", block: want, after: "\n# after\n", wantOut: defaultBlock + "\n" + want + "\n# after\n"},
		{name: "equal at start of file", block: want, after: "\n" + defaultBlock},
		{name: "other IPs", before: defaultBlock + "\n", block: strings.Replace(want, "10.0.0.2", "10.0.0.3", 1), after: "\n# after\n", updated: true},
		{name: "hand edit", before: defaultBlock + "\n", block: strings.Replace(want, "    cache 30\n", "    cache 30\n    log\n", 1), updated: true},
		{name: "reindented", before: defaultBlock + "\n", block: strings.ReplaceAll(want, "    ", "\t"), updated: true},
		{name: "comment after brace", before: defaultBlock + "\n", block: strings.Replace(want, "10.0.0.2", "10.0.0.3", 1)[:len(want)-1], after: " # keep me\n", updated: true},
		{name: "user block right after", before: defaultBlock + "\n", block: strings.Replace(want, "10.0.0.2", "10.0.0.3", 1), after: "a.local {\n}\n", updated: true},
		{name: "no final line break", before: defaultBlock + "\n", block: strings.Replace(want, "10.0.0.2", "10.0.0.3", 1)[:len(want)-1], updated: true},
		{
			name:    "brace on the next line",
			before:  defaultBlock + "\n",
			block:   strings.Replace(want, ":53 {\n", ":53\n{\n", 1),
			updated: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.before + tc.block + tc.after
			out, r, err := Merge(src, mesh, nil, desired)
			if err != nil {
				t.Fatal(err)
			}
			wantOut := tc.wantOut
			if wantOut == "" {
				w := want
				if !strings.HasSuffix(tc.block, "\n") {
					w = w[:len(w)-1]
				}
				wantOut = tc.before + w + tc.after
			}
			if out != wantOut {
				t.Errorf("output:\n%s", cmp.Diff(wantOut, out))
			}
			wantR := Report{Owned: []string{zone}}
			if tc.updated {
				wantR.Updated = []string{zone}
			}
			if diff := cmp.Diff(wantR, r, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			assertOutsideUnchanged(t, src, out, nil, r)
			assertIdempotent(t, out, r.Owned, desired)
		})
	}
}

// TestLayouts: odd but valid layouts around meshd's blocks.
func TestLayouts(t *testing.T) {
	const zone = "b.local"
	desired := []Block{{Zone: zone, Upstreams: []string{"10.0.0.1"}}}
	body := strings.TrimPrefix(rendered2(zone, "10.0.0.1"), Marker(mesh)+"\n")
	body = strings.TrimSuffix(body, "\n")
	for _, tc := range []struct {
		name, src, want string
		owned           []string
		r               Report
	}{
		{
			name:  "two blocks on one line, meshd's second",
			src:   "a.local { } b.local { }\n",
			owned: []string{zone},
			// The key does not start its line, so no marker can go above it: the state owns it.
			want: "a.local { } " + body + "\n",
			r:    Report{Updated: []string{zone}, Owned: []string{zone}},
		},
		{
			name:  "two blocks on one line, meshd's first",
			src:   "b.local { } a.local { }\n",
			owned: []string{zone},
			want:  Marker(mesh) + "\n" + body + " a.local { }\n",
			r:     Report{Updated: []string{zone}, Owned: []string{zone}},
		},
		{
			name:  "removing a block that shares its line",
			src:   "a.local {\n} b.local {\n} c.local {\n}\n",
			owned: []string{zone},
			want:  "a.local {\n}  c.local {\n}\n",
			r:     Report{Removed: []string{zone}},
		},
		{
			name:  "byte order mark",
			src:   "\uFEFFb.local {\n}\n",
			owned: []string{zone},
			want:  "\uFEFF" + Marker(mesh) + "\n" + body + "\n",
			r:     Report{Updated: []string{zone}, Owned: []string{zone}},
		},
		{
			name: "comment after the brace of meshd's block is cut with it",
			src:  "a.local {\n}\n\n" + Marker(mesh) + "\nb.local {\n} # note\n",
			want: "a.local {\n}\n",
			r:    Report{Removed: []string{zone}},
		},
		{
			name: "blank lines with spaces",
			src:  "a.local {\n}\n \t\n" + Marker(mesh) + "\nb.local {\n}\n  \n# end\n",
			want: "a.local {\n}\n  \n# end\n",
			r:    Report{Removed: []string{zone}},
		},
		{
			name:  "quoted key",
			src:   "a.local {\n}\n\n\"b.local:53\" {\n}\n",
			owned: []string{zone},
			want:  "a.local {\n}\n\n" + Marker(mesh) + "\n" + body + "\n",
			r:     Report{Updated: []string{zone}, Owned: []string{zone}},
		},
		{
			name: "duplicate meshd blocks: the first is kept",
			src:  "a.local {\n}\n\n" + Marker(mesh) + "\n" + body + "\n\n" + Marker(mesh) + "\n" + body + "\n",
			want: "a.local {\n}\n\n" + Marker(mesh) + "\n" + body + "\n",
			r:    Report{Removed: []string{zone}, Owned: []string{zone}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := desired
			if len(tc.r.Owned) == 0 {
				d = nil
			}
			out, r, err := Merge(tc.src, mesh, tc.owned, d)
			if err != nil {
				t.Fatal(err)
			}
			if out != tc.want {
				t.Errorf("output:\n%s", cmp.Diff(tc.want, out))
			}
			if diff := cmp.Diff(tc.r, r, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			assertIdempotent(t, out, r.Owned, d)
		})
	}
}

func TestCRLF(t *testing.T) {
	in := strings.ReplaceAll(readGolden(t, "user-blocks.in.Corefile"), "\n", "\r\n")
	desired := []Block{{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.0.0.1"}}}
	out, r, err := Merge(in, mesh, nil, desired)
	if err != nil {
		t.Fatal(err)
	}
	want := in + "\r\n" + strings.ReplaceAll(rendered2("pingcap-2.svc.cluster.local", "10.0.0.1"), "\n", "\r\n")
	if out != want {
		t.Errorf("output:\n%s", cmp.Diff(want, out))
	}
	assertOutsideUnchanged(t, in, out, nil, r)
	assertIdempotent(t, out, r.Owned, desired)
	// Changing the IPs replaces the block in CRLF too.
	desired[0].Upstreams = []string{"10.0.0.2"}
	out2, r2, err := Merge(out, mesh, r.Owned, desired)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(out, "10.0.0.1", "10.0.0.2", 1); out2 != want || len(r2.Updated) != 1 {
		t.Errorf("update: %+v\n%s", r2, cmp.Diff(want, out2))
	}
	back, _, err := Remove(out2, mesh, r2.Owned)
	if err != nil {
		t.Fatal(err)
	}
	if back != in {
		t.Errorf("Remove(Merge(x)) != x:\n%s", cmp.Diff(in, back))
	}
}

func TestNoTrailingNewline(t *testing.T) {
	in := strings.TrimSuffix(defaultBlock, "\n")
	desired := []Block{{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.0.0.1"}}}
	out, r, err := Merge(in, mesh, nil, desired)
	if err != nil {
		t.Fatal(err)
	}
	if want := in + "\n\n" + rendered2("pingcap-2.svc.cluster.local", "10.0.0.1"); out != want {
		t.Errorf("output:\n%s", cmp.Diff(want, out))
	}
	assertOutsideUnchanged(t, in, out, nil, r)
	assertIdempotent(t, out, r.Owned, desired)
	// The line break added before appending stays: Remove cannot know it was not there.
	back, _, err := Remove(out, mesh, r.Owned)
	if err != nil {
		t.Fatal(err)
	}
	if back != in+"\n" {
		t.Errorf("Remove: %q", back)
	}
	// A comment as the last line without a line break.
	in = defaultBlock + "# last"
	out, _, err = Merge(in, mesh, nil, desired)
	if err != nil {
		t.Fatal(err)
	}
	if want := in + "\n\n" + rendered2("pingcap-2.svc.cluster.local", "10.0.0.1"); out != want {
		t.Errorf("output:\n%s", cmp.Diff(want, out))
	}
}

// TestRemoveRoundTrip: Remove(Merge(x)) == x for inputs meshd only appends to.
func TestRemoveRoundTrip(t *testing.T) {
	desired := []Block{
		{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.0.0.1"}},
		{Zone: "pingcap-3.svc.cluster.local", Upstreams: []string{"10.0.0.2", "10.0.0.3"}},
	}
	inputs := map[string]string{
		"eks default":          readGolden(t, "eks-default.in.Corefile"),
		"user blocks":          readGolden(t, "user-blocks.in.Corefile"),
		"empty":                "",
		"only a line break":    "\n",
		"only a comment":       "# nothing yet\n",
		"trailing blank lines": defaultBlock + "\n\n",
		"trailing spaces":      defaultBlock + "   \n",
		"CRLF":                 strings.ReplaceAll(defaultBlock, "\n", "\r\n"),
		"marker of other mesh": defaultBlock + "\n# meshd.io/mesh=other: managed by meshd, edits here are overwritten\nx.local {\n}\n",
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			out, r, err := Merge(in, mesh, nil, desired)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Added) != 2 {
				t.Fatalf("report %+v", r)
			}
			assertOutsideUnchanged(t, in, out, nil, r)
			assertIdempotent(t, out, r.Owned, desired)
			// Remove with the state, and without it (the markers alone are enough).
			for _, owned := range [][]string{r.Owned, nil} {
				back, rr, err := Remove(out, mesh, owned)
				if err != nil {
					t.Fatal(err)
				}
				if back != in {
					t.Errorf("Remove(Merge(x)) != x (owned %v):\n%s", owned, cmp.Diff(in, back))
				}
				if !cmp.Equal(rr.Removed, r.Owned) || len(rr.Owned) != 0 {
					t.Errorf("Remove's report: %+v", rr)
				}
			}
			// One block at a time, in either order.
			for _, keep := range desired {
				part, _, err := Merge(out, mesh, r.Owned, []Block{keep})
				if err != nil {
					t.Fatal(err)
				}
				back, _, err := Remove(part, mesh, []string{keep.Zone})
				if err != nil {
					t.Fatal(err)
				}
				if back != in {
					t.Errorf("Remove after partial removal:\n%s", cmp.Diff(in, back))
				}
			}
		})
	}
}

func TestUnparseable(t *testing.T) {
	desired := []Block{{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.0.0.1"}}}
	for _, tc := range []struct{ name, src, line string }{
		{"missing brace", ".:53 {\n    errors\n", "Corefile:2"},
		{"snippet without braces", "(s)\nx\n", "Corefile:2"},
		{"brace on directive line", ".:53 {\n    errors }\n", "Corefile:2"},
		{"dangling comma", "a.local, {\n}\n", "Corefile:1"},
		{"unclosed directive block", ".:53 {\n    forward . 1.1.1.1 {\n", "Corefile:2"},
		{"import without argument", "import\n", "Corefile:1"},
		{"snippet redeclared", "(s) {\n}\n(s) {\n}\n", "Corefile:3"},
		{"too big", strings.Repeat("#", MaxSize+1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.src)
			if err == nil {
				t.Fatal("Validate: no error")
			}
			if !strings.Contains(err.Error(), tc.line) {
				t.Errorf("error %q does not name %s", err, tc.line)
			}
			if strings.Contains(err.Error(), "internal error") {
				t.Errorf("error %q", err)
			}
			out, r, err := Merge(tc.src, mesh, nil, desired)
			if err == nil || out != "" || r.Changed() {
				t.Errorf("Merge: out %q, report %+v, err %v", out, r, err)
			}
			if _, err := Blocks(tc.src); err == nil {
				t.Error("Blocks: no error")
			}
		})
	}
}

// TestCannotAppend: inputs after which an appended block would be swallowed. Merge refuses to append,
// but can still update in place.
func TestCannotAppend(t *testing.T) {
	desired := []Block{{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.0.0.1"}}}
	for _, tc := range []struct{ name, src, want string }{
		{"unterminated quote", defaultBlock + "x \"abc", "quoted string"},
		{"unterminated empty quote", defaultBlock + "x \"", "quoted string"},
		{"last block without braces", "a.local\nwhoami\n", "not closed"},
		{"keys only", defaultBlock + "a.local", "not closed"},
		{"empty quoted address", defaultBlock + `""`, "not closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Validate(tc.src); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			out, _, err := Merge(tc.src, mesh, nil, desired)
			if err == nil || !strings.Contains(err.Error(), tc.want) || out != "" {
				t.Errorf("out %q, err %v", out, err)
			}
			if out, r, err := Merge(tc.src, mesh, nil, nil); err != nil || out != tc.src || r.Changed() {
				t.Errorf("nothing to do: %q %+v %v", out, r, err)
			}
		})
	}
}

// TestImports: imports of files are not followed (the files are in the CoreDNS pod), snippets are.
func TestImports(t *testing.T) {
	src := `(common) {
    errors
    cache 30
}
.:53 {
    import common
    import /etc/coredns/custom/*.override
    import /etc/coredns/extra.conf
    forward . /etc/resolv.conf
}
import /etc/coredns/custom/*.server
import "/nonexistent/with space.server"
user.local:53 {
    import common
}
`
	blocks, err := Blocks(src)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, b := range blocks {
		keys = append(keys, b.Keys...)
	}
	if want := []string{".:53", "user.local:53"}; !cmp.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	desired := []Block{{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.0.0.1"}}}
	out, r, err := Merge(src, mesh, nil, desired)
	if err != nil {
		t.Fatal(err)
	}
	if want := src + "\n" + rendered2("pingcap-2.svc.cluster.local", "10.0.0.1"); out != want {
		t.Errorf("output:\n%s", cmp.Diff(want, out))
	}
	assertIdempotent(t, out, r.Owned, desired)

	// A server block that a snippet brings in is the user's, and is not editable.
	src = "(zones) {\n  pingcap-2.svc.cluster.local:53 {\n    forward . 10.2.2.2\n  }\n}\nimport zones\n"
	blocks, err = Blocks(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 1 || blocks[0].Editable || blocks[0].Start != -1 || blocks[0].OwnedBy(mesh, []string{"pingcap-2.svc.cluster.local"}) {
		t.Fatalf("blocks %+v", blocks)
	}
	out, r, err = Merge(src, mesh, []string{"pingcap-2.svc.cluster.local"}, desired)
	if err != nil {
		t.Fatal(err)
	}
	if out != src || len(r.Conflicts) != 1 || r.Conflicts[0].Line != 2 {
		t.Errorf("out %q, report %+v", out, r)
	}
}

func TestBlocks(t *testing.T) {
	src := "# head\n.:53 {\n    errors\n}\n\n" + rendered2("a.local", "10.0.0.1") + "x.local {\n} " + "y.local {\n}\n"
	blocks, err := Blocks(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 4 {
		t.Fatalf("%d blocks", len(blocks))
	}
	text := func(b ServerBlock) string { return src[b.Start:b.End] }
	cut := func(b ServerBlock) string { return src[b.CutStart:b.CutEnd] }
	for i, want := range []struct {
		keys       []string
		line       int
		text, cut  string
		markerMesh string
	}{
		{[]string{".:53"}, 2, ".:53 {\n    errors\n}", ".:53 {\n    errors\n}\n", ""},
		{[]string{"a.local:53"}, 7, strings.TrimSuffix(rendered2("a.local", "10.0.0.1"), "\n"), "\n" + rendered2("a.local", "10.0.0.1"), mesh},
		{[]string{"x.local"}, 14, "x.local {\n}", "x.local {\n}", ""},
		{[]string{"y.local"}, 15, "y.local {\n}", "y.local {\n}", ""},
	} {
		b := blocks[i]
		if !cmp.Equal(b.Keys, want.keys) || b.Line != want.line || text(b) != want.text || cut(b) != want.cut || b.MarkerMesh != want.markerMesh || !b.Editable {
			t.Errorf("block %d: %+v\ntext %q\ncut %q", i, b, text(b), cut(b))
		}
	}
	if !blocks[1].OwnedBy(mesh, nil) || blocks[1].OwnedBy("other", nil) || blocks[0].OwnedBy(mesh, []string{"."}) == false {
		t.Error("OwnedBy")
	}

	// A block without braces is not editable.
	blocks, err = Blocks("a.local\nwhoami\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 1 || blocks[0].Editable || blocks[0].Start != -1 {
		t.Errorf("%+v", blocks)
	}
}

func TestMergeDuplicateDesired(t *testing.T) {
	_, _, err := Merge(defaultBlock, mesh, nil, []Block{
		{Zone: "a.local", Upstreams: []string{"10.0.0.1"}},
		{Zone: "A.local.:53", Upstreams: []string{"10.0.0.2"}},
	})
	if err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("err %v", err)
	}
}

// TestLexerQuirks: the offsets lexer agrees with caddyfile's on its odd corners (Validate compares
// them token for token and fails loudly if they differ).
func TestLexerQuirks(t *testing.T) {
	for _, src := range []string{
		"a#b c {\n}\n",
		"a\rb {\n}\n",
		"\"a\"b {\n}\n",
		"\"a\\\"b\\c\" {\n}\n",
		"\"multi\nline\" {\n}\n",
		"\"\" a {\n}\n",
		"a {\n  x \"\n\" y\n}\n",
		"\xff\xfe {\n}\n",
		"\uFEFF\uFEFF {\n}\n",
		"a\u00a0b {\n}\n",
		"a {\n}#c d\n",
	} {
		if err := Validate(src); err != nil && strings.Contains(err.Error(), "internal") {
			t.Errorf("%q: %v", src, err)
		}
	}
}

func BenchmarkMerge(b *testing.B) {
	src := readGolden(b, "eks-default.in.Corefile")
	var desired []Block
	for i := range 100 {
		desired = append(desired, Block{
			Zone:      fmt.Sprintf("pingcap-%d.svc.cluster.local", i),
			Upstreams: []string{fmt.Sprintf("10.%d.0.1", i), fmt.Sprintf("10.%d.1.1", i), fmt.Sprintf("10.%d.2.1", i)},
		})
	}
	out, r, err := Merge(src, mesh, nil, desired)
	if err != nil {
		b.Fatal(err)
	}
	// Steady state: 100 meshd blocks, one of which changed its IPs.
	desired[50].Upstreams = []string{"10.50.9.9"}
	b.SetBytes(int64(len(out)))
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := Merge(out, mesh, r.Owned, desired); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCutRefusals: layouts where cutting meshd's block would change how the text after it reads.
// Merge refuses to cut them (with an error that says why) rather than damage the user's text.
func TestCutRefusals(t *testing.T) {
	const zone = "b.local"
	for _, tc := range []struct{ name, src, want string }{
		{
			// '#' right after "}" comments only up to the next space, so "keep" is a token (a key):
			// without the "}" the whole rest of the line would be a comment.
			name: "comment glued to the brace",
			src:  "a.local {\n} b.local {\n}#note keep {\n}\n",
			want: "without a space",
		},
		{
			name: "import after the brace",
			src:  "b.local {\n} import x {\n}\n",
			want: "an import follows",
		},
		{
			name: "byte order mark after the block",
			src:  "b.local {\n}\n\uFEFFa.local {\n}\n",
			want: "byte order mark",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Validate(tc.src); err != nil {
				t.Fatal(err)
			}
			out, _, err := Remove(tc.src, mesh, []string{zone})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "internal") || out != "" {
				t.Errorf("out %q, err %v", out, err)
			}
			// Updating in place stays possible.
			out, r, err := Merge(tc.src, mesh, []string{zone}, []Block{{Zone: zone, Upstreams: []string{"10.0.0.1"}}})
			if err != nil || len(r.Updated) != 1 {
				t.Errorf("update: %+v %v", r, err)
			}
			assertOutsideUnchanged(t, tc.src, out, []string{zone}, r)
		})
	}
}

// TestCutKeepsMarkersApart: a cut never leaves a marker comment (of any mesh) right above a block
// that was not under it, which would hand that block to the mesh.
func TestCutKeepsMarkersApart(t *testing.T) {
	other := "# meshd.io/mesh=other: managed by meshd, edits here are overwritten\n"
	for _, tc := range []struct{ name, src, want string }{
		{
			name: "marker of another mesh, blank line, meshd's block, user block",
			src:  other + "\n" + rendered2("b.local", "10.0.0.1") + "user.local {\n}\n",
			want: other + "\nuser.local {\n}\n",
		},
		{
			name: "stacked markers",
			src:  other + rendered2("b.local", "10.0.0.1") + "user.local {\n}\n",
			want: other + "\nuser.local {\n}\n",
		},
		{
			name: "two cuts meet",
			src:  other + "\n" + rendered2("b.local", "10.0.0.1") + "\n" + rendered2("c.local", "10.0.0.1") + "user.local {\n}\n",
			want: other + "\n\nuser.local {\n}\n",
		},
		{
			name: "at the end the blank line goes",
			src:  "user.local {\n}\n" + other + "\n" + rendered2("b.local", "10.0.0.1"),
			want: "user.local {\n}\n" + other,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, r, err := Remove(tc.src, mesh, nil)
			if err != nil {
				t.Fatal(err)
			}
			if out != tc.want {
				t.Errorf("output:\n%s", cmp.Diff(tc.want, out))
			}
			if len(r.Removed) == 0 {
				t.Errorf("report %+v", r)
			}
			blocks, err := Blocks(out)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range blocks {
				if b.MarkerMesh != "" {
					t.Errorf("block %v is now under the marker of %s", b.Keys, b.MarkerMesh)
				}
			}
		})
	}
}

// TestPlaceholders: {$ENV} placeholders are read as written, whatever this process's environment holds.
func TestPlaceholders(t *testing.T) {
	src := defaultBlock + "\n{$ZONE}:53 {\n    forward . {$UPSTREAM}\n}\n"
	t.Setenv("ZONE", "pingcap-2.svc.cluster.local")
	t.Setenv("UPSTREAM", "{")
	blocks, err := Blocks(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 || blocks[1].Keys[0] != "{$ZONE}:53" {
		t.Fatalf("%+v", blocks)
	}
	desired := []Block{{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.0.0.1"}}}
	out, r, err := Merge(src, mesh, nil, desired)
	if err != nil || len(r.Added) != 1 || len(r.Conflicts) != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	assertIdempotent(t, out, r.Owned, desired)
}

package corefile

import (
	"fmt"
	"strings"
)

// check is Merge's last step: it parses out and proves that it is what Merge meant to write, so that a
// mistake in locating blocks can only ever cost an error, never a damaged Corefile. out must parse,
// meshd's blocks in it must be exactly the rendered ones for the zones in owned, and every token outside
// meshd's blocks (and every user block's keys) must be the same as in the input, on the same lines
// relative to each other.
func check(in *parsed, inBlocks []ServerBlock, inMine []bool, out, mesh string, owned []string, want map[string]rendered, eol string) error {
	q, err := parseText(out)
	if err != nil {
		return fmt.Errorf("corefile: internal error: the edited Corefile would not parse: %w", err)
	}
	ownedSet := set{}
	for _, z := range owned {
		ownedSet.add(z)
	}
	outBlocks := q.serverBlocks()
	outMine := make([]bool, len(outBlocks))
	seen := set{}
	for i, b := range outBlocks {
		if outMine[i] = b.ownedBy(mesh, ownedSet); !outMine[i] {
			continue
		}
		z := b.Zones[0]
		rb, ok := want[z]
		if !ok || seen[z] || !ownedSet[z] {
			return fmt.Errorf("corefile: internal error: the edited Corefile has an unexpected block for %s at line %d", z, b.Line)
		}
		seen.add(z)
		if q.src[b.Start:b.End] != rb.text(mesh, b.ownLine, eol) {
			return fmt.Errorf("corefile: internal error: the block for %s at line %d is not as rendered", z, b.Line)
		}
	}
	if len(seen) != len(ownedSet) {
		return fmt.Errorf("corefile: internal error: the edited Corefile has %d of meshd's blocks, want %d", len(seen), len(ownedSet))
	}

	a, b := in.outside(inBlocks, inMine), q.outside(outBlocks, outMine)
	if len(a) != len(b) {
		return fmt.Errorf("corefile: internal error: the edit would change the Corefile outside meshd's blocks (%d tokens, was %d)", len(b), len(a))
	}
	for i := range a {
		if a[i].text != b[i].text || (!a[i].afterGap && !b[i].afterGap && a[i].newLine != b[i].newLine) {
			return fmt.Errorf("corefile: internal error: the edit would change the Corefile outside meshd's blocks at line %d", b[i].line)
		}
	}
	ka, kb := userKeys(in, inBlocks, inMine), userKeys(q, outBlocks, outMine)
	if len(ka) != len(kb) {
		return fmt.Errorf("corefile: internal error: the edit would change the user's server blocks (%d, was %d)", len(kb), len(ka))
	}
	for i := range ka {
		if ka[i] != kb[i] {
			return fmt.Errorf("corefile: internal error: the edit would change the keys or the marker of the user's server block %d", i+1)
		}
	}
	return nil
}

// otok is a token outside meshd's blocks.
type otok struct {
	text     string
	line     int
	newLine  bool // on a later line than the token before it
	afterGap bool // one of meshd's blocks lies between it and the token before it
}

// outside returns the tokens of p that are not in one of meshd's blocks (mine).
func (p *parsed) outside(blocks []ServerBlock, mine []bool) []otok {
	var ranges [][2]int
	for i, b := range blocks {
		if mine[i] {
			ranges = append(ranges, [2]int{b.Start, b.End})
		}
	}
	var out []otok
	r, gap := 0, false
	for i, t := range p.lex.tokens {
		for r < len(ranges) && ranges[r][1] <= t.Start {
			r++
			gap = true
		}
		if r < len(ranges) && t.Start >= ranges[r][0] {
			continue // inside meshd's block
		}
		o := otok{text: t.Text, line: t.Line, afterGap: gap}
		if i > 0 {
			prev := p.lex.tokens[i-1]
			o.newLine = prev.Line+strings.Count(prev.Text, "\n") < t.Line
		}
		out = append(out, o)
		gap = false
	}
	return out
}

// userKeys lists the keys of the blocks that are not meshd's, one string per block, with the mesh of
// the marker above them: an edit must not hand a block to another mesh either.
func userKeys(p *parsed, blocks []ServerBlock, mine []bool) []string {
	var out []string
	for i, b := range blocks {
		if !mine[i] {
			out = append(out, b.MarkerMesh+"|"+strings.Join(b.Keys, " "))
		}
	}
	return out
}

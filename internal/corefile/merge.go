package corefile

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Merge returns src with meshd's blocks for mesh made equal to desired:
//   - a desired zone without a block is appended, after one blank line, at the end (Added);
//   - meshd's block for a desired zone that differs from the rendered block is replaced in place
//     (Updated); one that is equal is left byte for byte;
//   - meshd's blocks for zones not desired are cut (Removed), as are extra copies of a block and
//     meshd's blocks for a zone that a user's block also serves (CoreDNS refuses a zone twice);
//   - a desired zone that a user's block serves is a Conflict and is not written.
//
// owned are the zones the state says meshd owns in this Corefile. src must parse, and the output is
// parsed again and checked (meshd's blocks are as rendered, every other token is unchanged) before it
// is returned; on any error out is "". Merging the output again changes nothing.
//
// New blocks use CRLF line breaks in a file that has only CRLF line breaks, LF otherwise. Removing every
// block that Merge appended returns the input, plus a final line break if it had none.
func Merge(src, mesh string, owned []string, desired []Block) (out string, r Report, err error) {
	if err := checkMesh(mesh); err != nil {
		return "", Report{}, err
	}
	want := map[string]rendered{}
	for _, b := range desired {
		rb, err := render(b)
		if err != nil {
			return "", Report{}, err
		}
		if _, dup := want[rb.zone]; dup {
			return "", Report{}, fmt.Errorf("corefile: zone %q is desired twice", rb.zone)
		}
		want[rb.zone] = rb
	}
	ownedSet := set{}
	for _, z := range owned {
		ownedSet.add(NormalizeZone(z))
	}

	in, err := classify(src, mesh, ownedSet)
	if err != nil {
		return "", Report{}, err
	}
	eol := lineBreak(src)

	// First cut what must go, then look again: a cut can move a neighbour that shared its line to
	// the start of a line, which decides whether that neighbour carries a marker.
	var drop []int
	removed, kept := set{}, set{}
	for i, b := range in.blocks {
		if !in.mine[i] {
			continue
		}
		z := b.Zones[0]
		_, ok := want[z]
		if _, taken := in.user[z]; !taken && ok && !kept[z] {
			kept.add(z)
			continue
		}
		if err := in.p.cuttable(b, z); err != nil {
			return "", Report{}, err
		}
		drop = append(drop, i)
		removed.add(z)
	}
	cur, mid := in, src
	if len(drop) > 0 {
		// Each cut takes the blank line above its block, which separates appended blocks. Where
		// cuts meet, that can bring a marker comment of another mesh right above a user's block, or
		// otherwise change what the user's text reads as: then cut the blocks' own lines only.
		for _, linesOnly := range []bool{false, true} {
			cuts := make([]edit, len(drop))
			for j, i := range drop {
				b := in.blocks[i]
				cuts[j] = edit{b.CutStart, b.CutEnd, ""}
				if linesOnly {
					cuts[j].start = b.cutLines
				}
			}
			mid = apply(src, cuts)
			if strings.HasPrefix(mid, "\uFEFF") && !strings.HasPrefix(src, "\uFEFF") {
				// The lexer skips a byte order mark at the very start only: one that a cut moves
				// there would vanish from the text that follows it.
				return "", Report{}, fmt.Errorf("corefile: cannot remove meshd's old blocks (%s): a byte order mark follows them at the start of the file", strings.Join(removed.sorted(), ", "))
			}
			if cur, err = classify(mid, mesh, ownedSet); err == nil && slices.Equal(in.userKeys(), cur.userKeys()) {
				break
			}
			if linesOnly {
				if err != nil {
					return "", Report{}, fmt.Errorf("corefile: internal error: the Corefile without meshd's old blocks would not parse: %w", err)
				}
				return "", Report{}, fmt.Errorf("corefile: cannot remove meshd's old blocks (%s) without changing how the rest of the Corefile reads", strings.Join(removed.sorted(), ", "))
			}
		}
	}

	var edits []edit
	added, updated := set{}, set{}
	kept = set{}
	for i, b := range cur.blocks {
		if !cur.mine[i] {
			continue
		}
		z := b.Zones[0]
		rb, ok := want[z]
		if _, taken := cur.user[z]; taken || !ok || kept[z] {
			return "", Report{}, fmt.Errorf("corefile: internal error: meshd's block for %s at line %d survived its removal", z, b.Line)
		}
		kept.add(z)
		if text := rb.text(mesh, b.ownLine, eol); mid[b.Start:b.End] != text {
			edits = append(edits, edit{b.Start, b.End, text})
			updated.add(z)
		}
	}
	var appends []rendered
	for z, rb := range want {
		if c, taken := in.user[z]; taken {
			r.Conflicts = append(r.Conflicts, c)
		} else if !kept[z] {
			appends = append(appends, rb)
			added.add(z)
		}
	}
	slices.SortFunc(r.Conflicts, func(a, b Conflict) int { return strings.Compare(a.Zone, b.Zone) })
	slices.SortFunc(appends, func(a, b rendered) int { return strings.Compare(a.zone, b.zone) })
	if len(appends) > 0 {
		if err := cur.p.appendable(); err != nil {
			return "", Report{}, err
		}
	}

	var sb strings.Builder
	sb.Grow(len(mid) + len(appends)*256)
	sb.WriteString(apply(mid, edits))
	for _, rb := range appends {
		if sb.Len() > 0 && sb.String() != "\uFEFF" { // a lone byte order mark is an empty file
			if !strings.HasSuffix(sb.String(), "\n") {
				sb.WriteString(eol)
			}
			sb.WriteString(eol)
		}
		sb.WriteString(rb.text(mesh, true, eol))
		sb.WriteString(eol)
	}
	out = sb.String()
	if len(out) > MaxSize {
		return "", Report{}, fmt.Errorf("corefile: the Corefile would be %d bytes, more than a ConfigMap holds (%d)", len(out), MaxSize)
	}

	r.Added, r.Updated, r.Removed = added.sorted(), updated.sorted(), removed.sorted()
	for z := range added {
		kept.add(z)
	}
	r.Owned = kept.sorted()
	if err := check(in.p, in.blocks, in.mine, out, mesh, r.Owned, want, eol); err != nil {
		return "", Report{}, err
	}
	return out, r, nil
}

// Remove returns src without meshd's blocks for mesh: Merge with nothing desired.
func Remove(src, mesh string, owned []string) (out string, r Report, err error) {
	return Merge(src, mesh, owned, nil)
}

// view is a parsed Corefile with its blocks sorted into meshd's and the user's.
type view struct {
	p      *parsed
	blocks []ServerBlock
	mine   []bool              // mine[i]: blocks[i] is meshd's
	user   map[string]Conflict // zones the user's blocks serve, with the first key serving each
}

func classify(src, mesh string, owned set) (*view, error) {
	p, err := parseText(src)
	if err != nil {
		return nil, err
	}
	v := &view{p: p, blocks: p.serverBlocks(), user: map[string]Conflict{}}
	v.mine = make([]bool, len(v.blocks))
	for i, b := range v.blocks {
		if v.mine[i] = b.ownedBy(mesh, owned); v.mine[i] {
			continue
		}
		for j, z := range b.Zones {
			if _, seen := v.user[z]; !seen {
				v.user[z] = Conflict{Zone: z, Line: p.blocks[i].keys[j].Line, Key: b.Keys[j]}
			}
		}
	}
	return v, nil
}

// userKeys lists the user's blocks, see userKeys.
func (v *view) userKeys() []string { return userKeys(v.p, v.blocks, v.mine) }

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// apply applies edits, which are in order and do not overlap.
func apply(src string, edits []edit) string {
	if len(edits) == 0 {
		return src
	}
	var b strings.Builder
	b.Grow(len(src))
	pos := 0
	for _, e := range edits {
		b.WriteString(src[pos:e.start])
		b.WriteString(e.text)
		pos = e.end
	}
	b.WriteString(src[pos:])
	return b.String()
}

// cuttable refuses to cut a block where the cut would change how the text after it reads.
func (p *parsed) cuttable(b ServerBlock, zone string) error {
	if b.CutEnd == len(p.src) || p.src[b.CutEnd-1] == '\n' {
		return nil // the cut takes whole lines: what follows starts a line before and after
	}
	// The next token, if it is on the line the cut ends in.
	i, _ := slices.BinarySearchFunc(p.lex.tokens, b.CutEnd, func(t token, off int) int { return t.Start - off })
	if i == len(p.lex.tokens) || strings.Contains(p.src[b.CutEnd:p.lex.tokens[i].Start], "\n") {
		return nil
	}
	next := p.lex.tokens[i]
	rest := strings.TrimLeft(p.src[b.CutEnd:], "\r") // the lexer drops CR even inside a token
	if r, _ := utf8.DecodeRuneInString(rest); !unicode.IsSpace(r) {
		// "}#a b" reads as "}" and "b" ('#' right after a token comments only up to the next space):
		// once the "}" is gone, "#a b" is a comment and "b" is lost.
		return fmt.Errorf("corefile: cannot remove meshd's block for %s at line %d: text follows its closing brace without a space", zone, b.Line)
	}
	if b.ownLine && next.Text == "import" {
		// The import would start its line once the block is gone, and an import at the start of a
		// line is a directive, not a server block key.
		return fmt.Errorf("corefile: cannot remove meshd's block for %s at line %d: an import follows its closing brace on the same line", zone, b.Line)
	}
	return nil
}

// lineBreak picks the line break meshd writes: CRLF when src has CRLF line breaks and no other kind,
// LF otherwise. meshd's own blocks count too, so that the choice stays put from one Merge to the next:
// what Merge writes in a CRLF file is CRLF, and an LF block, once written, keeps the choice at LF.
func lineBreak(src string) string {
	crlf := strings.Count(src, "\r\n")
	if crlf > 0 && crlf == strings.Count(src, "\n") {
		return "\r\n"
	}
	return "\n"
}

// appendable refuses inputs after which an appended block would not be a block of its own.
func (p *parsed) appendable() error {
	if p.lex.openQuote {
		return fmt.Errorf("corefile: cannot append meshd's blocks: the Corefile ends inside a quoted string")
	}
	if p.unclosed > 0 {
		return fmt.Errorf("corefile: cannot append meshd's blocks: the last server block (line %d) is not closed: it has no braces, or its last \"}\" closes a directive", p.unclosed)
	}
	return nil
}

type set map[string]bool

func (s set) add(z string) { s[z] = true }

func (s set) sorted() []string {
	if len(s) == 0 {
		return nil
	}
	out := make([]string, 0, len(s))
	for z := range s {
		out = append(out, z)
	}
	slices.Sort(out)
	return out
}

// Package corefile edits a CoreDNS Corefile the way meshd needs for cross-cluster forwarding: it adds,
// updates and removes one server block per remote cluster and keeps every other byte exactly as it was. It
// is pure: text in, text out, no I/O.
//
// Blocks are found with CoreDNS's own parser, github.com/coredns/caddy/caddyfile. Because that parser
// reports tokens by line only, this package re-reads the text with the same rules while keeping byte
// offsets (lex.go, parse.go, which follow caddy v1.1.4 quirk for quirk), and refuses to work on a text
// where its reading and caddyfile's differ. Merge parses its output again and checks it (check.go)
// before returning it, so a mistake here costs an error, never a damaged Corefile.
//
// A block is meshd's when it has a single key and braces that are all in the text (not replayed from a
// snippet) and either
//   - the line right above its key is the marker comment for this mesh (see Marker), or
//   - it has no marker for another mesh and its zone is one the caller says meshd owns (from the state).
//
// The marker makes ownership survive an apply interrupted between writing the Corefile and saving the
// state. Any other block, including one with several keys, is the user's: a desired zone that a user's
// block serves is reported as a Conflict and never written, replaced or removed.
//
// File imports (`import custom/*.server`) are not followed: the files are in the CoreDNS pod. Blocks they
// bring in are invisible here. {$ENV} placeholders are read as the text they are. Directive names are
// not checked against CoreDNS's plugin list (a custom build may have more); meshd's own blocks use only
// errors, cache and forward.
package corefile

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// MaxSize is the most a Corefile may hold: a ConfigMap holds at most 1 MiB.
const MaxSize = 1 << 20

// Block is a server block meshd wants: forward Zone to Upstreams (IP addresses) over TCP.
type Block struct {
	Zone      string
	Upstreams []string
	// Cache, when set, makes the block one for a NodeLocal DNSCache's Corefile instead (see CacheRoute):
	// Upstreams is then unused.
	Cache *CacheRoute
}

// CacheRoute is how a NodeLocal DNSCache block reaches the cluster's CoreDNS: the bind and forward arguments
// of the cache's own block for the cluster domain, copied as written. The cache runs on the host network,
// so a block must bind only the cache's addresses; and node-cache fills __PILLAR__ placeholders such as
// __PILLAR__CLUSTER__DNS__ in the forward target at run time, so they are kept as text.
type CacheRoute struct {
	Bind    []string
	Forward []string
}

// Report says what Merge or Remove changed. Zones are normalised (see NormalizeZone) and sorted.
type Report struct {
	Added, Updated, Removed []string
	// Conflicts are desired zones that a user's block serves; meshd wrote nothing for them.
	Conflicts []Conflict
	// Owned are the zones of meshd's blocks in the output: what the state should record.
	Owned []string
}

// Changed reports whether the output differs from the input.
func (r Report) Changed() bool {
	return len(r.Added)+len(r.Updated)+len(r.Removed) > 0
}

// Conflict is a desired zone served by a user's block.
type Conflict struct {
	Zone string // the desired zone, normalised
	Line int    // line of the user's key
	Key  string // the user's key as written
}

func (c Conflict) String() string {
	return fmt.Sprintf("zone %s is served by a block meshd does not own (line %d: %s)", c.Zone, c.Line, c.Key)
}

// ServerBlock is a server block of a Corefile.
type ServerBlock struct {
	Keys  []string // as written, trailing commas removed
	Zones []string // Keys normalised
	Line  int      // line of the first key
	// Editable reports that the block's keys and braces are all in the text, so that meshd could
	// replace or cut it. It is false for blocks without braces, for blocks replayed from snippets,
	// and for a last block that caddyfile lets the end of input close.
	Editable bool
	// Start and End delimit the block: from the marker comment above it (if any; else the first key)
	// to just after the closing brace. Updating a block replaces exactly these bytes. -1 when not
	// Editable.
	Start, End int
	// CutStart and CutEnd delimit what removing the block deletes: Start to End, widened to whole lines
	// when the block has its lines to itself (indentation, trailing spaces and comment, and the line
	// break included), plus the blank line just above it, which meshd put there as a separator when it
	// appended the block. The blank line stays when taking it would leave a marker comment right above
	// other text. -1 when not Editable.
	CutStart, CutEnd int
	// MarkerMesh is the mesh named by the marker line right above the key, "" if there is none.
	MarkerMesh string

	// ownLine: only spaces precede the key on its line, so that a marker line can go above it. A block
	// that shares its line with text before it is written without marker and is meshd's by the state.
	ownLine bool
	// cutLines is CutStart without the blank line above: where a cut starts when taking that line
	// too would join the text around it in another way (see Merge).
	cutLines int
}

// OwnedBy reports whether b is meshd's for mesh, given the zones the state says it owns.
func (b ServerBlock) OwnedBy(mesh string, owned []string) bool {
	set := map[string]bool{}
	for _, z := range owned {
		set[NormalizeZone(z)] = true
	}
	return b.ownedBy(mesh, set)
}

func (b ServerBlock) ownedBy(mesh string, owned map[string]bool) bool {
	if !b.Editable || len(b.Keys) != 1 {
		return false
	}
	return b.MarkerMesh == mesh || (b.MarkerMesh == "" && owned[b.Zones[0]])
}

// Validate reports whether src parses as a Corefile. The error names the line.
func Validate(src string) error {
	_, err := parseText(src)
	return err
}

// Blocks returns the server blocks of src in order. Snippet definitions are not server blocks.
func Blocks(src string) ([]ServerBlock, error) {
	p, err := parseText(src)
	if err != nil {
		return nil, err
	}
	return p.serverBlocks(), nil
}

// Render returns the block meshd writes for b, marker line first, with a final line break.
func Render(mesh string, b Block) (string, error) {
	if err := checkMesh(mesh); err != nil {
		return "", err
	}
	r, err := render(b)
	if err != nil {
		return "", err
	}
	return r.text(mesh, true, "\n") + "\n", nil
}

// rendered is a desired block ready to write.
type rendered struct {
	zone  string
	lines []string // the block without marker
}

func render(b Block) (rendered, error) {
	z, err := zoneFor(b.Zone)
	if err != nil {
		return rendered{}, err
	}
	if b.Cache != nil {
		return renderCacheBlock(z, *b.Cache)
	}
	addrs, err := upstreamsFor(z, b.Upstreams)
	if err != nil {
		return rendered{}, err
	}
	ups := make([]string, len(addrs))
	for i, a := range addrs {
		ups[i] = upstreamText(a)
	}
	return rendered{zone: z, lines: []string{
		z + ":53 {",
		"    errors",
		"    cache 30",
		"    forward . " + strings.Join(ups, " ") + " {",
		"        force_tcp",
		"    }",
		"}",
	}}, nil
}

// renderCacheBlock renders a NodeLocal DNSCache block: the zone forwarded, over TCP, where the cache sends
// its cluster domain (the cluster's CoreDNS, whose own blocks forward it on to the other cluster).
func renderCacheBlock(z string, r CacheRoute) (rendered, error) {
	if len(r.Forward) == 0 {
		return rendered{}, fmt.Errorf("corefile: zone %q: the cache's forward target is not known", z)
	}
	for _, a := range append(slices.Clone(r.Bind), r.Forward...) {
		if !isPlainArg(a) {
			return rendered{}, fmt.Errorf("corefile: zone %q: %q cannot be copied into a block as one argument", z, a)
		}
	}
	lines := []string{z + ":53 {", "    errors", "    cache 30"}
	if len(r.Bind) > 0 {
		lines = append(lines, "    bind "+strings.Join(r.Bind, " "))
	}
	lines = append(lines, "    forward . "+strings.Join(r.Forward, " ")+" {", "        force_tcp", "    }", "}")
	return rendered{zone: z, lines: lines}, nil
}

// isPlainArg reports whether s reads back as the one token it is: no spaces, quotes, braces, comments or
// placeholders that the caddyfile lexer or CoreDNS would expand.
func isPlainArg(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n\"'{}#`\\")
}

// text is the block as written at a position: with the marker line when the key has its line to
// itself, without it when the key follows other text on its line (a marker there would be a comment
// on that text's line, which does not mark anything).
func (r rendered) text(mesh string, ownLine bool, eol string) string {
	body := strings.Join(r.lines, eol)
	if !ownLine {
		return body
	}
	return Marker(mesh) + eol + body
}

// serverBlocks locates the parser's blocks in the text.
func (p *parsed) serverBlocks() []ServerBlock {
	out := make([]ServerBlock, 0, len(p.blocks))
	for _, b := range p.blocks {
		sb := ServerBlock{Line: b.keys[0].Line, Start: -1, End: -1, CutStart: -1, CutEnd: -1}
		for _, k := range b.keys {
			sb.Keys = append(sb.Keys, k.Text)
			sb.Zones = append(sb.Zones, NormalizeZone(k.Text))
		}
		first := b.first
		if !first.replay {
			ls := p.lineStart[first.Line-1]
			// A byte order mark, which the lexer skips at the very start, is not text before the key.
			sb.ownLine = strings.TrimFunc(strings.TrimPrefix(p.src[ls:first.Start], "\uFEFF"), unicode.IsSpace) == ""
			if sb.ownLine && first.Line > 1 {
				if m := markerRE.FindStringSubmatch(p.commentLine(first.Line - 1)); m != nil {
					sb.MarkerMesh = m[1]
				}
			}
		}
		sb.Editable = b.open != nil && b.close != nil && !b.eofClose && !first.replay && !b.open.replay && !b.close.replay
		for _, k := range b.keys {
			sb.Editable = sb.Editable && !k.replay
		}
		if sb.Editable {
			p.locate(&sb, first, *b.close)
		}
		out = append(out, sb)
	}
	return out
}

// locate sets the byte ranges of an editable block.
func (p *parsed) locate(sb *ServerBlock, first, closing ptok) {
	line := first.Line
	// Indentation before the marker or key stays outside the block: a block that a cut moves to
	// the start of a line keeps the spaces that were before it.
	sb.Start = first.Start
	if sb.MarkerMesh != "" {
		line--
		sb.Start = p.lineStart[line-1] + strings.IndexByte(p.lineText(line), '#')
	}
	sb.End = closing.End
	sb.CutStart, sb.CutEnd = sb.Start, sb.End
	sb.cutLines = sb.CutStart
	if !sb.ownLine {
		return
	}
	// The rest of the closing brace's line must hold no token (a comment is fine) for the block to
	// have its lines to itself.
	eol := strings.IndexByte(p.src[sb.End:], '\n')
	lineEnd := len(p.src)
	if eol >= 0 {
		lineEnd = sb.End + eol + 1
	}
	if closing.src+1 < len(p.lex.tokens) && p.lex.tokens[closing.src+1].Start < lineEnd {
		return
	}
	sb.CutStart, sb.CutEnd = p.lineStart[line-1], lineEnd // whole lines, indentation included
	if sb.CutStart == 0 && strings.HasPrefix(p.src, "\uFEFF") {
		sb.CutStart = len("\uFEFF") // the byte order mark is the file's, not the line's
	}
	sb.cutLines = sb.CutStart
	if line > 1 && p.blankLine(line-1) {
		sb.CutStart = p.lineStart[line-2]
	}
	// A cut must not leave a line that reads as a marker (of any mesh) right above a line with
	// content: that would hand the content to a mesh. Keep a blank line between them then: the one
	// above the block if there is one, else the block's last line break.
	above, _ := slices.BinarySearch(p.lineStart, sb.CutStart) // 1-based number of the line above
	if above < 1 || sb.CutEnd >= len(p.src) || markerRE.FindString(p.commentLine(above)) == "" {
		return
	}
	if next, _ := slices.BinarySearch(p.lineStart, sb.CutEnd); p.blankLine(next + 1) {
		return
	}
	if sb.CutStart < p.lineStart[line-1] {
		sb.CutStart = p.lineStart[line-1]
	} else {
		sb.CutEnd--
	}
}

// lineText returns line n (1-based) without its line break.
func (p *parsed) lineText(n int) string {
	end := len(p.src)
	if n < len(p.lineStart) {
		end = p.lineStart[n] - 1
	}
	return p.src[p.lineStart[n-1]:end]
}

// commentLine returns line n trimmed if no token touches it (it is blank or a comment), else "".
func (p *parsed) commentLine(n int) string {
	if p.lineHasToken[n-1] {
		return ""
	}
	return strings.TrimSpace(strings.TrimPrefix(p.lineText(n), "\uFEFF"))
}

func (p *parsed) blankLine(n int) bool {
	return !p.lineHasToken[n-1] && strings.TrimSpace(p.lineText(n)) == ""
}

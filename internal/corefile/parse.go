package corefile

import (
	"fmt"
	"strings"

	"github.com/coredns/caddy/caddyfile"
)

// The caddyfile parser groups tokens into server blocks but does not say where a block ends in the
// text, so the structure is found by parse below, a port of (*caddyfile.parser).parseAll in
// github.com/coredns/caddy v1.1.4 that works on tokens with offsets. It follows the same control flow
// (cursor steps, the `import` splices, snippets) so that it ends every block at the token caddyfile
// does; parseText then runs caddyfile.Parse itself and compares the blocks' keys.
//
// Two things are deliberately not done the way CoreDNS does them at run time, because meshd is not the
// CoreDNS pod:
//   - `import` of a file or glob: the files live in the pod, not here. Such an import is treated as
//     importing nothing, and caddyfile.Parse is given the same view (see stubImports) so that it never
//     reads local files.
//   - `{$ENV}` placeholders: the pod's environment is unknown, and this process's must not matter.
//     Placeholders are read as the text they are, here and by caddyfile.Parse (see literalEnv).

// maxSnippetExpansions is caddyfile's cap on snippet imports per parse (maxSnippetExpansions there).
const maxSnippetExpansions = 10000

// ptok is a token of the parser's stream: a source token, or a copy of one that a snippet import
// replayed somewhere else (whose offsets are then not where the parser sees it).
type ptok struct {
	token
	src    int  // index in the source tokens
	replay bool // copied by an import of a snippet
}

// pblock is a server block as the parser found it.
type pblock struct {
	keys  []ptok // key tokens, Text without the trailing comma
	open  *ptok  // "{" opening the block; nil for a block without braces
	close *ptok  // token that closed it
	// strayClose: a block without braces that a "}" ended (rather than the end of input).
	strayClose bool
	// eofClose: a block with braces whose directives ran to the end of input. caddyfile then takes
	// the last token for its closing brace if it is a "}", even one that closes a directive's block
	// ("a {\n b {\n }" parses): the block never really closed, and anything appended would join it.
	eofClose bool
	snippet  bool // a snippet definition, not a server block
	addrs    bool // it read at least one address token, possibly an empty one ("")
	// first is the first address token, where the block starts: the first key, or an empty
	// address ("") before it.
	first ptok
}

type parser struct {
	toks     []ptok
	cursor   int
	eof      bool
	block    pblock
	snippets map[string][]ptok
	// snippetExpansions counts imports, including file imports, which are stubbed as snippet imports.
	snippetExpansions int
	// fileImports and snippetImports hold the source index of the argument of every import that named
	// a file or a snippet.
	fileImports, snippetImports map[int]bool
	// unclosed is the line of the last block (or keyless block) when it is still open at the end of
	// input, so that text appended to the input would become part of it; 0 when it is closed.
	unclosed int
}

func (p *parser) next() bool {
	if p.cursor < len(p.toks)-1 {
		p.cursor++
		return true
	}
	return false
}

func (p *parser) val() string {
	if p.cursor < 0 || p.cursor >= len(p.toks) {
		return ""
	}
	return p.toks[p.cursor].Text
}

func (p *parser) line() int {
	if p.cursor < 0 || p.cursor >= len(p.toks) {
		return 0
	}
	return p.toks[p.cursor].Line
}

// sameLine mirrors the Dispenser's line test: a token that spans lines ends on a later line.
func sameLine(a, b ptok) bool { return a.Line+strings.Count(a.Text, "\n") == b.Line }

func (p *parser) isNewLine() bool {
	if p.cursor < 1 {
		return true
	}
	if p.cursor > len(p.toks)-1 {
		return false
	}
	a, b := p.toks[p.cursor-1], p.toks[p.cursor]
	return a.Line+strings.Count(a.Text, "\n") < b.Line
}

func (p *parser) nextArg() bool {
	if p.cursor < 0 {
		p.cursor++
		return true
	}
	if p.cursor >= len(p.toks) {
		return false
	}
	if p.cursor < len(p.toks)-1 && sameLine(p.toks[p.cursor], p.toks[p.cursor+1]) {
		p.cursor++
		return true
	}
	return false
}

// errf is a parse error at the cursor's line. Its text must quote no token of the Corefile (see
// SyntaxError); parseText adds the directive.
func (p *parser) errf(format string, args ...any) error {
	return &SyntaxError{Line: p.line(), Problem: "Error during parsing: " + fmt.Sprintf(format, args...)}
}

// unexpected is caddyfile's SyntaxErr without the token.
func (p *parser) unexpected(want string) error {
	return &SyntaxError{Line: p.line(), Problem: fmt.Sprintf("Syntax error: Unexpected token, expecting '%s'", want)}
}

func (p *parser) parseAll() ([]pblock, error) {
	var blocks []pblock
	for p.next() {
		p.block = pblock{}
		line := p.line()
		if err := p.begin(); err != nil {
			return blocks, err
		}
		p.unclosed = 0
		b := p.block
		switch {
		case p.eof:
			if b.addrs {
				p.unclosed = line // addresses and nothing else: what follows would be their block
			}
		case b.snippet:
		case b.open != nil && b.eofClose, b.open == nil && !b.strayClose:
			p.unclosed = line
		}
		if len(b.keys) > 0 {
			blocks = append(blocks, b)
		}
	}
	return blocks, nil
}

func (p *parser) begin() error {
	if len(p.toks) == 0 {
		return nil
	}
	if err := p.addresses(); err != nil {
		return err
	}
	if p.eof {
		return nil
	}
	if ok, name := p.isSnippet(); ok {
		if p.snippets == nil {
			p.snippets = map[string][]ptok{}
		}
		if _, found := p.snippets[name]; found {
			return p.errf("redeclaration of a previously declared snippet")
		}
		toks, err := p.snippetTokens()
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(toks); i++ {
			if toks[i].Text == "import" {
				atLineStart := i == 0 || toks[i-1].Line != toks[i].Line
				if atLineStart && toks[i+1].Text == name {
					return p.errf("maximum snippet import depth (%d) exceeded", maxSnippetExpansions)
				}
			}
		}
		p.snippets[name] = toks
		p.block.keys = nil
		p.block.snippet = true
		return nil
	}
	return p.blockContents()
}

func (p *parser) addresses() error {
	var expectingAnother bool
	for {
		tkn := p.val()
		if tkn == "import" && p.isNewLine() {
			if err := p.doImport(); err != nil {
				return err
			}
			continue
		}
		if tkn == "{" {
			if expectingAnother {
				return p.errf("Expected another address - check for extra comma")
			}
			break
		}
		if p.cursor >= 0 && p.cursor < len(p.toks) {
			if !p.block.addrs {
				p.block.first = p.toks[p.cursor]
			}
			p.block.addrs = true // even "": a line break after it ends the addresses
		}
		if tkn != "" {
			k := p.toks[p.cursor]
			if strings.HasSuffix(tkn, ",") {
				k.Text = tkn[:len(tkn)-1]
				expectingAnother = true
			} else {
				expectingAnother = false
			}
			p.block.keys = append(p.block.keys, k)
		}
		hasNext := p.next()
		if expectingAnother && !hasNext {
			return p.errf("Unexpected EOF")
		}
		if !hasNext {
			p.eof = true
			break
		}
		if !expectingAnother && p.isNewLine() {
			break
		}
	}
	return nil
}

func (p *parser) blockContents() error {
	braces := p.val() == "{"
	if braces {
		t := p.toks[p.cursor]
		p.block.open = &t
	} else {
		p.cursor-- // single-server configs need no braces
	}
	if err := p.directives(); err != nil {
		return err
	}
	if braces {
		if p.val() != "}" {
			return p.unexpected("}")
		}
		t := p.toks[p.cursor]
		p.block.close = &t
	}
	return nil
}

func (p *parser) directives() error {
	p.block.eofClose = true
	for p.next() {
		if p.val() == "}" {
			// A block without braces ends at a stray "}": a block appended after it is a block.
			p.block.strayClose = p.block.open == nil
			p.block.eofClose = false
			break
		}
		if p.val() == "import" {
			if err := p.doImport(); err != nil {
				return err
			}
			p.cursor--
			continue
		}
		if err := p.directive(); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) directive() error {
	nesting := 0
	for p.next() {
		if p.val() == "{" {
			nesting++
		} else if p.isNewLine() && nesting == 0 {
			p.cursor--
			break
		} else if p.val() == "}" && nesting > 0 {
			nesting--
		} else if p.val() == "}" && nesting == 0 {
			return p.errf("Unexpected '}' because no matching opening brace")
		} else if p.val() == "import" && p.isNewLine() {
			if err := p.doImport(); err != nil {
				return err
			}
			p.cursor--
			continue
		}
	}
	if nesting > 0 {
		return p.errf("Unexpected EOF")
	}
	return nil
}

// doImport splices an import like caddyfile does: a snippet's tokens replace `import name`, and a file
// import is replaced by nothing (see the package comment in parse.go).
func (p *parser) doImport() error {
	if !p.nextArg() {
		if p.val() == "{" {
			return p.errf("Unexpected token '{', expecting argument")
		}
		return p.errf("Wrong argument count or unexpected line ending")
	}
	arg := p.toks[p.cursor]
	if arg.Text == "" {
		return p.errf("Import requires a non-empty filepath")
	}
	if p.nextArg() {
		return p.errf("Import takes only one argument (glob pattern or file)")
	}
	if p.snippetExpansions >= maxSnippetExpansions {
		return p.errf("maximum snippet import depth (%d) exceeded", maxSnippetExpansions)
	}
	p.snippetExpansions++
	var imported []ptok
	if body, ok := p.snippets[arg.Text]; ok {
		if p.snippetImports == nil {
			p.snippetImports = map[int]bool{}
		}
		p.snippetImports[arg.src] = true
		imported = make([]ptok, len(body))
		for i, t := range body {
			t.replay = true
			imported[i] = t
		}
	} else {
		if strings.Contains(arg.Text, "\n") {
			// The stub that replaces the argument for caddyfile.Parse could not keep the line
			// arithmetic of a multi-line argument; no real file name has a line break.
			return p.errf("an import argument spans lines")
		}
		if p.fileImports == nil {
			p.fileImports = map[int]bool{}
		}
		p.fileImports[arg.src] = true
	}
	before := p.toks[:p.cursor-1]
	after := p.toks[p.cursor+1:]
	toks := make([]ptok, 0, len(before)+len(imported)+len(after))
	toks = append(toks, before...)
	toks = append(toks, imported...)
	toks = append(toks, after...)
	p.toks = toks
	p.cursor--
	return nil
}

func (p *parser) isSnippet() (bool, string) {
	if len(p.block.keys) == 1 {
		k := p.block.keys[0].Text
		if strings.HasPrefix(k, "(") && strings.HasSuffix(k, ")") {
			return true, strings.TrimSuffix(k[1:], ")")
		}
	}
	return false, ""
}

func (p *parser) snippetTokens() ([]ptok, error) {
	if p.val() != "{" {
		return nil, p.unexpected("{")
	}
	count := 1
	toks := []ptok{}
	for p.next() {
		if p.val() == "}" {
			count--
			if count == 0 {
				break
			}
		}
		if p.val() == "{" {
			count++
		}
		toks = append(toks, p.toks[p.cursor])
	}
	if count != 0 {
		return nil, p.unexpected("}")
	}
	return toks, nil
}

// importStub names the empty snippet that file imports are pointed at for caddyfile.Parse.
const importStub = "meshd.io-import-stub"

// stubLines is how many lines the stub's definition adds in front of the text. It has lines of its own
// because an `import` is only an import at the start of a line.
const stubLines = 2

// stubImports returns src with the argument of every file import replaced by importStub and the stub
// snippet defined in front, so that caddyfile.Parse sees the same (empty) imports as parse does and
// never opens a local file. The second result reports whether the stub was added (and caddyfile's
// line numbers are stubLines too high).
func stubImports(src string, toks []token, fileImports map[int]bool) (string, bool) {
	if len(fileImports) == 0 {
		return src, false
	}
	var b strings.Builder
	b.Grow(len(src) + 64)
	pos := 0
	if strings.HasPrefix(src, "\uFEFF") {
		pos = len("\uFEFF") // the lexer skips a byte order mark only at the very start
	}
	b.WriteString(src[:pos])
	b.WriteString("(" + importStub + ") {\n}\n")
	for i, t := range toks {
		if !fileImports[i] {
			continue
		}
		b.WriteString(src[pos:t.Start])
		b.WriteString(importStub) // no line break to keep: doImport refuses multi-line arguments
		pos = t.End
	}
	b.WriteString(src[pos:])
	return b.String(), true
}

// parsed is a source with its tokens and server blocks.
type parsed struct {
	src       string
	lex       lexResult
	blocks    []pblock
	lineStart []int // byte offset of the start of every line (1-based line n starts at lineStart[n-1])
	// lineHasToken[n-1] reports whether a token touches line n.
	lineHasToken []bool
	// unclosed is the parser's unclosed: the line of a last block that text appended would join.
	unclosed int
	// fileImports are the source indexes of the arguments of imports that name files (see ServerImports).
	fileImports map[int]bool
}

// parseText lexes and parses src, checks the result against the caddyfile package, and returns the
// structure. Its errors name lines, never the Corefile's text (see SyntaxError): a *SyntaxError when
// caddyfile rejects the text.
func parseText(src string) (*parsed, error) {
	if len(src) > MaxSize {
		return nil, fmt.Errorf("corefile: %d bytes is more than a ConfigMap holds (%d)", len(src), MaxSize)
	}
	lx := lex(src)
	if err := checkTokens(src, lx.tokens); err != nil {
		return nil, err
	}
	p := &parser{toks: make([]ptok, len(lx.tokens)), cursor: -1}
	for i, t := range lx.tokens {
		p.toks[i] = ptok{token: t, src: i}
	}
	blocks, perr := p.parseAll()
	for i := range p.fileImports {
		if p.snippetImports[i] && perr == nil {
			// A snippet replayed before and after the snippet it imports is defined: the stub
			// could not show caddyfile both meanings of the one argument.
			perr = &SyntaxError{Line: lx.tokens[i].Line, Problem: "an import names a file at one place and a snippet at another"}
		}
	}

	stubbed, withStub := stubImports(src, lx.tokens, p.fileImports)
	cblocks, cerr := caddyfile.Parse("Corefile", strings.NewReader(literalEnv(stubbed)), nil)
	if cerr != nil {
		return nil, fromCaddy(cerr, lx.tokens, withStub)
	}
	if se, ok := perr.(*SyntaxError); ok && se.Directive == "" {
		se.Directive = directiveAt(lx.tokens, se.Line)
	}
	if perr != nil {
		return nil, fmt.Errorf("corefile: cannot follow the Corefile's structure: %w", perr)
	}
	// The stub snippet is not a server block, so both lists must match block for block.
	if len(cblocks) != len(blocks) {
		return nil, fmt.Errorf("corefile: cannot follow the Corefile's structure: %d server blocks, caddyfile reads %d", len(blocks), len(cblocks))
	}
	for i, b := range blocks {
		if len(b.keys) != len(cblocks[i].Keys) {
			return nil, fmt.Errorf("corefile: cannot follow the Corefile's structure at line %d", b.keys[0].Line)
		}
		for j, k := range b.keys {
			if literalEnv(k.Text) != cblocks[i].Keys[j] {
				return nil, fmt.Errorf("corefile: cannot follow the Corefile's structure at line %d: caddyfile reads another key", k.Line)
			}
		}
	}
	ls := []int{0}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			ls = append(ls, i+1)
		}
	}
	// A line that a token touches is neither blank nor a comment line, even if it is blank inside a
	// quoted token.
	hasTok := make([]bool, len(ls))
	for _, t := range lx.tokens {
		last := t.Line - 1 + strings.Count(src[t.Start:t.End], "\n")
		for l := t.Line - 1; l <= last && l < len(hasTok); l++ {
			hasTok[l] = true
		}
	}
	return &parsed{src: src, lex: lx, blocks: blocks, lineStart: ls, lineHasToken: hasTok, unclosed: p.unclosed,
		fileImports: p.fileImports}, nil
}

// literalEnv turns the {$VAR} and {%VAR%} placeholders of s into plain text ("{_VAR}", "{_VAR%}"), so
// that caddyfile.Parse does not substitute this process's environment, which is not the CoreDNS pod's:
// meshd reads placeholders as written. The text keeps its length, lines and token boundaries.
func literalEnv(s string) string {
	if !strings.Contains(s, "{$") && !strings.Contains(s, "{%") {
		return s
	}
	return strings.NewReplacer("{$", "{_", "{%", "{_").Replace(s)
}

package corefile

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// SyntaxError is a Corefile that does not parse, or that meshd cannot follow. A Corefile can hold
// credentials (a route53 plugin's AWS keys, a tsig secret, a file's path), and errors go into plans, logs
// and Events: so the error names the line and, where the line is inside a directive of a plugin CoreDNS
// ships, that plugin's name, and never quotes any other text of the Corefile. caddyfile's own messages
// ("Unexpected token 'xyz'") are rewritten to say what is wrong without the token.
type SyntaxError struct {
	Line      int    // 1-based; 0 when no line is known
	Directive string // a CoreDNS plugin name (see plugins), or ""
	Problem   string // fixed text, no token of the Corefile
}

func (e *SyntaxError) Error() string {
	s := fmt.Sprintf("Corefile:%d - %s", e.Line, e.Problem)
	if e.Directive != "" {
		s += fmt.Sprintf(" (in the %s directive)", e.Directive)
	}
	return s
}

// plugins are the plugins of CoreDNS v1.11.3 (plugin.cfg). Only these names are ever put into an error:
// any other token in a directive's place might be a secret on a line of its own.
var plugins = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range strings.Fields(`root metadata geoip cancel tls timeouts reload nsid bufsize bind debug trace
		ready health pprof prometheus errors log dnstap local dns64 acl any chaos loadbalance tsig cache rewrite
		header dnssec autopath minimal template transfer hosts route53 azure clouddns k8s_external kubernetes
		file auto secondary etcd loop forward grpc erratic whoami on sign view import`) {
		m[p] = true
	}
	return m
}()

// syntaxErr builds the error for a problem at a line of the tokens toks.
func syntaxErr(toks []token, line int, problem string) *SyntaxError {
	return &SyntaxError{Line: line, Directive: directiveAt(toks, line), Problem: problem}
}

// directiveAt returns the plugin whose directive (in a server block with braces) holds the line, or ""
// when the line is outside such a directive or the directive's name is not a known plugin.
func directiveAt(toks []token, line int) string {
	depth, dir, start := 0, "", false
	prevEnd := 0 // line the previous token ends on
	for i, t := range toks {
		if t.Line > line {
			break
		}
		newLine := i == 0 || prevEnd < t.Line
		prevEnd = t.Line + strings.Count(t.Text, "\n")
		switch t.Text {
		case "{":
			depth++
			start = depth == 1 // the token after a server block's brace starts a directive
			continue
		case "}":
			if depth--; depth <= 0 {
				depth, dir = 0, ""
			}
		default:
			if depth == 1 && (newLine || start) {
				dir = t.Text
			}
		}
		start = false
	}
	if plugins[dir] {
		return dir
	}
	return ""
}

// caddyMessages are caddyfile's messages (after "Error during parsing: ") that quote no token, kept as
// they are; caddyPrefixes map messages that quote one to text that does not.
var (
	caddyMessages = map[string]bool{
		"Unexpected EOF": true, "Unexpected '}' because no matching opening brace": true,
		"Unexpected token '{', expecting argument":                                      true,
		"Import requires a non-empty filepath":                                          true,
		"Import takes only one argument (glob pattern or file)":                         true,
		fmt.Sprintf("maximum snippet import depth (%d) exceeded", maxSnippetExpansions): true,
	}
	caddyPrefixes = []struct{ prefix, problem string }{
		{"Wrong argument count or unexpected line ending after ", "Wrong argument count or unexpected line ending"},
		{"Expected another address but had ", "Expected another address - check for extra comma"},
		{"redeclaration of previously declared snippet ", "redeclaration of a previously declared snippet"},
	}
	caddyErr  = regexp.MustCompile(`^Corefile:(\d+) - `)
	expecting = regexp.MustCompile(`, expecting '([{}])'$`)
)

// fromCaddy turns an error of caddyfile.Parse on the text with tokens toks into a SyntaxError; stubbed
// says that the stub of stubImports is in front of the text caddyfile read.
func fromCaddy(err error, toks []token, stubbed bool) *SyntaxError {
	msg := err.Error()
	m := caddyErr.FindStringSubmatch(msg)
	if m == nil {
		return &SyntaxError{Problem: "the Corefile does not parse"}
	}
	line, _ := strconv.Atoi(m[1])
	if stubbed && line > stubLines {
		line -= stubLines
	}
	msg = msg[len(m[0]):]
	problem := "the Corefile does not parse"
	switch {
	case strings.HasPrefix(msg, "Syntax error: "):
		problem = "Syntax error: Unexpected token"
		if e := expecting.FindStringSubmatch(msg); e != nil {
			problem += fmt.Sprintf(", expecting '%s'", e[1])
		}
	case strings.HasPrefix(msg, "Error during parsing: "):
		msg = strings.TrimPrefix(msg, "Error during parsing: ")
		problem = "Error during parsing"
		if caddyMessages[msg] {
			problem += ": " + msg
		}
		for _, p := range caddyPrefixes {
			if strings.HasPrefix(msg, p.prefix) {
				problem += ": " + p.problem
			}
		}
	}
	return syntaxErr(toks, line, problem)
}

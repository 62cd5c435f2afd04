package corefile

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/coredns/caddy/caddyfile"
)

// token is one caddyfile token with the byte range it was read from. The caddyfile lexer only reports
// a token's text and line, which is not enough to edit the text in place, so lex repeats its rules
// while keeping offsets, and checkTokens compares the result with the real lexer on every parse.
type token struct {
	Text       string
	Line       int
	Start, End int // src[Start:End] holds the token as written (quotes included)
}

// lexResult is the token stream of a source and how the source ends.
type lexResult struct {
	tokens []token
	// openQuote reports that the input ends inside a quoted token: anything appended would be
	// swallowed by it.
	openQuote bool
}

// lex mirrors (*caddyfile.lexer).next in github.com/coredns/caddy v1.1.4, quirks included:
//   - a leading byte order mark is skipped;
//   - '\r' is dropped everywhere outside quotes, even inside a token ("a\rb" is the token "ab");
//   - '#' starts a comment even in the middle of a token, but the comment then ends at the next
//     space, not at the end of the line ("a#b c" gives the tokens "a" and "c");
//   - a quoted token ends at its closing quote ("a"b gives "a" and "b"), may span lines, keeps
//     a backslash unless it escapes a quote, and an unterminated one runs to the end of input;
//   - invalid UTF-8 reads as U+FFFD, one byte at a time.
func lex(src string) lexResult {
	var res lexResult
	i, line := 0, 1
	if strings.HasPrefix(src, "\uFEFF") {
		i = len("\uFEFF")
	}
	var val strings.Builder
	for {
		// One iteration of this loop is one call of the caddyfile lexer's next().
		val.Reset()
		nval := 0 // runes in val: the lexer tests len([]rune) > 0
		var comment, quoted, escaped bool
		var tok token
		emitted := false
		for !emitted {
			if i >= len(src) {
				if nval > 0 {
					tok.Text = val.String()
					if quoted {
						tok.End = len(src)
					}
					res.tokens = append(res.tokens, tok)
				}
				// Even an empty unterminated quote swallows whatever would be appended.
				res.openQuote = quoted
				return res
			}
			ch, size := utf8.DecodeRuneInString(src[i:])
			pos := i
			i += size

			if quoted {
				if !escaped {
					if ch == '\\' {
						escaped = true
						continue
					} else if ch == '"' {
						tok.Text, tok.End = val.String(), i
						res.tokens = append(res.tokens, tok)
						emitted = true
						continue
					}
				}
				if ch == '\n' {
					line++
				}
				if escaped && ch != '"' {
					val.WriteByte('\\')
					nval++
				}
				val.WriteRune(ch)
				nval++
				escaped = false
				continue
			}

			if unicode.IsSpace(ch) {
				if ch == '\r' {
					continue
				}
				if ch == '\n' {
					line++
					comment = false
				}
				if nval > 0 {
					tok.Text = val.String()
					res.tokens = append(res.tokens, tok)
					emitted = true
				}
				continue
			}
			if ch == '#' {
				comment = true
			}
			if comment {
				continue
			}
			if nval == 0 {
				tok = token{Line: line, Start: pos}
				if ch == '"' {
					quoted = true
					continue
				}
			}
			val.WriteRune(ch)
			nval++
			tok.End = i
		}
	}
}

// checkTokens compares toks with what the caddyfile lexer itself reads from src, so that every offset
// meshd edits at is known to belong to the token CoreDNS will see.
func checkTokens(src string, toks []token) error {
	d := caddyfile.NewDispenser("Corefile", strings.NewReader(src))
	n := 0
	for d.Next() {
		if n >= len(toks) {
			return fmt.Errorf("corefile: internal error: lexer disagrees with caddyfile at line %d (an extra token)", d.Line())
		}
		if t := toks[n]; t.Text != d.Val() || t.Line != d.Line() {
			return fmt.Errorf("corefile: internal error: lexer disagrees with caddyfile at line %d (a token at line %d)", d.Line(), t.Line)
		}
		n++
	}
	if n != len(toks) {
		return fmt.Errorf("corefile: internal error: lexer disagrees with caddyfile at line %d (a missing token)", toks[n].Line)
	}
	return nil
}

package corefile

import (
	"net/netip"
	"strings"

	"github.com/coredns/caddy/caddyfile"
)

// ForwardUpstreams returns the upstreams of the first `forward .` directive of block b of src, so that a
// plan can show what meshd's block forwards to now. It returns nil when the block is not Editable or has no
// such directive. The block is parsed on its own with CoreDNS's parser, so it sees what CoreDNS sees.
//
// That parser expands {$VAR} from the environment — meshd's environment here, which holds AWS credentials.
// Only upstreams that are addresses and stand in the text as written are returned, so nothing from the
// environment can reach a plan.
func ForwardUpstreams(src string, b ServerBlock) []string {
	if !b.Editable || b.Start < 0 || b.End > len(src) || b.Start >= b.End {
		return nil
	}
	tokens, ok := blockTokens(src[b.Start:b.End])
	if !ok {
		return nil
	}
	var out []string
	for _, u := range directiveArgs(tokens, "forward", 1) {
		if isAddress(u) && strings.Contains(src[b.Start:b.End], u) {
			out = append(out, u)
		}
	}
	return out
}

// blockTokens parses the text of one server block on its own with CoreDNS's parser and returns its tokens
// by directive. Imports are blanked, so that nothing is read from this machine's files.
func blockTokens(text string) (map[string][]caddyfile.Token, bool) {
	blocks, err := caddyfile.Parse("Corefile", strings.NewReader(stubAllImports(text)), nil)
	if err != nil || len(blocks) != 1 {
		return nil, false
	}
	return blocks[0].Tokens, true
}

// directiveArgs are the arguments of the first `name` directive of a block's tokens, after skip leading ones
// (forward's FROM zone): up to its own block or the next directive of the same name, whose tokens follow in
// the same list. With fewer than skip+1 arguments (or a FROM other than ".") it returns nil.
func directiveArgs(tokens map[string][]caddyfile.Token, name string, skip int) []string {
	toks := tokens[name]
	if len(toks) < 2+skip || toks[0].Text != name || (name == "forward" && toks[1].Text != ".") {
		return nil
	}
	var out []string
	for _, t := range toks[1+skip:] {
		if t.Text == "{" || t.Text == name {
			break
		}
		out = append(out, t.Text)
	}
	return out
}

// isAddress reports whether an upstream is an IP address, with an optional port and dns:// or tls://.
func isAddress(s string) bool {
	for _, scheme := range []string{"dns://", "tls://"} {
		s = strings.TrimPrefix(s, scheme)
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := netip.ParseAddrPort(s)
	return err == nil
}

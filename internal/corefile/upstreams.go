package corefile

import (
	"strings"

	"github.com/coredns/caddy/caddyfile"
)

// ForwardUpstreams returns the upstreams of the first `forward .` directive of block b of src, as
// written, so that a plan can show what meshd's block forwards to now. It returns nil when the block
// is not Editable or has no such directive.
//
// Added for the planner by the DNS work (not part of Merge): the block's text is parsed on its own with
// CoreDNS's parser, so it sees what CoreDNS sees.
func ForwardUpstreams(src string, b ServerBlock) []string {
	if !b.Editable || b.Start < 0 || b.End > len(src) || b.Start >= b.End {
		return nil
	}
	blocks, err := caddyfile.Parse("Corefile", strings.NewReader(src[b.Start:b.End]), nil)
	if err != nil || len(blocks) != 1 {
		return nil
	}
	toks := blocks[0].Tokens["forward"]
	// Tokens: forward FROM TO... [{ ... }]; a second forward directive follows the first's tokens.
	if len(toks) < 3 || toks[0].Text != "forward" || toks[1].Text != "." {
		return nil
	}
	var out []string
	for _, t := range toks[2:] {
		if t.Text == "{" || t.Text == "forward" {
			break
		}
		out = append(out, t.Text)
	}
	return out
}

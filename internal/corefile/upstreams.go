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
		if isAddress(t.Text) && strings.Contains(src[b.Start:b.End], t.Text) {
			out = append(out, t.Text)
		}
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

package corefile

import (
	"fmt"
	"slices"
	"strings"
)

// CacheRouteOf reads, from a NodeLocal DNSCache Corefile, how the cache reaches the cluster's CoreDNS:
// the bind and forward arguments of its block for zone (the cluster domain, "cluster.local" upstream).
// meshd's blocks for the other clusters' domains copy them, so that they listen where the cache listens
// and forward where it forwards its own cluster's names.
func CacheRouteOf(src, zone string) (CacheRoute, error) {
	p, err := parseText(src)
	if err != nil {
		return CacheRoute{}, err
	}
	zone = NormalizeZone(zone)
	for _, b := range p.serverBlocks() {
		if !slices.Contains(b.Zones, zone) {
			continue
		}
		if !b.Editable {
			return CacheRoute{}, fmt.Errorf("corefile: the block for %s at line %d is not written out in full (a snippet or no braces)", zone, b.Line)
		}
		tokens, ok := blockTokens(literalEnv(src[b.Start:b.End]))
		if !ok {
			return CacheRoute{}, fmt.Errorf("corefile: cannot read the block for %s at line %d", zone, b.Line)
		}
		r := CacheRoute{Bind: directiveArgs(tokens, "bind", 0), Forward: directiveArgs(tokens, "forward", 1)}
		if len(r.Forward) == 0 {
			return CacheRoute{}, fmt.Errorf("corefile: the block for %s at line %d has no `forward .`", zone, b.Line)
		}
		for _, a := range append(slices.Clone(r.Bind), r.Forward...) {
			if !isPlainArg(a) {
				return CacheRoute{}, fmt.Errorf("corefile: the block for %s at line %d has an argument meshd cannot copy", zone, b.Line)
			}
		}
		return r, nil
	}
	return CacheRoute{}, fmt.Errorf("corefile: no server block for %s", zone)
}

// stubAllImports blanks every import line of a single block's text, so that caddyfile.Parse reads no
// local file (the block is only read for its bind and forward arguments).
func stubAllImports(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "import" {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

// ServerImports returns the file arguments of the imports that stand between server blocks, at the top
// level of src: the files that bring in whole server blocks. k3s's Corefile imports
// /etc/coredns/custom/*.server and AKS's custom/*.server, both from the coredns-custom ConfigMap, which
// is where meshd puts its blocks in those clusters instead of editing the Corefile.
func ServerImports(src string) ([]string, error) {
	p, err := parseText(src)
	if err != nil {
		return nil, err
	}
	var spans [][2]int
	for _, b := range p.blocks {
		if b.snippet || b.first.replay {
			continue
		}
		end := len(p.lex.tokens)
		if b.close != nil && !b.close.replay {
			end = b.close.src
		}
		spans = append(spans, [2]int{b.first.src, end})
	}
	var out []string
	for i := range p.fileImports {
		inside := slices.ContainsFunc(spans, func(s [2]int) bool { return i > s[0] && i <= s[1] })
		if !inside {
			out = append(out, p.lex.tokens[i].Text)
		}
	}
	slices.Sort(out)
	return out, nil
}

package corefile

import (
	"slices"
	"strings"

	"github.com/coredns/caddy/caddyfile"
)

// KubernetesZones returns the zones the kubernetes plugin of src serves, normalised (see NormalizeZone),
// sorted and without repeats: the plugin's own zone arguments (`kubernetes cluster.local in-addr.arpa`),
// or, when it names none, the keys of its server block, as CoreDNS reads them. It reports whether the
// plugin is used at all. The Corefile is parsed with CoreDNS's own parser.
//
// As in ForwardUpstreams, a zone is returned only if it stands in the text as written: the parser expands
// {$VAR} from meshd's environment, which must not reach a diagnostic.
func KubernetesZones(src string) (zones []string, used bool, err error) {
	blocks, err := caddyfile.Parse("Corefile", strings.NewReader(src), nil)
	if err != nil {
		return nil, false, err
	}
	for _, sb := range blocks {
		toks := sb.Tokens["kubernetes"]
		// caddyfile groups the tokens of every use of a directive in a block; a use starts with the
		// directive's name outside braces, and its zones are the rest of that line up to a brace.
		depth := 0
		for i := 0; i < len(toks); i++ {
			t := toks[i]
			switch {
			case t.Text == "{":
				depth++
				continue
			case t.Text == "}":
				depth--
				continue
			case depth > 0 || t.Text != "kubernetes":
				continue
			}
			used = true
			var args []string
			for j := i + 1; j < len(toks) && toks[j].Line == t.Line && toks[j].Text != "{"; j++ {
				args = append(args, toks[j].Text)
			}
			if len(args) == 0 {
				args = sb.Keys
			}
			for _, a := range args {
				if strings.Contains(src, a) {
					zones = append(zones, NormalizeZone(a))
				}
			}
		}
	}
	slices.Sort(zones)
	return slices.Compact(zones), used, nil
}

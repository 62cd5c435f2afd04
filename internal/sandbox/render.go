package sandbox

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/coredns/caddy/caddyfile"
)

// RenderOptions say how the kubelet stand-in turns a cluster's ConfigMap Corefile into the file its CoreDNS
// reads: what a Pod's network namespace and its service account would otherwise provide.
type RenderOptions struct {
	// Bind are the loopback addresses this cluster's CoreDNS listens on (the first is its "kube-dns"
	// address); `bind` with them is put into every server block.
	Bind []string
	// Kubeconfig and Context point the kubernetes plugin at this cluster's API server.
	Kubeconfig, Context string
	// Reload replaces the reload plugin's arguments (default "2s"), so that a new ConfigMap is served
	// within seconds.
	Reload string
	// Mounts map a path prefix inside the CoreDNS Pod (k3s: "/etc/coredns/", where its ConfigMap volumes
	// are mounted) to the directory on this machine where the kubelet stand-in writes those files. Every
	// token that starts with a prefix, import patterns included, is rewritten (the longest prefix wins).
	Mounts map[string]string
}

// RenderCorefile rewrites a Corefile for a CoreDNS that runs on loopback beside others: every server block
// gets `bind <addresses>` (replacing any bind), the kubernetes plugin gets `kubeconfig <file> <context>`
// (replacing kubeconfig and endpoint lines), `reload` gets a short interval, and health, ready and prometheus
// listen on the first bind address (their default ports would collide between the clusters). Everything
// else, including the forward blocks meshd writes, is kept as tokens. It uses CoreDNS's own parser, so an
// input that CoreDNS would reject is an error; imports and snippets come out expanded.
func RenderCorefile(src string, o RenderOptions) (string, error) {
	if len(o.Bind) == 0 {
		return "", fmt.Errorf("render Corefile: no bind address")
	}
	if o.Reload == "" {
		o.Reload = "2s"
	}
	src, topImports, err := holdImports(src)
	if err != nil {
		return "", err
	}
	blocks, err := caddyfile.Parse("Corefile", strings.NewReader(src), nil)
	if err != nil {
		return "", err
	}
	if len(blocks) == 0 {
		return "", fmt.Errorf("render Corefile: no server blocks")
	}
	host := o.Bind[0]
	var b strings.Builder
	for i, sb := range blocks {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s {\n", strings.Join(quoteAll(sb.Keys), " "))
		fmt.Fprintf(&b, "    bind %s\n", strings.Join(o.Bind, " "))
		for _, inst := range instances(sb) {
			inst = withMounts(inst, o.Mounts)
			switch inst[0].Text {
			case "bind":
				continue
			case heldImport:
				inst[0].Text = "import"
			case "kubernetes":
				inst = withKubeconfig(inst, o.Kubeconfig, o.Context)
			case "reload":
				inst = []caddyfile.Token{inst[0], {Line: inst[0].Line, Text: o.Reload}}
			case "health":
				inst = withAddress(inst, net.JoinHostPort(host, "8080"))
			case "ready":
				inst = withAddress(inst, net.JoinHostPort(host, "8181"))
			case "prometheus":
				inst = withAddress(inst, net.JoinHostPort(host, "9153"))
			}
			writeInstance(&b, inst)
		}
		b.WriteString("}\n")
	}
	for _, args := range topImports {
		b.WriteString("\nimport")
		for _, t := range withMounts(args, o.Mounts) {
			b.WriteString(" " + quote(t.Text))
		}
		b.WriteString("\n")
	}
	out := b.String()
	check, _, err := holdImports(out) // what the imported files hold is CoreDNS's to check when it loads them
	if err == nil {
		_, err = caddyfile.Parse("Corefile", strings.NewReader(check), nil)
	}
	if err != nil {
		return "", fmt.Errorf("render Corefile: the result does not parse: %w", err)
	}
	return out, nil
}

// heldImport stands for a file import inside a server block while the Corefile is parsed (see holdImports).
const heldImport = "sandbox-held-import"

// holdImports keeps the imports of files from being expanded by caddyfile.Parse. CoreDNS expands them when it
// loads the Corefile, from files the kubelet stand-in keeps apart (k3s's coredns-custom volume), and its
// reload plugin notices when they change; expanded here, they would be frozen into the rendered file, and
// their tokens would carry their own files' line numbers, which instances orders by. An import inside a
// server block becomes the directive heldImport, written back as import in its place; one at the top level
// is cut out of the source and returned, to be written after the server blocks (where a server block comes
// from does not matter to CoreDNS). An import whose argument is no path (a snippet's name) is left to
// caddyfile, which expands it. Line numbers stay as they were.
func holdImports(src string) (string, [][]caddyfile.Token, error) {
	var toks []caddyfile.Token
	for d := caddyfile.NewDispenser("Corefile", strings.NewReader(src)); d.Next(); {
		toks = append(toks, caddyfile.Token{Line: d.Line(), Text: d.Val()})
	}
	srcLines := strings.Split(src, "\n")
	var top [][]caddyfile.Token
	depth := 0
	for i, t := range toks {
		switch t.Text {
		case "{":
			depth++
		case "}":
			depth--
		}
		lineStart := i == 0 || toks[i-1].Line != t.Line
		if t.Text != "import" || !lineStart || i+1 == len(toks) || toks[i+1].Line != t.Line ||
			!strings.ContainsAny(toks[i+1].Text, "/*?[") {
			continue
		}
		ln := t.Line - 1
		if ln < 0 || ln >= len(srcLines) || !strings.HasPrefix(strings.TrimSpace(srcLines[ln]), "import") {
			return "", nil, fmt.Errorf("render Corefile: line %d: cannot find its import", t.Line)
		}
		if depth > 0 {
			srcLines[ln] = strings.Replace(srcLines[ln], "import", heldImport, 1)
			continue
		}
		var args []caddyfile.Token
		for _, a := range toks[i+1:] {
			if a.Line != t.Line {
				break
			}
			args = append(args, a)
		}
		top = append(top, args)
		srcLines[ln] = ""
	}
	return strings.Join(srcLines, "\n"), top, nil
}

// withMounts rewrites the paths in a directive's tokens that lie under a mount (see RenderOptions.Mounts).
func withMounts(inst []caddyfile.Token, mounts map[string]string) []caddyfile.Token {
	if len(mounts) == 0 {
		return inst
	}
	out := slices.Clone(inst)
	for i, t := range out {
		best := ""
		for from := range mounts {
			if strings.HasPrefix(t.Text, from) && len(from) > len(best) {
				best = from
			}
		}
		if best != "" {
			out[i].Text = mounts[best] + strings.TrimPrefix(t.Text, best)
		}
	}
	return out
}

// instances splits a server block's directives into one token list per use of a directive, in the order
// they were written. caddyfile groups the tokens by directive name; a new use starts where the directive's
// name is the first token of a line outside braces.
func instances(sb caddyfile.ServerBlock) [][]caddyfile.Token {
	var all [][]caddyfile.Token
	for name, toks := range sb.Tokens {
		var cur []caddyfile.Token
		depth, line := 0, -1
		for _, t := range toks {
			if depth == 0 && t.Text == name && t.Line != line {
				if cur != nil {
					all = append(all, cur)
				}
				cur = nil
			}
			switch t.Text {
			case "{":
				depth++
			case "}":
				depth--
			}
			cur = append(cur, t)
			line = t.Line
		}
		if cur != nil {
			all = append(all, cur)
		}
	}
	slices.SortStableFunc(all, func(a, b []caddyfile.Token) int {
		if a[0].Line != b[0].Line {
			return a[0].Line - b[0].Line
		}
		return strings.Compare(a[0].Text, b[0].Text)
	})
	return all
}

// lines groups a directive's tokens by source line.
func lines(inst []caddyfile.Token) [][]caddyfile.Token {
	var out [][]caddyfile.Token
	for i, t := range inst {
		if i == 0 || t.Line != inst[i-1].Line {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], t)
	}
	return out
}

// withKubeconfig puts `kubeconfig file context` first in the kubernetes plugin's block (adding a block when
// it has none) and drops the lines that would point it elsewhere.
func withKubeconfig(inst []caddyfile.Token, file, context string) []caddyfile.Token {
	if file == "" {
		return inst
	}
	kc := []caddyfile.Token{{Text: "kubeconfig"}, {Text: file}, {Text: context}}
	open := slices.IndexFunc(inst, func(t caddyfile.Token) bool { return t.Text == "{" })
	if open < 0 {
		line := inst[len(inst)-1].Line
		out := append(slices.Clone(inst), caddyfile.Token{Line: line, Text: "{"})
		for _, t := range kc {
			t.Line = line + 1
			out = append(out, t)
		}
		return append(out, caddyfile.Token{Line: line + 2, Text: "}"})
	}
	// Renumber so that the new line sits on its own line right after the opening brace.
	out := slices.Clone(inst[:open+1])
	for _, t := range kc {
		t.Line = inst[open].Line + 1
		out = append(out, t)
	}
	depth := 1
	for _, ln := range lines(inst[open+1:]) {
		skip := depth == 1 && (ln[0].Text == "kubeconfig" || ln[0].Text == "endpoint")
		for _, t := range ln {
			switch t.Text {
			case "{":
				depth++
			case "}":
				depth--
			}
			if !skip {
				t.Line += 2 // past the inserted line, never on it
				out = append(out, t)
			}
		}
	}
	return out
}

// withAddress replaces a plugin's arguments before its block (or to the end of its line) with addr.
func withAddress(inst []caddyfile.Token, addr string) []caddyfile.Token {
	out := []caddyfile.Token{inst[0], {Line: inst[0].Line, Text: addr}}
	for i, t := range inst[1:] {
		if t.Text == "{" || t.Line != inst[0].Line {
			return append(out, inst[1+i:]...)
		}
	}
	return out
}

func writeInstance(b *strings.Builder, inst []caddyfile.Token) {
	depth := 1
	for _, ln := range lines(inst) {
		d := depth
		if ln[0].Text == "}" {
			d--
		}
		b.WriteString(strings.Repeat("    ", max(d, 1)))
		for i, t := range ln {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(quote(t.Text))
			switch t.Text {
			case "{":
				depth++
			case "}":
				depth--
			}
		}
		b.WriteByte('\n')
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = quote(s)
	}
	return out
}

// quote quotes a token that the caddyfile lexer would otherwise split or read differently (its only escape
// is \" inside quotes).
func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\r\n\"#") {
		return s
	}
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

package corefile

import (
	"strings"
	"testing"

	"github.com/coredns/caddy/caddyfile"
)

// Secret-looking tokens of the Corefiles below: a route53 access key pair and a tsig secret.
var secrets = []string{"AKIAEXAMPLESECRET", "wJalrXUtnFEMI/K7MDENG", "c2VjcmV0VFNJR1NFQ1JFVA==", "hunter2-tsig"}

// leakyCorefiles do not parse, and caddyfile's own error for each quotes a token near a secret or the
// secret itself.
var leakyCorefiles = []struct {
	name, src string
	line      string // "Corefile:N - " the error starts with
	directive string // the directive the error names, "" for none
	raw       string // a token caddyfile's raw error quotes, "" when it quotes none
}{
	{"route53 keys last in an unclosed block",
		".:53 {\n    errors\n    route53 example.org. { aws_access_key AKIAEXAMPLESECRET }\n    credentials wJalrXUtnFEMI/K7MDENG\n",
		"Corefile:4 - ", "", "wJalrXUtnFEMI/K7MDENG"},
	{"route53 key on the plugin's line, block unclosed",
		".:53 {\n    route53 example.org.:Z1 {\n        aws_access_key AKIAEXAMPLESECRET wJalrXUtnFEMI/K7MDENG\n",
		"Corefile:3 - ", "route53", ""},
	{"tsig secret last in an unclosed snippet",
		"(keys) {\n    tsig {\n        secret example.key. c2VjcmV0VFNJR1NFQ1JFVA==\n    }\n    secret hunter2-tsig\n",
		"Corefile:5 - ", "", "hunter2-tsig"},
	{"tsig secret, then a block closed once too often", // the route53 line is a server block's keys
		".:53 {\n    tsig {\n        secret example.key. c2VjcmV0VFNJR1NFQ1JFVA== }\n    }\n    route53 example.org. { aws_access_key AKIAEXAMPLESECRET wJalrXUtnFEMI/K7MDENG\n",
		"Corefile:5 - ", "", "wJalrXUtnFEMI/K7MDENG"},
	{"tsig secret in an unclosed tsig block",
		".:53 {\n    errors\n    tsig {\n        secret example.key. c2VjcmV0VFNJR1NFQ1JFVA==\n",
		"Corefile:4 - ", "tsig", ""},
	{"secret where a snippet's brace should be",
		"(creds)\nAKIAEXAMPLESECRET\n",
		"Corefile:2 - ", "", "AKIAEXAMPLESECRET"},
	{"secret in an unclosed server block after a file import",
		"import keys/*.conf\n.:53 {\n    route53 example.org. {\n        aws_access_key AKIAEXAMPLESECRET wJalrXUtnFEMI/K7MDENG\n    }\n    c2VjcmV0VFNJR1NFQ1JFVA==\n",
		"Corefile:6 - ", "", "c2VjcmV0VFNJR1NFQ1JFVA=="},
}

// TestErrorsQuoteNoToken: the errors of Validate, Blocks, Merge and Remove on a Corefile that does not
// parse name the line (and the plugin, when it is one of CoreDNS's) and never a token of the text.
func TestErrorsQuoteNoToken(t *testing.T) {
	desired := []Block{{Zone: "pingcap-2.svc.cluster.local", Upstreams: []string{"10.0.0.1"}}}
	for _, tc := range leakyCorefiles {
		t.Run(tc.name, func(t *testing.T) {
			if tc.raw != "" {
				// The case is a real one: caddyfile's error quotes the token.
				_, err := caddyfile.Parse("Corefile", strings.NewReader(tc.src), nil)
				if err == nil || !strings.Contains(err.Error(), tc.raw) {
					t.Fatalf("caddyfile.Parse: %v, want an error quoting %q", err, tc.raw)
				}
			}
			errs := map[string]error{"Validate": Validate(tc.src)}
			_, errs["Blocks"] = Blocks(tc.src)
			_, _, errs["Merge"] = Merge(tc.src, mesh, nil, desired)
			_, _, errs["Remove"] = Remove(tc.src, mesh, []string{"pingcap-2.svc.cluster.local"})
			for fn, err := range errs {
				if err == nil {
					t.Errorf("%s: no error", fn)
					continue
				}
				msg := err.Error()
				for _, s := range secrets {
					if strings.Contains(msg, s) {
						t.Errorf("%s: error %q holds %q", fn, msg, s)
					}
				}
				for _, tok := range lex(tc.src).tokens {
					if tok.Text != tc.directive && len(tok.Text) > 3 && strings.Contains(msg, tok.Text) {
						t.Errorf("%s: error %q quotes the token %q", fn, msg, tok.Text)
					}
				}
				if !strings.HasPrefix(msg, tc.line) {
					t.Errorf("%s: error %q does not start with %q", fn, msg, tc.line)
				}
				if want := "(in the " + tc.directive + " directive)"; tc.directive != "" && !strings.Contains(msg, want) {
					t.Errorf("%s: error %q does not name the directive %s", fn, msg, tc.directive)
				}
				if tc.directive == "" && strings.Contains(msg, "directive") {
					t.Errorf("%s: error %q names a directive", fn, msg)
				}
				if _, ok := err.(*SyntaxError); !ok {
					t.Errorf("%s: error %T, want *SyntaxError", fn, err)
				}
			}
		})
	}
}

func TestDirectiveAt(t *testing.T) {
	src := ".:53 {\n    errors\n    route53 example.org. {\n        aws_access_key AKIA x\n    }\n    AKIA y\n}\nb.local { forward . 1.1.1.1 {\n force_tcp\n}\n}\n"
	toks := lex(src).tokens
	for line, want := range map[int]string{1: "", 2: "errors", 3: "route53", 4: "route53", 5: "route53", 6: "", 7: "", 8: "forward", 9: "forward", 10: "forward", 11: ""} {
		if got := directiveAt(toks, line); got != want {
			t.Errorf("line %d: %q, want %q", line, got, want)
		}
	}
}

package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// stream is a go test -json run of two packages: one passes a test and skips two for the same missing
// part and one for another reason; the other fails a test and does not build a third.
const stream = `{"Action":"start","Package":"m/a"}
{"Action":"run","Package":"m/a","Test":"TestOK"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"pass","Package":"m/a","Test":"TestOK","Elapsed":0.1}
{"Action":"output","Package":"m/a","Test":"TestMoto","Output":"    binaries.go:151: moto not found\n"}
{"Action":"output","Package":"m/a","Test":"TestMoto","Output":"--- SKIP: TestMoto (0.00s)\n"}
{"Action":"skip","Package":"m/a","Test":"TestMoto"}
{"Action":"output","Package":"m/a","Test":"TestMoto2","Output":"    binaries.go:151: moto not found\n"}
{"Action":"skip","Package":"m/a","Test":"TestMoto2"}
{"Action":"output","Package":"m/a","Test":"TestDNS","Output":"    dns_test.go:9: cannot bind 127.0.0.11:53: permission denied\n"}
{"Action":"skip","Package":"m/a","Test":"TestDNS"}
{"Action":"output","Package":"m/a","Output":"ok  \tm/a\t0.2s\n"}
{"Action":"pass","Package":"m/a"}
{"Action":"output","Package":"m/b","Test":"TestBad","Output":"    b_test.go:3: got 1, want 2\n"}
{"Action":"fail","Package":"m/b","Test":"TestBad"}
{"Action":"output","Package":"m/b","Output":"FAIL\tm/b\t0.1s\n"}
{"Action":"fail","Package":"m/b"}
{"ImportPath":"m/c","Action":"build-output","Output":"c.go:1: syntax error\n"}
{"ImportPath":"m/c","Action":"build-fail"}
`

func TestReport(t *testing.T) {
	var out bytes.Buffer
	r, err := run(strings.NewReader(stream), &out)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String() + r.summary()
	for _, want := range []string{
		"ok  \tm/a\t0.2s\n",
		"    b_test.go:3: got 1, want 2\n", // a failed test's output
		"FAIL\tm/b\t0.1s\n",
		"c.go:1: syntax error\n",
		"tests: 1 passed, 1 failed, 3 skipped",
		"skipped 2: moto not found (m/a.TestMoto, +1 more)",
		"skipped 1: cannot bind 127.0.0.11:53: permission denied (m/a.TestDNS)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "=== RUN   TestOK") {
		t.Errorf("a passing test's output is printed:\n%s", got)
	}
	if r.failedPackages != 2 {
		t.Errorf("failed packages: %d, want 2 (m/b and m/c, which did not build)", r.failedPackages)
	}
}

// TestAllowedSkips: a skip whose reason the allowed expression matches is a known gap, not a missing part.
func TestAllowedSkips(t *testing.T) {
	r, err := run(strings.NewReader(stream), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if n := r.unexpectedSkips(regexp.MustCompile(`^moto not found$`), true); n != 1 {
		t.Errorf("unexpected skips with moto's allowed: %d, want 1 (the DNS one)", n)
	}
	if n := r.unexpectedSkips(nil, false); n != 3 {
		t.Errorf("unexpected skips without -allow-skip: %d, want 3", n)
	}
}

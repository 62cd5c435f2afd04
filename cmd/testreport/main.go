// Command testreport reads `go test -json` on stdin and prints what `go test` prints (a line a package, the
// output of each failed test), then a last line that counts the tests passed, failed and skipped, with the
// skips grouped by their reason: a test that skipped because a real part (moto, kube-apiserver, CoreDNS, a
// loopback DNS address) was missing no longer passes quietly. It exits 1 when a test or package failed, and,
// with -fail-on-skip (make test sets it when CI=true), when any test was skipped.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// report is what the events add up to.
type report struct {
	passed, failed int
	skips          map[string][]string // reason -> tests
	failedPackages int
}

func main() {
	failOnSkip := flag.Bool("fail-on-skip", false, "exit 1 when a test was skipped (CI: every real part must be there)")
	allowSkip := flag.String("allow-skip", "", "with -fail-on-skip: a regular expression of skip reasons that are known gaps, not missing parts (still counted and listed)")
	flag.Parse()
	allowed, err := regexp.Compile(*allowSkip)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport: -allow-skip:", err)
		os.Exit(1)
	}
	r, err := run(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}
	fmt.Println(r.summary())
	unexpected := r.unexpectedSkips(allowed, *allowSkip != "")
	if *failOnSkip && unexpected > 0 {
		fmt.Printf("FAIL: %d test(s) skipped, and CI=true asks for every real part to run\n", unexpected)
	}
	if r.failed > 0 || r.failedPackages > 0 || (*failOnSkip && unexpected > 0) {
		os.Exit(1)
	}
}

// unexpectedSkips counts the skipped tests whose reason the allowed expression does not match.
func (r *report) unexpectedSkips(allowed *regexp.Regexp, useAllowed bool) int {
	n := 0
	for reason, tests := range r.skips {
		if !useAllowed || !allowed.MatchString(reason) {
			n += len(tests)
		}
	}
	return n
}

// skipLine is the test's own message before "--- SKIP": "    file_test.go:12: reason".
var skipLine = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)

func run(in io.Reader, out io.Writer) (*report, error) {
	r := &report{skips: map[string][]string{}}
	outputs := map[string][]string{} // package/test -> its output lines, printed if it fails
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			fmt.Fprintln(out, string(line)) // a build error, or go vet's: pass it on as it is
			continue
		}
		key := e.Package + "\x00" + e.Test
		switch e.Action {
		case "build-output": // go 1.24+: compiler errors as events
			fmt.Fprint(out, e.Output)
		case "build-fail":
			r.failedPackages++
		case "output":
			if e.Test == "" {
				// The package's own lines: ok/FAIL/no test files, build failures, panics outside a test.
				if !strings.HasPrefix(e.Output, "PASS") && !strings.HasPrefix(e.Output, "=== ") &&
					!strings.HasPrefix(e.Output, "--- ") && !strings.HasPrefix(e.Output, "    ") {
					fmt.Fprint(out, e.Output)
				}
				continue
			}
			outputs[key] = append(outputs[key], e.Output)
		case "pass":
			if e.Test != "" {
				r.passed++
			}
			delete(outputs, key)
		case "fail":
			if e.Test == "" {
				r.failedPackages++
				continue
			}
			r.failed++
			for _, o := range outputs[key] {
				fmt.Fprint(out, o)
			}
			delete(outputs, key)
		case "skip":
			if e.Test != "" {
				reason := "no reason given"
				for _, o := range outputs[key] {
					if m := skipLine.FindStringSubmatch(strings.TrimRight(o, "\n")); m != nil {
						reason = m[1]
					}
				}
				r.skips[reason] = append(r.skips[reason], e.Package+"."+e.Test)
			}
			delete(outputs, key)
		}
	}
	return r, sc.Err()
}

func (r *report) summary() string {
	n := 0
	var reasons []string
	for reason, tests := range r.skips {
		n += len(tests)
		reasons = append(reasons, reason)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if a, b := len(r.skips[reasons[i]]), len(r.skips[reasons[j]]); a != b {
			return a > b
		}
		return reasons[i] < reasons[j]
	})
	s := fmt.Sprintf("tests: %d passed, %d failed, %d skipped", r.passed, r.failed, n)
	for _, reason := range reasons {
		tests := r.skips[reason]
		s += fmt.Sprintf("\n  skipped %d: %s (%s", len(tests), reason, short(tests[0]))
		if len(tests) > 1 {
			s += fmt.Sprintf(", +%d more", len(tests)-1)
		}
		s += ")"
	}
	return s
}

// short drops the module path from a package.Test name.
func short(test string) string {
	return strings.TrimPrefix(test, "github.com/meshd-io/meshd/")
}

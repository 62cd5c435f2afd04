package sandbox

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coredns/caddy/caddyfile"

	"github.com/meshd-io/meshd/internal/testenv"
)

// WaitLoaded waits until the CoreDNS d serves the Corefile now at d.Corefile, with the files it imports as they
// are now: until the configuration its reload plugin last logged ("Running configuration SHA512 = ...") is
// that one and the reload that started it is complete, so that the old configuration's servers have stopped.
// It lets a test query a name only once the configuration that serves it runs, instead of retrying queries
// that an older configuration would send to the machine's resolver. CoreDNS logs the SHA-512 of the JSON of
// its parsed Corefile, imports expanded (plugin/reload/reload.go); this parses the file with the same parser.
// Call it after the kubelet stand-in has written the change (the file or the imported file holds it).
func WaitLoaded(ctx context.Context, d *testenv.DNSServer, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		want, err := configurationHash(d.Corefile)
		running, settled := runningConfiguration(d.LogPath)
		if err == nil && settled && running == want {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("it runs configuration %.16s... (reload settled: %v), the file is %.16s...", running, settled, want)
			}
			return fmt.Errorf("CoreDNS at %s did not load %s within %s: %w", d.Addr, d.Corefile, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// configurationHash is what CoreDNS's reload plugin logs for the Corefile at path.
func configurationHash(path string) (string, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	blocks, err := caddyfile.Parse(path, bytes.NewReader(withoutEmptyImports(path, body)), nil)
	if err != nil {
		return "", err
	}
	j, err := json.Marshal(blocks)
	if err != nil {
		return "", err
	}
	sum := sha512.Sum512(j)
	return hex.EncodeToString(sum[:]), nil
}

// withoutEmptyImports blanks the lines that import a pattern matching no file, which add no tokens: parsed
// as they are, caddyfile would log a warning for each, at every poll of WaitLoaded. Blank lines keep the
// other tokens' line numbers, and so the hash.
func withoutEmptyImports(path string, body []byte) []byte {
	var toks []caddyfile.Token
	for d := caddyfile.NewDispenser(path, bytes.NewReader(body)); d.Next(); {
		toks = append(toks, caddyfile.Token{Line: d.Line(), Text: d.Val()})
	}
	lines := strings.Split(string(body), "\n")
	for i := 0; i+1 < len(toks); i++ {
		imp, arg := toks[i], toks[i+1]
		if imp.Text != "import" || (i > 0 && toks[i-1].Line == imp.Line) || arg.Line != imp.Line ||
			(i+2 < len(toks) && toks[i+2].Line == imp.Line) || !strings.ContainsAny(arg.Text, "*?[") {
			continue
		}
		pattern := arg.Text
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(filepath.Dir(path), pattern)
		}
		if m, err := filepath.Glob(pattern); err == nil && len(m) == 0 && imp.Line <= len(lines) {
			lines[imp.Line-1] = ""
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// runningConfiguration reads a CoreDNS log: the hash of the configuration it runs, and whether no reload is
// under way (caddy logs "Reloading" before it starts the new instance, the new one's reload plugin logs its
// hash, and "Reloading complete" follows once the old instance is stopped; a failed restart keeps the old).
func runningConfiguration(logPath string) (hash string, settled bool) {
	b, _ := os.ReadFile(logPath)
	const marker = "Running configuration SHA512 = "
	before, pending := "", false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasSuffix(line, "[INFO] Reloading"):
			before, pending = hash, true
		case strings.Contains(line, marker):
			hash = strings.TrimSpace(line[strings.Index(line, marker)+len(marker):])
		case strings.HasSuffix(line, "[INFO] Reloading complete"):
			pending = false
		case strings.Contains(line, "Restart failed") || strings.Contains(line, "reload failed"):
			hash, pending = before, false
		}
	}
	return hash, hash != "" && !pending
}

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshd-io/meshd/internal/state"
)

// TestVersionIsStamped: meshd --version prints the version the build stamped with -X main.version, and the
// Makefile stamps it in both builds of meshd (make build and make image).
func TestVersionIsStamped(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "meshd")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("meshd --version: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("meshd v9.8.7-test\nstate format version %d\n", state.FormatVersion); string(out) != want {
		t.Errorf("meshd --version printed %q, want %q", out, want)
	}

	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	builds := 0
	for _, line := range strings.Split(string(makefile), "\n") {
		if strings.Contains(line, "build") && strings.Contains(line, "./cmd/meshd") && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			builds++
			if !strings.Contains(line, "-X main.version=$(VERSION)") {
				t.Errorf("the Makefile builds meshd without stamping its version: %s", strings.TrimSpace(line))
			}
		}
	}
	if builds != 2 {
		t.Errorf("%d builds of ./cmd/meshd in the Makefile, want 2 (build, image)", builds)
	}
}

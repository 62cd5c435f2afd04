package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMkimageBothArchitectures runs mkimage as make image does, with a static binary for linux/amd64 and one
// for linux/arm64: it writes an image index, checks each platform's image (mkimage fails otherwise), prints
// a line per platform with its size, writes the archive, and --check reads the layout back.
func TestMkimageBothArchitectures(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() { println(\"hello\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, arch := range []string{"amd64", "arm64"} {
		bin := filepath.Join(dir, arch, "meshd")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, src)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GO111MODULE=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", arch, err, out)
		}
		args = append(args, "--binary", bin)
	}
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "image")
	var stdout strings.Builder
	if err := run(append(args, "--ca-certs", ca, "--ref", "ghcr.io/meshd-io/meshd:v1", "--out", out, "--archive", out+".tar"), &stdout); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"image index sha256:", "  linux/amd64: manifest sha256:", "  linux/arm64: manifest sha256:", "user 65532:65532", "archive " + out + ".tar"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("mkimage printed no %q:\n%s", want, stdout.String())
		}
	}
	if _, err := os.Stat(out + ".tar"); err != nil {
		t.Error(err)
	}
	stdout.Reset()
	if err := run([]string{"--check", out}, &stdout); err != nil || strings.Count(stdout.String(), "manifest sha256:") != 2 {
		t.Errorf("mkimage --check: %v\n%s", err, stdout.String())
	}
	// One binary still makes a single-platform layout (IMAGE_ARCHS=arm64).
	stdout.Reset()
	if err := run([]string{args[3], "--ca-certs", ca, "--out", filepath.Join(dir, "one")}, &stdout); err == nil {
		t.Errorf("a bare path was taken as a flag: %s", stdout.String())
	}
	if err := run([]string{"--binary", args[3], "--ca-certs", ca, "--out", filepath.Join(dir, "one")}, &stdout); err != nil ||
		!strings.Contains(stdout.String(), ", manifest sha256:") || !strings.Contains(stdout.String(), "linux/arm64") {
		t.Errorf("one binary: %v\n%s", err, stdout.String())
	}
}

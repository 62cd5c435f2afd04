package ociimage_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/meshd-io/meshd/internal/ociimage"
)

var (
	tinyOnce sync.Once
	tinyPath string
	tinyErr  error
	tinyDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if tinyDir != "" {
		_ = os.RemoveAll(tinyDir)
	}
	os.Exit(code)
}

// tinyBinary builds, once per test run, a small static Go program (CGO_ENABLED=0) standing in for meshd.
func tinyBinary(t *testing.T) string {
	t.Helper()
	tinyOnce.Do(func() { tinyPath, tinyErr = buildTiny() })
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyPath
}

func buildTiny() (string, error) {
	dir, err := os.MkdirTemp("", "ociimage-test-")
	if err != nil {
		return "", err
	}
	tinyDir = dir
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() { println(\"hello\") }\n"), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tiny")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GO111MODULE=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

func caBundle(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.crt")
	pem := "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
	if err := os.WriteFile(p, []byte(pem), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBuildAndCheck builds an image of a tiny static binary and reads it back: entrypoint, non-root user,
// the binary executable and static, the CA bundle, no shell, every digest matching its blob, and the same
// inputs giving the same digest.
func TestBuildAndCheck(t *testing.T) {
	bin, ca := tinyBinary(t), caBundle(t)
	out := filepath.Join(t.TempDir(), "image")
	opts := ociimage.Options{Binary: bin, CACerts: ca, Ref: "ghcr.io/meshd-io/meshd:latest"}
	desc, err := ociimage.Build(out, opts)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ociimage.Check(out)
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config.Config
	if strings.Join(c.Entrypoint, " ") != "/meshd" || c.User != "65532:65532" || img.Config.OS != "linux" {
		t.Errorf("config: entrypoint %q user %q os %q", c.Entrypoint, c.User, img.Config.OS)
	}
	if h := img.Files["meshd"]; h == nil || h.Mode&0o755 != 0o755 {
		t.Errorf("/meshd: %+v", h)
	}
	for name := range img.Files {
		if strings.HasPrefix(name, "bin") || strings.HasPrefix(name, "usr") {
			t.Errorf("the layer holds %s; want only /meshd and the CA bundle", name)
		}
	}
	if len(img.Files) != 5 {
		t.Errorf("layer entries: %v", img.Files)
	}
	m := img.Index.Manifests[0]
	if m.Digest != desc.Digest || m.Annotations["org.opencontainers.image.ref.name"] != "latest" ||
		m.Annotations["io.containerd.image.name"] != "ghcr.io/meshd-io/meshd:latest" {
		t.Errorf("index.json: %+v", m)
	}

	// Reproducible: the same inputs, the same manifest digest.
	again, err := ociimage.Build(filepath.Join(t.TempDir(), "again"), opts)
	if err != nil || again.Digest != desc.Digest {
		t.Errorf("rebuilt digest %s, first %s (%v)", again.Digest, desc.Digest, err)
	}

	// An archive of the layout holds the same files.
	archive := filepath.Join(t.TempDir(), "image.tar")
	if err := ociimage.WriteArchive(out, archive); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command("tar", "-tf", archive).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"oci-layout", "index.json", "blobs/sha256/" + strings.TrimPrefix(desc.Digest, "sha256:")} {
		if !strings.Contains(string(list), want+"\n") {
			t.Errorf("archive lacks %s:\n%s", want, list)
		}
	}

	// Check catches a blob whose content no longer matches its digest.
	blob := filepath.Join(out, "blobs", "sha256", strings.TrimPrefix(img.Manifest.Config.Digest, "sha256:"))
	data, _ := os.ReadFile(blob)
	var cfg map[string]any
	_ = json.Unmarshal(data, &cfg)
	cfg["architecture"] = "other"
	data, _ = json.Marshal(cfg)
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ociimage.Check(out); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Errorf("a tampered config blob passed the check: %v", err)
	}
}

// TestRefusals: a dynamically linked binary, a root user, and a missing CA bundle are refused.
func TestRefusals(t *testing.T) {
	ca := caBundle(t)
	// The build machine's own tools are dynamically linked (PT_INTERP).
	dynamic, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls")
	}
	if _, err := ociimage.Build(t.TempDir(), ociimage.Options{Binary: dynamic, CACerts: ca}); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("a dynamic binary: %v", err)
	}
	bin := tinyBinary(t)
	dir := t.TempDir()
	if _, err := ociimage.Build(dir, ociimage.Options{Binary: bin, CACerts: ca, User: "0:0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ociimage.Check(dir); err == nil || !strings.Contains(err.Error(), "root") {
		t.Errorf("a root user passed the check: %v", err)
	}
	if _, err := ociimage.Build(t.TempDir(), ociimage.Options{Binary: bin, CACerts: filepath.Join(dir, "none")}); err == nil {
		t.Error("built without CA certificates")
	}
}

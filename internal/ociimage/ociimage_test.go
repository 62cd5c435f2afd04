package ociimage_test

import (
	"crypto/sha256"
	"encoding/hex"
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
	tinyMu   sync.Mutex
	tinyPath = map[string]string{} // by GOARCH
	tinyDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if tinyDir != "" {
		_ = os.RemoveAll(tinyDir)
	}
	os.Exit(code)
}

// tinyBinary builds, once per test run, a small static Go program (CGO_ENABLED=0) for linux/amd64 standing in
// for meshd.
func tinyBinary(t *testing.T) string { return tinyBinaryFor(t, "amd64") }

// tinyBinaryFor is tinyBinary for linux/arch.
func tinyBinaryFor(t *testing.T, arch string) string {
	t.Helper()
	tinyMu.Lock()
	defer tinyMu.Unlock()
	if p, ok := tinyPath[arch]; ok {
		return p
	}
	p, err := buildTiny(arch)
	if err != nil {
		t.Fatal(err)
	}
	tinyPath[arch] = p
	return p
}

func buildTiny(arch string) (string, error) {
	if tinyDir == "" {
		dir, err := os.MkdirTemp("", "ociimage-test-")
		if err != nil {
			return "", err
		}
		tinyDir = dir
	}
	src := filepath.Join(tinyDir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() { println(\"hello\") }\n"), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(tinyDir, "tiny-"+arch)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GO111MODULE=off")
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

// TestBuildIndexForEveryArch: with a binary per architecture (amd64 and arm64, as make image builds them) the
// layout tags an image index with one image per platform, and each passes the checks TestBuildAndCheck makes
// of one: its entrypoint static and of its platform's architecture, non-root, the CA bundle, no shell, every
// digest matching. A platform named twice, or an index entry whose platform is not its image's, is refused.
func TestBuildIndexForEveryArch(t *testing.T) {
	archs := []string{"amd64", "arm64"}
	var bins []string
	for _, a := range archs {
		bins = append(bins, tinyBinaryFor(t, a))
	}
	ca := caBundle(t)
	out := filepath.Join(t.TempDir(), "image")
	opts := ociimage.Options{Binaries: bins, CACerts: ca, Ref: "ghcr.io/meshd-io/meshd:v1"}
	desc, err := ociimage.Build(out, opts)
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != ociimage.MediaTypeIndex {
		t.Fatalf("tagged descriptor %s, want an image index", desc.MediaType)
	}
	imgs, err := ociimage.CheckAll(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != len(archs) {
		t.Fatalf("%d images, want %d", len(imgs), len(archs))
	}
	for i, img := range imgs {
		c := img.Config.Config
		if img.Config.Architecture != archs[i] || img.Descriptor.Platform.Architecture != archs[i] || img.Config.OS != "linux" ||
			strings.Join(c.Entrypoint, " ") != "/meshd" || c.User != "65532:65532" {
			t.Errorf("image %d: %s/%s (index: %+v), entrypoint %q, user %q", i, img.Config.OS, img.Config.Architecture, img.Descriptor.Platform, c.Entrypoint, c.User)
		}
		if h := img.Files[ociimage.CACertsPath]; h == nil || len(img.Files) != 5 {
			t.Errorf("%s: layer entries %v", archs[i], img.Files)
		}
		t.Logf("linux/%s: %d bytes (layer %d)", archs[i], img.Size(), img.Manifest.Layers[0].Size)
	}
	if top := imgs[0].Index.Manifests[0]; top.Digest != desc.Digest || top.Annotations["org.opencontainers.image.ref.name"] != "v1" ||
		top.Annotations["io.containerd.image.name"] != "ghcr.io/meshd-io/meshd:v1" {
		t.Errorf("index.json: %+v", top)
	}
	if _, err := ociimage.Check(out); err == nil || !strings.Contains(err.Error(), "one platform") {
		t.Errorf("Check of a two-platform layout: %v", err)
	}
	again, err := ociimage.Build(filepath.Join(t.TempDir(), "again"), opts)
	if err != nil || again.Digest != desc.Digest {
		t.Errorf("rebuilt index digest %s, first %s (%v)", again.Digest, desc.Digest, err)
	}

	if _, err := ociimage.Build(t.TempDir(), ociimage.Options{Binaries: []string{bins[0], bins[0]}, CACerts: ca}); err == nil || !strings.Contains(err.Error(), "one binary per architecture") {
		t.Errorf("two amd64 binaries: %v", err)
	}

	// An index that says arm64 for the amd64 image (its digest rewritten to match) fails the check.
	idxPath := filepath.Join(out, "blobs", "sha256", strings.TrimPrefix(desc.Digest, "sha256:"))
	data, err := os.ReadFile(idxPath)
	if err != nil {
		t.Fatal(err)
	}
	var idx ociimage.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatal(err)
	}
	idx.Manifests = idx.Manifests[:1]
	idx.Manifests[0].Platform.Architecture = "arm64"
	data, _ = json.Marshal(idx)
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(out, "blobs", "sha256", hexSum), data, 0o644); err != nil {
		t.Fatal(err)
	}
	top, _ := json.Marshal(ociimage.Index{SchemaVersion: 2, MediaType: ociimage.MediaTypeIndex, Manifests: []ociimage.Descriptor{
		{MediaType: ociimage.MediaTypeIndex, Digest: "sha256:" + hexSum, Size: int64(len(data))}}})
	if err := os.WriteFile(filepath.Join(out, "index.json"), top, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ociimage.CheckAll(out); err == nil || !strings.Contains(err.Error(), "platform") {
		t.Errorf("an index naming the wrong platform passed the check: %v", err)
	}
}

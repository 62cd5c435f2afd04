// Package ociimage writes meshd's container image as an OCI image layout, without a Docker daemon or any
// base image: one layer holding the static binary and the CA certificates AWS's TLS needs, and a config
// that runs the binary as a non-root user. With several binaries (one per architecture: linux/amd64 and
// linux/arm64 for Graviton) the layout holds one such image per platform under an OCI image index, which a
// registry serves as one multi-platform name. CheckAll (and Check, for one platform) reads a layout back and
// verifies it, for make image and the tests.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Media types of the OCI image specification.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// CACertsPath is where the layer puts the CA bundle: the first place Go's crypto/x509 looks on Linux.
const CACertsPath = "etc/ssl/certs/ca-certificates.crt"

// Options describe the image.
type Options struct {
	// Binary is the static executable to run; it goes in the image as /Name.
	Binary string
	// Binaries, when set instead of Binary, are static executables of different architectures: each makes the
	// image of its platform (linux/<its ELF machine>), and the layout is tagged with an image index of them.
	Binaries []string
	// Name is the binary's name in the image root (default "meshd"); the entrypoint is ["/" + Name].
	Name string
	// CACerts is a PEM bundle of CA certificates (e.g. the build machine's /etc/ssl/certs/ca-certificates.crt).
	CACerts string
	// Ref is the image reference the layout is tagged with (e.g. ghcr.io/meshd-io/meshd:latest).
	Ref string
	// User is the image config's User (default "65532:65532", non-root; the image has no /etc/passwd).
	User string
	// Arch is the image's architecture (default: the binary's, from its ELF header). Only with Binary.
	Arch string
	// Created is the image's creation time and every file's mtime (default: the Unix epoch), so that the
	// same inputs give the same digests.
	Created time.Time
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *Platform         `json:"platform,omitempty"`
}

// Platform is a descriptor's platform.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Manifest is an OCI image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Index is an OCI image index (the layout's index.json).
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// Config is the part of the OCI image config meshd's image uses.
type Config struct {
	Created      string `json:"created"`
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		User       string   `json:"User"`
		Entrypoint []string `json:"Entrypoint"`
		Env        []string `json:"Env,omitempty"`
		WorkingDir string   `json:"WorkingDir,omitempty"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []struct {
		Created   string `json:"created"`
		CreatedBy string `json:"created_by"`
	} `json:"history,omitempty"`
}

var elfArch = map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64", elf.EM_386: "386", elf.EM_ARM: "arm",
	elf.EM_PPC64: "ppc64le", elf.EM_S390: "s390x", elf.EM_RISCV: "riscv64"}

// CheckStatic returns the architecture of a Linux executable and an error unless it is static: an ELF
// executable with no program interpreter (PT_INTERP) and no shared libraries to load, so it runs on an empty
// root filesystem.
func CheckStatic(file string) (string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return "", fmt.Errorf("%s: not a Linux executable: %w", file, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return "", fmt.Errorf("%s: ELF type %s, not an executable", file, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked (it has a program interpreter): build it with CGO_ENABLED=0", file)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return "", fmt.Errorf("%s needs shared libraries %v: build it with CGO_ENABLED=0", file, libs)
	}
	arch, ok := elfArch[f.Machine]
	if !ok {
		return "", fmt.Errorf("%s: unknown machine %s", file, f.Machine)
	}
	return arch, nil
}

// Build writes the image as an OCI image layout in dir (created, or emptied of an earlier layout) and
// returns the descriptor index.json tags: the manifest's for one binary, the image index's for Binaries.
func Build(dir string, o Options) (Descriptor, error) {
	if o.Name == "" {
		o.Name = "meshd"
	}
	if o.User == "" {
		o.User = "65532:65532"
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0)
	}
	o.Created = o.Created.UTC()
	binaries := o.Binaries
	switch {
	case o.Binary != "" && len(binaries) > 0:
		return Descriptor{}, errors.New("ociimage: Binary and Binaries are exclusive")
	case o.Binary != "":
		binaries = []string{o.Binary}
	case len(binaries) == 0:
		return Descriptor{}, errors.New("ociimage: no binary")
	case o.Arch != "":
		return Descriptor{}, errors.New("ociimage: Arch is taken from each of Binaries")
	}
	certs, err := os.ReadFile(o.CACerts)
	if err != nil {
		return Descriptor{}, fmt.Errorf("CA certificates: %w", err)
	}
	if !bytes.Contains(certs, []byte("-----BEGIN CERTIFICATE-----")) {
		return Descriptor{}, fmt.Errorf("CA certificates: %s holds no PEM certificate", o.CACerts)
	}

	if err := os.RemoveAll(filepath.Join(dir, "blobs")); err != nil {
		return Descriptor{}, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return Descriptor{}, err
	}
	var manifests []Descriptor
	seen := map[string]string{}
	for _, bin := range binaries {
		one := o
		one.Binary = bin
		desc, err := buildImage(dir, one, certs)
		if err != nil {
			return Descriptor{}, err
		}
		if other, dup := seen[desc.Platform.Architecture]; dup {
			return Descriptor{}, fmt.Errorf("%s and %s are both linux/%s: one binary per architecture", other, bin, desc.Platform.Architecture)
		}
		seen[desc.Platform.Architecture] = bin
		manifests = append(manifests, desc)
	}
	top := manifests[0]
	if len(o.Binaries) > 0 {
		idx, err := json.Marshal(Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: manifests})
		if err != nil {
			return Descriptor{}, err
		}
		if top, err = writeBlob(dir, MediaTypeIndex, idx); err != nil {
			return Descriptor{}, err
		}
	}
	if o.Ref != "" {
		top.Annotations = map[string]string{
			// The tag, as skopeo's oci:DIR:TAG and crane read it; the full name, as containerd reads it.
			"org.opencontainers.image.ref.name": refTag(o.Ref),
			"io.containerd.image.name":          o.Ref,
		}
	}
	idx, err := json.MarshalIndent(Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{top}}, "", "  ")
	if err != nil {
		return Descriptor{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), append(idx, '\n'), 0o644); err != nil {
		return Descriptor{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`+"\n"), 0o644); err != nil {
		return Descriptor{}, err
	}
	return top, nil
}

// buildImage writes the blobs of o.Binary's image (layer, config, manifest) into dir and returns the
// manifest's descriptor with its platform.
func buildImage(dir string, o Options, certs []byte) (Descriptor, error) {
	arch, err := CheckStatic(o.Binary)
	if err != nil {
		return Descriptor{}, err
	}
	if o.Arch == "" {
		o.Arch = arch
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return Descriptor{}, err
	}
	layer, diffID, err := buildLayer(o, bin, certs)
	if err != nil {
		return Descriptor{}, err
	}
	var cfg Config
	cfg.Created = o.Created.Format(time.RFC3339)
	cfg.Architecture, cfg.OS = o.Arch, "linux"
	cfg.Config.User = o.User
	cfg.Config.Entrypoint = []string{"/" + o.Name}
	cfg.Config.Env = []string{"SSL_CERT_FILE=/" + CACertsPath}
	cfg.Config.WorkingDir = "/"
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []string{diffID}
	cfg.History = append(cfg.History, struct {
		Created   string `json:"created"`
		CreatedBy string `json:"created_by"`
	}{cfg.Created, "meshd ociimage: /" + o.Name + " and /" + CACertsPath})
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return Descriptor{}, err
	}
	layerDesc, err := writeBlob(dir, MediaTypeLayer, layer)
	if err != nil {
		return Descriptor{}, err
	}
	cfgDesc, err := writeBlob(dir, MediaTypeConfig, cfgJSON)
	if err != nil {
		return Descriptor{}, err
	}
	man, err := json.Marshal(Manifest{SchemaVersion: 2, MediaType: MediaTypeManifest, Config: cfgDesc, Layers: []Descriptor{layerDesc}})
	if err != nil {
		return Descriptor{}, err
	}
	manDesc, err := writeBlob(dir, MediaTypeManifest, man)
	if err != nil {
		return Descriptor{}, err
	}
	manDesc.Platform = &Platform{Architecture: o.Arch, OS: "linux"}
	return manDesc, nil
}

// refTag is the tag of an image reference ("latest" when it has none).
func refTag(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return "latest"
}

// buildLayer returns the gzip-compressed layer tar and the digest of the uncompressed tar (its diff ID).
func buildLayer(o Options, bin, certs []byte) ([]byte, string, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	entry := func(name string, mode int64, data []byte) error {
		h := &tar.Header{Name: name, Mode: mode, ModTime: o.Created, Format: tar.FormatPAX, Uname: "root", Gname: "root"}
		if strings.HasSuffix(name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, e := range []struct {
		name string
		mode int64
		data []byte
	}{
		{"etc/", 0o755, nil}, {"etc/ssl/", 0o755, nil}, {"etc/ssl/certs/", 0o755, nil},
		{CACertsPath, 0o644, certs},
		{o.Name, 0o755, bin},
	} {
		if err := entry(e.name, e.mode, e.data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	// No name or mtime in the gzip header: the same layer gives the same digest.
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), digest(raw.Bytes()), nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func writeBlob(dir, mediaType string, data []byte) (Descriptor, error) {
	d := Descriptor{MediaType: mediaType, Digest: digest(data), Size: int64(len(data))}
	return d, os.WriteFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d.Digest, "sha256:")), data, 0o644)
}

// Image is one platform's image of a layout read back by Check or CheckAll.
type Image struct {
	// Index is the layout's index.json.
	Index Index
	// Descriptor is the image's manifest descriptor, with its platform: index.json's entry for a
	// single-platform layout, an entry of the image index it tags otherwise.
	Descriptor Descriptor
	Manifest   Manifest
	Config     Config
	// Files are the layer's entries by path (without a leading "/"), with their headers.
	Files map[string]*tar.Header
	// Entrypoint is the content of the entrypoint's file.
	Entrypoint []byte
}

// Check reads the OCI layout in dir, which must hold the image of one platform, and verifies it as CheckAll
// does.
func Check(dir string) (*Image, error) {
	imgs, err := CheckAll(dir)
	if err != nil {
		return nil, err
	}
	if len(imgs) != 1 {
		return nil, fmt.Errorf("index.json: want the image of one platform, have %d", len(imgs))
	}
	return imgs[0], nil
}

// Size is what a node pulls for the image: its manifest, config and layer blobs.
func (img *Image) Size() int64 {
	n := img.Descriptor.Size + img.Manifest.Config.Size
	for _, l := range img.Manifest.Layers {
		n += l.Size
	}
	return n
}

// CheckAll reads the OCI layout in dir and verifies the image of every platform it tags (one manifest, or an
// image index of one manifest per platform, each platform once): every digest and size matches its blob, the
// config's diff ID matches the uncompressed layer, the entrypoint is a static executable file in the layer of
// the architecture the config and the index's platform name, the user is not root, the CA bundle is there
// and there is no shell.
func CheckAll(dir string) ([]*Image, error) {
	var index Index
	layout, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if err != nil {
		return nil, err
	}
	var l struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(layout, &l); err != nil || l.Version != "1.0.0" {
		return nil, fmt.Errorf("oci-layout: %q is not image layout 1.0.0", layout)
	}
	idx, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(idx, &index); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	if len(index.Manifests) != 1 {
		return nil, fmt.Errorf("index.json: want one image manifest or image index, have %+v", index.Manifests)
	}
	descs := index.Manifests
	switch top := index.Manifests[0]; top.MediaType {
	case MediaTypeManifest:
	case MediaTypeIndex:
		data, err := readBlob(dir, top)
		if err != nil {
			return nil, err
		}
		var nested Index
		if err := json.Unmarshal(data, &nested); err != nil || nested.MediaType != MediaTypeIndex {
			return nil, fmt.Errorf("image index %s: not an OCI image index (%v)", top.Digest, err)
		}
		if descs = nested.Manifests; len(descs) == 0 {
			return nil, fmt.Errorf("image index %s: no manifest", top.Digest)
		}
	default:
		return nil, fmt.Errorf("index.json: %s is neither an image manifest nor an image index", top.MediaType)
	}
	var imgs []*Image
	seen := map[string]bool{}
	for _, d := range descs {
		if d.MediaType != MediaTypeManifest || d.Platform == nil {
			return nil, fmt.Errorf("manifest %s: want an image manifest with its platform, have %s %+v", d.Digest, d.MediaType, d.Platform)
		}
		p := d.Platform.OS + "/" + d.Platform.Architecture
		if seen[p] {
			return nil, fmt.Errorf("two images for %s", p)
		}
		seen[p] = true
		img, err := checkImage(dir, d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		img.Index = index
		imgs = append(imgs, img)
	}
	return imgs, nil
}

// checkImage reads and verifies the image of the manifest d names.
func checkImage(dir string, d Descriptor) (*Image, error) {
	img := &Image{Descriptor: d, Files: map[string]*tar.Header{}}
	man, err := readBlob(dir, d)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(man, &img.Manifest); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if img.Manifest.Config.MediaType != MediaTypeConfig || len(img.Manifest.Layers) != 1 || img.Manifest.Layers[0].MediaType != MediaTypeLayer {
		return nil, fmt.Errorf("manifest: want an OCI config and one tar+gzip layer, have %s", man)
	}
	cfg, err := readBlob(dir, img.Manifest.Config)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(cfg, &img.Config); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	layer, err := readBlob(dir, img.Manifest.Layers[0])
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	if ids := img.Config.RootFS.DiffIDs; len(ids) != 1 || ids[0] != digest(raw) {
		return nil, fmt.Errorf("config: diff IDs %v do not match the layer's %s", ids, digest(raw))
	}

	c := img.Config.Config
	if len(c.Entrypoint) != 1 || !path.IsAbs(c.Entrypoint[0]) {
		return nil, fmt.Errorf("config: entrypoint %q is not one absolute path", c.Entrypoint)
	}
	entry := strings.TrimPrefix(c.Entrypoint[0], "/")
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("layer: %w", err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		img.Files[name] = h
		if name == entry {
			if img.Entrypoint, err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		}
	}
	if u := c.User; u == "" || u == "0" || u == "root" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
		return nil, fmt.Errorf("config: user %q is root", u)
	}
	for _, sh := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh"} {
		if _, ok := img.Files[sh]; ok {
			return nil, fmt.Errorf("layer: has a shell, /%s", sh)
		}
	}
	if h, ok := img.Files[CACertsPath]; !ok || h.Size == 0 {
		return nil, fmt.Errorf("layer: no CA certificates at /%s", CACertsPath)
	}
	h, ok := img.Files[entry]
	if !ok || h.Typeflag != tar.TypeReg || h.Mode&0o111 != 0o111 {
		return nil, fmt.Errorf("layer: the entrypoint /%s is not an executable file", entry)
	}
	tmp, err := os.CreateTemp("", "ociimage-entrypoint-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(img.Entrypoint)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	arch, err := CheckStatic(tmp.Name())
	if err != nil {
		return nil, fmt.Errorf("layer: the entrypoint /%s: %w", entry, err)
	}
	if arch != img.Config.Architecture || img.Config.OS != "linux" {
		return nil, fmt.Errorf("config: platform %s/%s, the entrypoint is linux/%s", img.Config.OS, img.Config.Architecture, arch)
	}
	if p := d.Platform; p.OS != img.Config.OS || p.Architecture != img.Config.Architecture {
		return nil, fmt.Errorf("the index names platform %s/%s, the config %s/%s", p.OS, p.Architecture, img.Config.OS, img.Config.Architecture)
	}
	return img, nil
}

func readBlob(dir string, d Descriptor) ([]byte, error) {
	hexDigest, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok || len(hexDigest) != 64 {
		return nil, fmt.Errorf("descriptor %s: not a sha256 digest", d.Digest)
	}
	data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", hexDigest))
	if err != nil {
		return nil, err
	}
	if got := digest(data); got != d.Digest || int64(len(data)) != d.Size {
		return nil, fmt.Errorf("blob %s: content has digest %s and size %d, the descriptor says size %d", d.Digest, got, len(data), d.Size)
	}
	return data, nil
}

// WriteArchive tars the layout in dir into file: an OCI archive, as skopeo's oci-archive: transport and
// crane push read it.
func WriteArchive(dir, file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname = filepath.ToSlash(rel), time.Unix(0, 0), 0, 0, "", ""
		h.AccessTime, h.ChangeTime, h.Format = time.Time{}, time.Time{}, tar.FormatPAX
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if cerr := tw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

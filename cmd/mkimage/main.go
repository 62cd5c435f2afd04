// Command mkimage writes meshd's container image as an OCI image layout (and optionally an OCI archive)
// from static binaries, with no Docker daemon and no base image, then checks what it wrote. make image runs it
// with one binary per architecture (linux/amd64 and linux/arm64): the layout's tag then names an image index,
// which a registry serves as one multi-platform image.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/meshd-io/meshd/internal/ociimage"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

// run is mkimage with its arguments; it prints what it wrote, each platform's image with its size.
func run(args []string, stdout io.Writer) error {
	var o ociimage.Options
	var out, archive, check string
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.Func("binary", "a static binary (CGO_ENABLED=0) to run; repeat it, one per architecture, for a multi-platform image (default bin/image/meshd)", func(v string) error {
		o.Binaries = append(o.Binaries, v)
		return nil
	})
	fs.StringVar(&o.Name, "name", "meshd", "the binary's name in the image root; the entrypoint is /NAME")
	fs.StringVar(&o.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle of CA certificates to put at /"+ociimage.CACertsPath)
	fs.StringVar(&o.Ref, "ref", "ghcr.io/meshd-io/meshd:latest", "image reference the layout is tagged with")
	fs.StringVar(&o.User, "user", "65532:65532", "user (UID:GID) the image runs as")
	fs.StringVar(&out, "out", "bin/meshd-image", "OCI layout directory to write")
	fs.StringVar(&archive, "archive", "", "also write the layout as this OCI archive (tar)")
	fs.StringVar(&check, "check", "", "only check the OCI layout in this directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if check != "" {
		imgs, err := ociimage.CheckAll(check)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: OK\n", check)
		printImages(stdout, imgs)
		return nil
	}
	switch len(o.Binaries) {
	case 0:
		o.Binary = "bin/image/meshd"
	case 1: // one platform: the layout tags its manifest, as before multi-platform images
		o.Binary, o.Binaries = o.Binaries[0], nil
	}
	desc, err := ociimage.Build(out, o)
	if err != nil {
		return err
	}
	imgs, err := ociimage.CheckAll(out)
	if err != nil {
		return fmt.Errorf("the image written to %s does not check: %w", out, err)
	}
	if want := max(1, len(o.Binaries)); len(imgs) != want {
		return fmt.Errorf("the image written to %s has %d platforms, want %d", out, len(imgs), want)
	}
	if archive != "" {
		if err := ociimage.WriteArchive(out, archive); err != nil {
			return err
		}
	}
	kind := "manifest"
	if desc.MediaType == ociimage.MediaTypeIndex {
		kind = "image index"
	}
	fmt.Fprintf(stdout, "%s: %s, %s %s\n", out, o.Ref, kind, desc.Digest)
	printImages(stdout, imgs)
	if archive != "" {
		fmt.Fprintf(stdout, "archive %s\n", archive)
	}
	return nil
}

// printImages prints a line per platform: its manifest, entrypoint, user and size (what a node pulls, and
// the compressed layer).
func printImages(w io.Writer, imgs []*ociimage.Image) {
	for _, img := range imgs {
		c := img.Config.Config
		fmt.Fprintf(w, "  %s/%s: manifest %s, entrypoint %s, user %s, %s (layer %s compressed, /%s %s)\n",
			img.Config.OS, img.Config.Architecture, img.Descriptor.Digest, strings.Join(c.Entrypoint, " "), c.User,
			mib(img.Size()), mib(img.Manifest.Layers[0].Size), strings.TrimPrefix(c.Entrypoint[0], "/"),
			mib(img.Files[strings.TrimPrefix(c.Entrypoint[0], "/")].Size))
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n) }

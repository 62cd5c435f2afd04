// Command mkimage writes meshd's container image as an OCI image layout (and optionally an OCI archive)
// from a static binary, with no Docker daemon and no base image, then checks what it wrote. make image runs it.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/meshd-io/meshd/internal/ociimage"
)

func main() {
	var o ociimage.Options
	var out, archive, check string
	flag.StringVar(&o.Binary, "binary", "bin/image/meshd", "the static binary (CGO_ENABLED=0) to run")
	flag.StringVar(&o.Name, "name", "meshd", "the binary's name in the image root; the entrypoint is /NAME")
	flag.StringVar(&o.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle of CA certificates to put at /"+ociimage.CACertsPath)
	flag.StringVar(&o.Ref, "ref", "ghcr.io/meshd-io/meshd:latest", "image reference the layout is tagged with")
	flag.StringVar(&o.User, "user", "65532:65532", "user (UID:GID) the image runs as")
	flag.StringVar(&out, "out", "bin/meshd-image", "OCI layout directory to write")
	flag.StringVar(&archive, "archive", "", "also write the layout as this OCI archive (tar)")
	flag.StringVar(&check, "check", "", "only check the OCI layout in this directory")
	flag.Parse()
	if check != "" {
		if _, err := ociimage.Check(check); err != nil {
			fail(err)
		}
		fmt.Printf("%s: OK\n", check)
		return
	}
	desc, err := ociimage.Build(out, o)
	if err != nil {
		fail(err)
	}
	img, err := ociimage.Check(out)
	if err != nil {
		fail(fmt.Errorf("the image written to %s does not check: %w", out, err))
	}
	if archive != "" {
		if err := ociimage.WriteArchive(out, archive); err != nil {
			fail(err)
		}
	}
	fmt.Printf("%s: %s (%s/%s, entrypoint %v, user %s, %d bytes of layer)\n", out, o.Ref, img.Config.OS, img.Config.Architecture,
		img.Config.Config.Entrypoint, img.Config.Config.User, img.Manifest.Layers[0].Size)
	fmt.Printf("manifest %s\n", desc.Digest)
	if archive != "" {
		fmt.Printf("archive %s\n", archive)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkimage:", err)
	os.Exit(1)
}

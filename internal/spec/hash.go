package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Hash identifies the spec's content: the SHA-256, in hex, of its files' base names and bytes in name order.
// A saved plan records it so that applying the plan against a different spec is refused. Base names, not
// paths, so that the same spec read through another path (./specs vs specs/) keeps its hash.
func (m *Mesh) Hash() string {
	type file struct {
		name string
		src  []byte
	}
	fs := make([]file, 0, len(m.Files))
	for name, src := range m.Files {
		fs = append(fs, file{filepath.Base(name), src})
	}
	slices.SortFunc(fs, func(a, b file) int { return strings.Compare(a.name, b.name) })
	h := sha256.New()
	for _, f := range fs {
		// Length prefixes keep the encoding unambiguous: no two different file sets give the same stream.
		h.Write([]byte(strconv.Itoa(len(f.name)) + ":" + f.name + strconv.Itoa(len(f.src)) + ":"))
		h.Write(f.src)
	}
	return hex.EncodeToString(h.Sum(nil))
}

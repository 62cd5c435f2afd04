package spec

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// Load reads the spec at path, a file or a directory whose *.hcl files (not those of subdirectories, nor hidden
// ones: see IsSpecFileName) together form one spec, and decodes and statically validates it.
//
// The returned Mesh is never nil and its Files are filled with whatever could be read even when there are
// errors, so that the caller can print the diagnostics with source snippets. When the diagnostics hold an
// error the Mesh is incomplete and must not be planned.
func Load(path string) (*Mesh, hcl.Diagnostics) {
	m := &Mesh{
		ForwardBy: ForwardByNamespace,
		Quotas:    DefaultQuotas,
		Files:     map[string][]byte{},
		Attrs:     map[string]hcl.Range{},
	}
	names, diags := specFiles(path)
	if diags.HasErrors() {
		return m, diags
	}

	p := hclparse.NewParser()
	files := make([]*hcl.File, 0, len(names))
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Failed to read spec file",
				Detail:   fmt.Sprintf("The spec file %s could not be read: %s.", name, err),
			})
			continue
		}
		m.Files[name] = src
		f, parseDiags := p.ParseHCL(src, name)
		diags = append(diags, parseDiags...)
		files = append(files, f)
	}
	// After a syntax error the parser's recovery leaves holes in the bodies, and decoding them would add
	// misleading errors (a missing mesh block that is only unparseable), so stop at the syntax.
	if diags.HasErrors() {
		return m, sortDiagnostics(diags)
	}

	d := &decoder{m: m}
	d.decode(files)
	d.validate()
	return m, sortDiagnostics(append(diags, d.diags...))
}

// IsSpecFileName reports whether a file of a spec directory, by its base name, is part of the spec: a *.hcl
// file that is not hidden. Dot-files are editors' and tools' (Emacs's lock .#mesh.hcl, vim's .mesh.hcl.swp);
// backups such as mesh.hcl~ do not end in .hcl.
func IsSpecFileName(base string) bool {
	return strings.HasSuffix(base, ".hcl") && !strings.HasPrefix(base, ".")
}

// specFiles lists the files that make up the spec at path, in the order they are decoded.
func specFiles(path string) ([]string, hcl.Diagnostics) {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Spec not found",
				Detail:   fmt.Sprintf("There is no file or directory at %s. Give the path of a spec file or of a directory of *.hcl files.", path),
			}}
		}
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Failed to read spec",
			Detail:   fmt.Sprintf("The spec at %s could not be read: %s.", path, err),
		}}
	}
	if !info.IsDir() {
		return []string{path}, nil
	}

	entries, err := os.ReadDir(path) // sorted by name, which fixes the declaration order across files
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Failed to read spec",
			Detail:   fmt.Sprintf("The spec directory %s could not be read: %s.", path, err),
		}}
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() || !IsSpecFileName(e.Name()) {
			continue
		}
		names = append(names, filepath.Join(path, e.Name()))
	}
	if len(names) == 0 {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "No spec files",
			Detail:   fmt.Sprintf("The directory %s holds no *.hcl file (subdirectories are not read). Put the mesh and cluster blocks in .hcl files there, or give the path of a spec file.", path),
		}}
	}
	return names, nil
}

// sortDiagnostics orders diagnostics by position, so that the output reads top to bottom through the files
// whatever order the checks ran in. Diagnostics without a Subject (about the path itself) come first.
func sortDiagnostics(diags hcl.Diagnostics) hcl.Diagnostics {
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		switch {
		case a.Subject == nil && b.Subject == nil:
			return 0
		case a.Subject == nil:
			return -1
		case b.Subject == nil:
			return 1
		}
		return cmp.Or(
			cmp.Compare(a.Subject.Filename, b.Subject.Filename),
			cmp.Compare(a.Subject.Start.Byte, b.Subject.Start.Byte),
		)
	})
	return diags
}

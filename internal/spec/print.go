package spec

import (
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// PrintDiagnostics writes diags for a person: each one's severity, position (file:line,column-column), summary,
// the source lines it points at and its detail. files are the sources the ranges point into, as in
// Mesh.Files; a diagnostic about a file not among them is printed without its source.
func PrintDiagnostics(w io.Writer, files map[string][]byte, diags hcl.Diagnostics, color bool) error {
	// The text writer needs parsed files: their bytes for the snippet and their syntax tree for the
	// "in cluster "x"" context. Re-parsing is cheap and also works for files that failed to parse, since the
	// parser always returns the bytes.
	parsed := make(map[string]*hcl.File, len(files))
	p := hclparse.NewParser()
	for name, src := range files {
		f, _ := p.ParseHCL(src, name)
		if f == nil {
			f = &hcl.File{Bytes: src}
		}
		parsed[name] = f
	}
	tw := hcl.NewDiagnosticTextWriter(w, parsed, 78, color)
	for _, diag := range diags {
		// The writer shows only the line of the subject; editors and people jumping to an error want the
		// column too, in HCL's own file:line,column notation.
		if diag.Subject != nil {
			d := *diag
			d.Summary = fmt.Sprintf("%s: %s", diag.Subject, diag.Summary)
			diag = &d
		}
		if err := tw.WriteDiagnostic(diag); err != nil {
			return err
		}
	}
	return nil
}

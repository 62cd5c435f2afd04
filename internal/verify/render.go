package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// RenderHuman writes the matrix (FROM, TO, then the report's layers: PEERING, or TRANSIT_GATEWAY for a mesh
// with that topology, ROUTES, SG, NACL, DNS, PROBE), then one line per failure naming the object to fix.
func RenderHuman(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	head := []string{"FROM", "TO"}
	for _, l := range r.layers() {
		head = append(head, strings.ToUpper(string(l)))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, a := range r.Members {
		for _, b := range r.Members {
			if a == b {
				continue
			}
			row := []string{a, b}
			for _, l := range r.layers() {
				row = append(row, cell(r.Get(a, b, l).Status))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if notes := r.Notes(); len(notes) > 0 {
		fmt.Fprintf(w, "\nNotes:\n")
		for _, n := range notes {
			fmt.Fprintln(w, "  "+n)
		}
	}
	fails := r.Failures()
	if len(fails) == 0 {
		_, err := fmt.Fprintf(w, "\nEvery pair of the %d clusters passes.\n", len(r.Members))
		return err
	}
	fmt.Fprintf(w, "\n%d failure(s):\n", len(fails))
	for _, f := range fails {
		if _, err := fmt.Fprintln(w, "  "+f); err != nil {
			return err
		}
	}
	return nil
}

func cell(s Status) string {
	switch s {
	case OK:
		return "ok"
	case Fail:
		return "FAIL"
	case Unmanaged:
		return "network not managed"
	}
	return "-"
}

// jsonReport is the --json document.
type jsonReport struct {
	FormatVersion string    `json:"format_version"`
	OK            bool      `json:"ok"`
	Members       []string  `json:"members"`
	Layers        []Layer   `json:"layers"`
	Verdicts      []Verdict `json:"verdicts"`
	Failures      []string  `json:"failures"`
}

// RenderJSON writes the same verdicts for machines.
func RenderJSON(w io.Writer, r Report) error {
	f := r.Failures()
	if f == nil {
		f = []string{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jsonReport{FormatVersion: "1", OK: r.OK(), Members: r.Members, Layers: r.layers(), Verdicts: r.Verdicts, Failures: f})
}

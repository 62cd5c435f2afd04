package plan

import "slices"

func deps(addr ...string) []string {
	var out []string
	for _, a := range addr {
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

func orUnknown(id, address string) string {
	if id != "" {
		return id
	}
	return address + " (known after apply)"
}

func uniqueSorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

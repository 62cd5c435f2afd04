package kubeobj

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Diff names the fields of got that differ from want, comparing only what meshd sets: each label and
// annotation of want (others' labels and annotations on got are ignored) and each content field of want.
// Content is compared as normalised JSON values; within a field, maps are compared as subsets of want (a
// key the server defaulted is not drift, nor is a field want leaves empty) except the kind's Exact fields (a
// Secret's data: an empty want there means no keys), and lists element by element. The names are paths such as "labels[app]",
// "data[tls.crt]" or "spec.serviceRef.port", never values, so they are safe to show for a Secret.
//
// want and got are taken to be the same object (kind, namespace, name); a want the table does not know
// is reported as one difference, "kind".
func Diff(want, got Object) []string {
	return compare(want, got, func(k Kind, wm, gm map[string]any) []string {
		var diffs []string
		for _, f := range sortedKeys(wm) {
			if k.isExact(f) {
				diffs = append(diffs, diffExact(f, wm[f], gm[f])...)
			} else {
				diffs = append(diffs, diffSubset(f, wm[f], gm[f])...)
			}
		}
		return diffs
	})
}

// DiffCopy is Diff for a copy of another object (a replicated Secret or role): labels and annotations as in
// Diff (meshd's and the source's; others' are left), but every content field of the kind exactly, those
// want lacks included: a copy holds its source's content and nothing else, so a rule, subject or data key
// someone added to the copy, or one the source no longer has, is drift. want comes from an object the API
// server returned (the source), so server defaults are on both sides.
func DiffCopy(want, got Object) []string {
	return compare(want, got, func(k Kind, wm, gm map[string]any) []string {
		var diffs []string
		for _, f := range k.Content {
			if _, isMap := wm[f].(map[string]any); isMap || k.isExact(f) {
				diffs = append(diffs, diffExact(f, wm[f], gm[f])...)
				continue
			}
			if !(isEmpty(wm[f]) && isEmpty(gm[f])) && !reflect.DeepEqual(wm[f], gm[f]) {
				diffs = append(diffs, f)
			}
		}
		return diffs
	})
}

// compare is what Diff and DiffCopy share: want's labels and annotations (others' on got are ignored), then
// the normalised content, compared by content.
func compare(want, got Object, content func(k Kind, wm, gm map[string]any) []string) []string {
	var diffs []string
	for _, k := range sortedKeys(want.Labels) {
		if v, ok := got.Labels[k]; !ok || v != want.Labels[k] {
			diffs = append(diffs, "labels["+k+"]")
		}
	}
	for _, k := range sortedKeys(want.Annotations) {
		if v, ok := got.Annotations[k]; !ok || v != want.Annotations[k] {
			diffs = append(diffs, "annotations["+k+"]")
		}
	}
	k, err := Lookup(want.Kind)
	if err != nil {
		return append(diffs, "kind")
	}
	w, werr := normalize(want.Content)
	g, gerr := normalize(got.Content)
	if werr != nil || gerr != nil {
		return append(diffs, "content")
	}
	return append(diffs, content(k, w.(map[string]any), g.(map[string]any))...)
}

// diffExact compares a map whose keys are content (a ConfigMap's data): every key on either side counts.
func diffExact(path string, want, got any) []string {
	if isEmpty(want) && isEmpty(got) {
		return nil
	}
	wm, wok := want.(map[string]any)
	gm, gok := got.(map[string]any)
	if !wok || !gok {
		if reflect.DeepEqual(want, got) {
			return nil
		}
		return []string{path}
	}
	var diffs []string
	keys := sortedKeys(wm)
	for k := range gm {
		if _, ok := wm[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		wv, wok := wm[k]
		gv, gok := gm[k]
		if wok != gok || !reflect.DeepEqual(wv, gv) {
			diffs = append(diffs, path+"["+k+"]")
		}
	}
	return diffs
}

// diffSubset compares what want sets: keys of got that want lacks are the server's (defaults) or nobody's,
// and an empty value in want is one meshd does not set (it never reaches the API server: ToUnstructured
// drops it, Update leaves the field as it is).
func diffSubset(path string, want, got any) []string {
	if isEmpty(want) {
		return nil
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{path}
		}
		var diffs []string
		for _, k := range sortedKeys(w) {
			diffs = append(diffs, diffSubset(path+"."+k, w[k], g[k])...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{path}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, diffSubset(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	}
	if reflect.DeepEqual(want, got) {
		return nil
	}
	return []string{path}
}

// NeedsReplace reports whether got can only become want by deleting and creating it: a field the API
// refuses to change in place (Kind.ReplaceOn: a Secret's type, a binding's roleRef) differs, or got is
// immutable ("immutable": true) and its content differs.
func NeedsReplace(want, got Object) bool {
	k, err := Lookup(want.Kind)
	if err != nil {
		return false
	}
	contentDiffs := slices.DeleteFunc(Diff(want, got), func(d string) bool {
		return strings.HasPrefix(d, "labels[") || strings.HasPrefix(d, "annotations[")
	})
	if len(contentDiffs) == 0 {
		return false
	}
	if k.Immutable && got.Content["immutable"] == true {
		return true
	}
	for _, d := range contentDiffs {
		for _, p := range k.ReplaceOn {
			if d == p || strings.HasPrefix(d, p+".") || strings.HasPrefix(d, p+"[") {
				return true
			}
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

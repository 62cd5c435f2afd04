package spec

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// CorefileLocation is where dns { corefile | corefile_import } says a cluster's CoreDNS configuration is.
// The zero value means "detect it" (see plan.DetectCorefile).
type CorefileLocation struct {
	Namespace, Name string
	// Key is the ConfigMap key: the Corefile meshd edits, or (Import) the file of its own that it writes.
	Key string
	// Import: the Corefile imports the ConfigMap's files as server blocks (k3s, AKS), and meshd owns the
	// key ImportKey whole instead of editing the Corefile.
	Import bool
}

// Set reports whether the spec names the location.
func (l CorefileLocation) Set() bool { return l.Name != "" }

func (l CorefileLocation) String() string {
	if l.Import {
		return fmt.Sprintf("%s/%s key %s (imported)", l.Namespace, l.Name, l.Key)
	}
	return fmt.Sprintf("%s/%s key %s", l.Namespace, l.Name, l.Key)
}

// Keys of the ConfigMaps meshd writes Corefile text into.
const (
	CorefileKey = "Corefile"
	// ImportKey is meshd's own file in an import layout's ConfigMap: a name the `import .../*.server`
	// globs of k3s and AKS match.
	ImportKey = "meshd.server"
)

var configMapKeyRE = regexp.MustCompile(`^[-._a-zA-Z0-9]{1,253}$`)

// decodeCorefileLocation reads the corefile and corefile_import attributes of a dns block (the mesh's,
// for every member, or a cluster's). set receives the ranges of the attributes written.
func (d *decoder) decodeCorefileLocation(attrs hcl.Attributes, set map[string]hcl.Range) (CorefileLocation, bool) {
	edit, er, editOK := d.strIn(set, attrs, "corefile")
	imp, ir, impOK := d.strIn(set, attrs, "corefile_import")
	switch {
	case editOK && impOK:
		d.errorf(ir, "Conflicting Corefile locations",
			"corefile (at %s) and corefile_import name two places for meshd's server blocks. Set corefile to edit a Corefile, or corefile_import for a Corefile that imports the ConfigMap's *.server files (k3s, AKS); not both.", pos(er))
		return CorefileLocation{}, false
	case editOK:
		return d.parseCorefileLocation(edit, er, false)
	case impOK:
		return d.parseCorefileLocation(imp, ir, true)
	}
	return CorefileLocation{}, false
}

// parseCorefileLocation reads "NAMESPACE/NAME" or, for an edited Corefile, "NAMESPACE/NAME:KEY".
func (d *decoder) parseCorefileLocation(s string, r hcl.Range, imp bool) (CorefileLocation, bool) {
	attr, example := "corefile", `"kube-system/coredns" or "kube-system/coredns:Corefile"`
	if imp {
		attr, example = "corefile_import", `"kube-system/coredns-custom"`
	}
	ref, key, hasKey := strings.Cut(s, ":")
	ns, name, found := strings.Cut(ref, "/")
	switch {
	case !found || !isDNSLabel(ns) || !isDNSSubdomain(name):
		d.errorf(r, "Invalid Corefile location", "%s is %q; write the ConfigMap as NAMESPACE/NAME, like %s.", attr, s, example)
		return CorefileLocation{}, false
	case hasKey && imp:
		d.errorf(r, "Invalid Corefile location",
			"corefile_import is %q; it names a ConfigMap only: meshd writes its blocks as the key %q, which an import of *.server files reads.", s, ImportKey)
		return CorefileLocation{}, false
	case hasKey && !configMapKeyRE.MatchString(key):
		d.errorf(r, "Invalid Corefile location", "%q is not a ConfigMap key (letters, digits, '-', '_' and '.').", key)
		return CorefileLocation{}, false
	}
	l := CorefileLocation{Namespace: ns, Name: name, Key: CorefileKey, Import: imp}
	if imp {
		l.Key = ImportKey
	} else if hasKey {
		l.Key = key
	}
	return l, true
}

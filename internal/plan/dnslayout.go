package plan

import (
	"fmt"
	"path"
	"slices"

	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
)

// Where clusters keep their CoreDNS configuration. meshd recognises these layouts; any other is named in
// the spec (dns { corefile | corefile_import }). docs/dns.md has the table.
const (
	// CustomConfigMap is the ConfigMap whose keys k3s and AKS mount beside the Corefile and import as
	// *.server (whole server blocks) and *.override (lines of the main block).
	CustomConfigMap = "coredns-custom"
	// RKE2ConfigMap is the Corefile's ConfigMap of RKE2's CoreDNS chart.
	RKE2ConfigMap = "rke2-coredns-rke2-coredns"

	LayoutEKSAddon = "EKS add-on"
	LayoutKubeadm  = "kubeadm"
	LayoutK3s      = "k3s"
	LayoutAKS      = "AKS"
	LayoutImport   = "import"
	LayoutRKE2     = "RKE2"
	LayoutSpec     = "spec"
)

// BackupName is the ConfigMap meshd keeps the original of an edited Corefile in: coredns-meshd-backup for
// kube-system/coredns.
func BackupName(configMap string) string { return configMap + "-meshd-backup" }

// CorefileCandidates are the ConfigMaps (in DNSNamespace, or the spec's namespace) meshd may read to find
// cluster c's CoreDNS configuration, and edit: the one the spec names; for an EKS member
// kube-system/coredns (EKS runs no other layout); else every layout DetectCorefile recognises. RBAC and
// watches are derived from them, so a spec that names the place grants meshd that ConfigMap only.
func CorefileCandidates(m *spec.Mesh, c *spec.Cluster) (namespace string, edited, imported []string) {
	if loc := m.CorefileLocation(c); loc.Set() {
		if loc.Import {
			return loc.Namespace, nil, []string{loc.Name}
		}
		return loc.Namespace, []string{loc.Name}, nil
	}
	if c.EKSCluster != "" {
		return DNSNamespace, []string{CoreDNSConfigMap}, nil
	}
	return DNSNamespace, []string{CoreDNSConfigMap, RKE2ConfigMap}, []string{CustomConfigMap}
}

// CorefileLookup reads a ConfigMap for DetectCorefile: nil and no error when it does not exist.
type CorefileLookup func(namespace, name string) (*model.ConfigMap, error)

// DetectCorefile finds where meshd writes cluster c's blocks, reading only what it needs:
//
//	spec names it                     | that ConfigMap and key (Layout "spec")
//	kube-system/coredns imports *.server | its coredns-custom ConfigMap, key meshd.server (k3s, AKS)
//	kube-system/coredns                | its Corefile (the EKS add-on's, kubeadm's)
//	kube-system/rke2-coredns-rke2-coredns | its Corefile (RKE2)
//
// With none of them the result's Site is zero and Looked names the ConfigMaps looked for.
func DetectCorefile(m *spec.Mesh, c *spec.Cluster, get CorefileLookup) (model.DNSObserved, error) {
	var o model.DNSObserved
	if loc := m.CorefileLocation(c); loc.Set() {
		cm, err := get(loc.Namespace, loc.Name)
		if err != nil {
			return o, err
		}
		site := model.CorefileSite{Namespace: loc.Namespace, Name: loc.Name, Key: loc.Key, Import: loc.Import, Layout: LayoutSpec}
		if loc.Import {
			o.Site, o.Custom = site, cm
			return o, nil
		}
		if cm == nil || !hasKey(cm, loc.Key) {
			o.Looked = []string{loc.String()}
			return o, nil
		}
		o.Site, o.CoreDNS = site, cm
		return o, readBackup(&o, get)
	}
	ns, edited, imported := CorefileCandidates(m, c)
	for _, name := range edited {
		cm, err := get(ns, name)
		if err != nil {
			return o, err
		}
		o.Looked = append(o.Looked, ns+"/"+name)
		if cm == nil || !hasKey(cm, CorefileKey) {
			continue
		}
		o.CoreDNS, o.Looked = cm, nil
		o.Site = model.CorefileSite{Namespace: ns, Name: name, Key: CorefileKey, Layout: editLayout(name, cm)}
		if layout, ok := importLayout(cm.Data[CorefileKey]); ok && len(imported) > 0 {
			custom, err := get(ns, imported[0])
			if err != nil {
				return o, err
			}
			o.Site = model.CorefileSite{Namespace: ns, Name: imported[0], Key: spec.ImportKey, Import: true, Layout: layout}
			o.Custom = custom
			return o, nil
		}
		return o, readBackup(&o, get)
	}
	return o, nil
}

// readBackup reads meshd's backup of an edited Corefile, beside it.
func readBackup(o *model.DNSObserved, get CorefileLookup) error {
	b, err := get(o.Site.Namespace, BackupName(o.Site.Name))
	o.Backup = b
	return err
}

func hasKey(cm *model.ConfigMap, key string) bool {
	_, ok := cm.Data[key]
	return ok
}

// editLayout names the layout of a Corefile meshd edits, for the plan's summary.
func editLayout(name string, cm *model.ConfigMap) string {
	switch {
	case name == RKE2ConfigMap:
		return LayoutRKE2
	case cm.Labels["eks.amazonaws.com/component"] == "coredns" || slices.Contains(cm.Managers, EKSManager):
		return LayoutEKSAddon
	default:
		return LayoutKubeadm
	}
}

// importLayout reports whether a Corefile imports server blocks from files that meshd's own key would be
// one of, and which distribution lays it out so.
func importLayout(text string) (string, bool) {
	imports, err := corefile.ServerImports(text)
	if err != nil {
		return "", false
	}
	for _, glob := range imports {
		if ok, _ := path.Match(path.Base(glob), spec.ImportKey); !ok {
			continue
		}
		switch path.Dir(glob) {
		case "/etc/coredns/custom":
			return LayoutK3s, true
		case "custom":
			return LayoutAKS, true
		default:
			return LayoutImport, true
		}
	}
	return "", false
}

// CoreDNSFound is where meshd writes a member's server blocks, for the plan's summary.
type CoreDNSFound struct {
	Cluster string             `json:"cluster"`
	Site    model.CorefileSite `json:"site"`
	// NodeLocal: the cluster runs a NodeLocal DNSCache, whose Corefile gets meshd's blocks too.
	NodeLocal bool `json:"node_local,omitempty"`
}

func (f CoreDNSFound) String() string {
	s := f.Cluster + ": " + f.Site.String()
	if f.Site.Layout != "" {
		s += " (" + f.Site.Layout + ")"
	}
	if f.Site.Import {
		s = fmt.Sprintf("%s: %s/%s key %s, a file the Corefile imports (%s)", f.Cluster, f.Site.Namespace, f.Site.Name, f.Site.Key, f.Site.Layout)
	}
	if f.NodeLocal {
		s += "; NodeLocal DNSCache " + DNSNamespace + "/" + NodeLocalConfigMap
	}
	return s
}

// NoCoreDNS is a member where meshd found no CoreDNS configuration it can write to. The rest of the mesh
// is planned as usual (the member is peered, and the others resolve its names); Check reports it at the
// cluster as a warning.
type NoCoreDNS struct {
	Cluster  string
	Looked   []string // the ConfigMaps looked for
	AutoMode bool     // an EKS Auto Mode cluster
}

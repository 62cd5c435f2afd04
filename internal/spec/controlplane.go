package spec

import (
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Defaults of a control_plane block.
const (
	DefaultTokenTTL = 24 * time.Hour
	// DefaultTokenFileDir is where KubeBlocks mounts its multi-cluster Secret in its manager and
	// dataprotection Deployments.
	DefaultTokenFileDir = "/var/run/secrets/kubeblocks.io/multicluster"
	// MinTokenTTL is the shortest token the API server issues.
	MinTokenTTL = 10 * time.Minute
)

// ControlPlane is a control_plane block: a cluster whose operator (KubeBlocks) reaches the data-plane
// clusters through a kubeconfig that meshd writes into a Secret there, one context per data plane, each
// backed by a ServiceAccount token of that data plane that meshd renews before it expires.
type ControlPlane struct {
	Name    string
	Cluster string
	// DataPlanes in spec order; empty in the spec means every other member (see Targets).
	DataPlanes []string
	// SecretNamespace and SecretName name the Secret in the control plane (secret = "<namespace>/<name>").
	SecretNamespace string
	SecretName      string
	ClusterRole     string
	TokenTTL        time.Duration
	// TokenFileDir is where the operator mounts the Secret: each user's tokenFile is
	// <TokenFileDir>/<cluster>.token. "" writes the tokens into the kubeconfig instead.
	TokenFileDir string

	BlockRanges
}

// Targets are the data planes: DataPlanes, or every member but the control plane.
func (cp *ControlPlane) Targets(m *Mesh) []string {
	if len(cp.DataPlanes) > 0 {
		return cp.DataPlanes
	}
	return m.othersThan(cp.Cluster)
}

// TokenFile is the path the kubeconfig names for a data plane's token, "" for inline tokens.
func (cp *ControlPlane) TokenFile(cluster string) string {
	if cp.TokenFileDir == "" {
		return ""
	}
	return path.Join(cp.TokenFileDir, TokenKey(cluster))
}

// TokenKey is the Secret key of a data plane's token.
func TokenKey(cluster string) string { return cluster + ".token" }

var controlPlaneSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "cluster"}, {Name: "data_planes"}, {Name: "secret"}, {Name: "cluster_role"},
		{Name: "token_ttl"}, {Name: "token_file_dir"},
	},
}

func (d *decoder) decodeControlPlane(b *hcl.Block) {
	cp := &ControlPlane{Name: b.Labels[0], TokenTTL: DefaultTokenTTL, TokenFileDir: DefaultTokenFileDir,
		BlockRanges: newBlockRanges(b.DefRange)}
	if !isDNSLabel(cp.Name) {
		d.errorf(b.LabelRanges[0], "Invalid control plane name", "%s", labelDetail("control_plane", cp.Name))
	}
	content, diags := b.Body.Content(controlPlaneSchema)
	d.diags = append(d.diags, diags...)
	attrs := content.Attributes
	cp.Cluster, _, _ = d.strIn(cp.Attrs, attrs, "cluster")
	if l, _, ok := d.strListIn(cp.Attrs, cp.Elems, attrs, "data_planes"); ok {
		cp.DataPlanes = l
	}
	if s, r, ok := d.strIn(cp.Attrs, attrs, "secret"); ok {
		ns, name, found := strings.Cut(s, "/")
		if !found || !isDNSLabel(ns) || !isDNSSubdomain(name) {
			d.errorf(r, "Invalid Secret name",
				`secret is %q; write the namespace and name of the Secret in the control plane, like "kb-system/kubeblocks-data-planes".`, s)
		}
		cp.SecretNamespace, cp.SecretName = ns, name
	}
	if s, r, ok := d.strIn(cp.Attrs, attrs, "cluster_role"); ok {
		cp.ClusterRole = s
		if !isDNSSubdomain(s) && !strings.Contains(s, ":") {
			d.errorf(r, "Invalid ClusterRole name", "%q is not a ClusterRole name.", s)
		}
	}
	if s, r, ok := d.strIn(cp.Attrs, attrs, "token_ttl"); ok {
		ttl, err := time.ParseDuration(s)
		switch {
		case err != nil:
			d.errorf(r, "Invalid duration", `token_ttl is %q; write a duration like "24h" or "90m".`, s)
		case ttl < MinTokenTTL:
			d.errorf(r, "Token lifetime too short",
				"token_ttl is %s; the API server issues ServiceAccount tokens for %s or longer.", ttl, MinTokenTTL)
		default:
			cp.TokenTTL = ttl
		}
	}
	if s, r, ok := d.strIn(cp.Attrs, attrs, "token_file_dir"); ok {
		cp.TokenFileDir = s
		if s != "" && (!path.IsAbs(s) || path.Clean(s) != s) {
			d.errorf(r, "Invalid token directory",
				`token_file_dir is %q; write the absolute, clean path where the operator mounts the Secret (KubeBlocks: %q), or "" to put the tokens in the kubeconfig.`, s, DefaultTokenFileDir)
		}
	}
	for _, prev := range d.m.ControlPlanes {
		if prev.Name == cp.Name {
			d.errorf(b.DefRange, "Duplicate control plane name",
				"A control_plane block named %q was already declared at %s. Rename one of them.", cp.Name, pos(prev.DeclRange))
			return
		}
	}
	d.m.ControlPlanes = append(d.m.ControlPlanes, cp)
}

// checkAPIServer checks a cluster's api_server: an https URL with a host and nothing after the path.
func checkAPIServer(d *decoder, r hcl.Range, s string) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		d.errorf(r, "Invalid API server", `api_server is %q; write the https URL the control plane reaches this cluster's API server at, like "https://10.1.0.10:443".`, s)
	}
}

// validateControlPlanes checks each control_plane block against the clusters, once every file is read.
func (d *decoder) validateControlPlanes() {
	m := d.m
	type secretKey struct{ cluster, namespace, name string }
	secrets := map[secretKey]*ControlPlane{}
	for _, cp := range m.ControlPlanes {
		for _, a := range []string{"cluster", "secret", "cluster_role"} {
			if _, ok := cp.Attrs[a]; !ok {
				d.errorf(cp.DeclRange, "Missing required argument", "Control plane %q has no %s.", cp.Name, a)
			}
		}
		if _, ok := cp.Attrs["cluster"]; ok && m.Cluster(cp.Cluster) == nil {
			d.errorf(cp.AttrRange("cluster"), "Unknown cluster",
				"Control plane %q is cluster %q, which is not a cluster of this mesh (%s).", cp.Name, cp.Cluster, m.ClusterList())
		}
		seen := map[string]bool{}
		for i, dp := range cp.DataPlanes {
			rg := cp.ElemRange("data_planes", i)
			switch {
			case m.Cluster(dp) == nil:
				d.errorf(rg, "Unknown cluster", "Control plane %q has data plane %q, which is not a cluster of this mesh (%s).", cp.Name, dp, m.ClusterList())
			case dp == cp.Cluster:
				d.errorf(rg, "Control plane as its own data plane",
					"Cluster %q is the control plane of %q; remove it from data_planes.", dp, cp.Name)
			case seen[dp]:
				d.errorf(rg, "Duplicate list entry", "Cluster %q is listed twice in data_planes.", dp)
			}
			seen[dp] = true
		}
		if _, set := cp.Attrs["data_planes"]; set && len(cp.DataPlanes) == 0 {
			d.errorf(cp.AttrRange("data_planes"), "Empty data plane list",
				"Control plane %q has no data planes. Name them, or remove data_planes to use every other member.", cp.Name)
		}
		if cp.SecretName != "" {
			k := secretKey{cp.Cluster, cp.SecretNamespace, cp.SecretName}
			if prev := secrets[k]; prev != nil {
				d.errorf(cp.AttrRange("secret"), "Two control planes write one Secret",
					"Control plane %q and control plane %q (%s) both write Secret %s/%s in cluster %q. Give each its own secret.",
					cp.Name, prev.Name, pos(prev.DeclRange), cp.SecretNamespace, cp.SecretName, cp.Cluster)
			}
			secrets[k] = cp
		}
	}
}

// ControlPlane returns the control_plane block with the given name, or nil.
func (m *Mesh) ControlPlane(name string) *ControlPlane {
	for _, cp := range m.ControlPlanes {
		if cp.Name == name {
			return cp
		}
	}
	return nil
}

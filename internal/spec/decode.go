package spec

import (
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Schemas of the spec. Every attribute is optional to HCL: which ones are required depends on other blocks
// (namespace on the mesh's forward_by, possibly in another file), so requirements are checked after decoding,
// all in one place and with one kind of message.
var (
	rootSchema = &hcl.BodySchema{
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "mesh", LabelNames: []string{"name"}},
			{Type: "cluster", LabelNames: []string{"name"}},
			{Type: "replicate", LabelNames: []string{"name"}},
			{Type: "load_balancer", LabelNames: []string{"name"}},
			{Type: "control_plane", LabelNames: []string{"name"}},
		},
	}
	meshSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "adopt"}, {Name: "allow_privileged"}, {Name: "topology"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "dns"}, {Type: "quotas"}, {Type: "transit_gateway", LabelNames: []string{"region"}}},
	}
	dnsSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "forward_by"}, {Name: "enabled"}, {Name: "corefile_via"},
			{Name: "corefile"}, {Name: "corefile_import"}},
	}
	quotasSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "peerings_per_vpc"},
			{Name: "routes_per_route_table"},
			{Name: "inbound_rules_per_group"},
		},
	}
	clusterSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "region"},
			{Name: "kube_context"},
			{Name: "kube_auth"},
			{Name: "eks_cluster"},
			{Name: "vpc_id"},
			{Name: "security_group_id"},
			{Name: "route_table_ids"},
			{Name: "cidr_blocks"},
			{Name: "namespace"},
			{Name: "cluster_domain"},
			{Name: "api_server"},
			{Name: "assume_role"},
			{Name: "external_id"},
			{Name: "network"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "dns"}},
	}
)

// decoder accumulates the decoded mesh and the diagnostics of one Load.
type decoder struct {
	m     *Mesh
	diags hcl.Diagnostics

	meshBlock   *hcl.Block           // the first mesh block; nil when there is none
	meshWritten bool                 // a mesh block is written, even one HCL rejected (e.g. without a label)
	clusters    int                  // cluster blocks decoded, duplicates included
	clusterDecl map[string]hcl.Range // first declaration of each cluster name
	modeKnown   bool                 // forward_by is valid, so checks that depend on it can run
}

func (d *decoder) errorf(subject hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  subject.Ptr(),
	})
}

func (d *decoder) warnf(subject hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  subject.Ptr(),
	})
}

// decode walks the files in order. Blocks keep their order within and across files, which is the order of
// Mesh.Clusters.
func (d *decoder) decode(files []*hcl.File) {
	d.modeKnown = true
	d.clusterDecl = map[string]hcl.Range{}
	for _, f := range files {
		content, diags := f.Body.Content(rootSchema)
		d.diags = append(d.diags, diags...)
		// Content drops a block with the wrong number of labels, which must not also read as a missing block.
		if body, ok := f.Body.(*hclsyntax.Body); ok {
			for _, b := range body.Blocks {
				d.meshWritten = d.meshWritten || b.Type == "mesh"
			}
		}
		for _, b := range content.Blocks {
			switch b.Type {
			case "mesh":
				d.decodeMesh(b)
			case "cluster":
				d.decodeCluster(b)
			case "replicate":
				d.decodeReplicate(b)
			case "load_balancer":
				d.decodeLoadBalancer(b)
			case "control_plane":
				d.decodeControlPlane(b)
			}
		}
	}
	if !d.meshWritten && len(files) > 0 {
		// There is no range for something absent; the start of the first file is where it would go.
		d.errorf(files[0].Body.MissingItemRange(), "Missing mesh block",
			`A spec needs exactly one mesh block, which names the mesh that meshd tags everything it creates with. Add one, for example mesh "tidb" {}, to one of the spec's files.`)
	}
}

func (d *decoder) decodeMesh(b *hcl.Block) {
	if d.meshBlock != nil {
		d.errorf(b.DefRange, "Duplicate mesh block",
			"A mesh block was already declared at %s. A spec describes exactly one mesh: remove this block, or give its clusters a spec of their own.",
			pos(d.meshBlock.DefRange))
		return
	}
	d.meshBlock = b
	m := d.m
	m.Name = b.Labels[0]
	m.DeclRange = b.DefRange
	if !isDNSLabel(m.Name) {
		d.errorf(b.LabelRanges[0], "Invalid mesh name", "%s", labelDetail("mesh", m.Name))
	}

	content, diags := b.Body.Content(meshSchema)
	d.diags = append(d.diags, diags...)
	if a := content.Attributes["adopt"]; a != nil {
		if v, st := d.value(a, cty.Bool); st == valOK {
			m.Adopt = v.True()
			m.Attrs["adopt"] = a.Expr.Range()
		}
	}
	if a := content.Attributes["allow_privileged"]; a != nil {
		if v, st := d.value(a, cty.Bool); st == valOK {
			m.AllowPrivileged = v.True()
			m.Attrs["allow_privileged"] = a.Expr.Range()
		}
	}

	d.decodeTopology(content.Attributes["topology"])
	seen := map[string]*hcl.Block{}
	for _, nb := range content.Blocks {
		if nb.Type == "transit_gateway" { // one per region, checked there
			d.decodeTransitGateway(nb)
			continue
		}
		if prev := seen[nb.Type]; prev != nil {
			d.errorf(nb.DefRange, fmt.Sprintf("Duplicate %s block", nb.Type),
				"A %s block was already declared at %s. Merge the two into one block.", nb.Type, pos(prev.DefRange))
			continue
		}
		seen[nb.Type] = nb
		switch nb.Type {
		case "dns":
			d.decodeDNS(nb)
		case "quotas":
			d.decodeQuotas(nb)
		}
	}
}

func (d *decoder) decodeDNS(b *hcl.Block) {
	content, diags := b.Body.Content(dnsSchema)
	d.diags = append(d.diags, diags...)
	if a := content.Attributes["enabled"]; a != nil {
		if v, st := d.value(a, cty.Bool); st == valOK {
			d.m.DNSDisabled = v.False()
			d.m.Attrs["dns.enabled"] = a.Expr.Range()
		}
	}
	d.decodeCorefileVia(content.Attributes["corefile_via"])
	set := map[string]hcl.Range{}
	d.m.Corefile, _ = d.decodeCorefileLocation(content.Attributes, set)
	for k, r := range set {
		d.m.Attrs["dns."+k] = r
	}
	a := content.Attributes["forward_by"]
	if a == nil {
		return
	}
	v, st := d.value(a, cty.String)
	if st != valOK {
		// null keeps the default; a wrong value leaves the mode unknown and the checks that depend on it off
		d.modeKnown = st == valNull
		return
	}
	r := a.Expr.Range()
	d.m.Attrs["dns.forward_by"] = r
	switch s := v.AsString(); s {
	case ForwardByNamespace, ForwardByClusterDomain:
		d.m.ForwardBy = s
	default:
		d.modeKnown = false
		d.errorf(r, "Invalid DNS forwarding mode",
			`forward_by is %q; set it to "namespace" (forward <namespace>.svc.cluster.local of each other cluster, for EKS where the cluster domain is fixed) or "cluster_domain" (forward each other cluster's own cluster domain).`, s)
	}
}

func (d *decoder) decodeQuotas(b *hcl.Block) {
	content, diags := b.Body.Content(quotasSchema)
	d.diags = append(d.diags, diags...)
	for _, q := range []struct {
		name string
		dst  *int
		def  int
	}{
		{"peerings_per_vpc", &d.m.Quotas.PeeringsPerVPC, DefaultQuotas.PeeringsPerVPC},
		{"routes_per_route_table", &d.m.Quotas.RoutesPerRouteTable, DefaultQuotas.RoutesPerRouteTable},
		{"inbound_rules_per_group", &d.m.Quotas.InboundRulesPerGroup, DefaultQuotas.InboundRulesPerGroup},
	} {
		a := content.Attributes[q.name]
		if a == nil {
			continue
		}
		v, st := d.value(a, cty.Number)
		if st != valOK {
			continue
		}
		r := a.Expr.Range()
		d.m.Attrs["quotas."+q.name] = r
		n, acc := v.AsBigFloat().Int64()
		if acc != big.Exact || n <= 0 || n > 1<<31 {
			d.errorf(r, "Invalid quota",
				"%s must be a positive whole number: the quota of the AWS account (AWS's default is %d). Remove it to use the default.",
				q.name, q.def)
			continue
		}
		*q.dst = int(n)
	}
}

func (d *decoder) decodeCluster(b *hcl.Block) {
	d.clusters++
	c := &Cluster{
		Name:          b.Labels[0],
		ClusterDomain: DefaultClusterDomain,
		BlockRanges:   newBlockRanges(b.DefRange),
	}
	if !isDNSLabel(c.Name) {
		d.errorf(b.LabelRanges[0], "Invalid cluster name", "%s", labelDetail("cluster", c.Name))
	}

	content, diags := b.Body.Content(clusterSchema)
	d.diags = append(d.diags, diags...)
	attrs := content.Attributes

	// Each value is checked on its own here, where its range is at hand; checks that combine attributes or
	// clusters run in validate once every file is read.
	if s, r, ok := d.str(c, attrs, "region"); ok {
		c.Region = s
		if !isRegion(s) {
			d.errorf(r, "Invalid region", "%s", regionDetail(s))
		}
	}
	if s, r, ok := d.str(c, attrs, "kube_context"); ok {
		c.KubeContext = s
		if strings.TrimSpace(s) == "" {
			d.errorf(r, "Invalid kube context",
				"kube_context is empty; set it to the name of the kubeconfig context that reaches this cluster (see kubectl config get-contexts).")
		}
	}
	if s, r, ok := d.str(c, attrs, "kube_auth"); ok {
		switch s {
		case KubeAuthEKS, KubeAuthKubeconfig:
			c.KubeAuth = s
		default:
			d.errorf(r, "Invalid kube_auth",
				`kube_auth is %q; set it to "eks" (meshd signs in to the EKS cluster itself with its AWS credentials, as aws eks get-token does) or "kubeconfig" (the user credentials of kube_context in meshd's kubeconfig).`, s)
		}
	}
	if s, r, ok := d.str(c, attrs, "eks_cluster"); ok {
		c.EKSCluster = s
		if !eksNameRe.MatchString(s) {
			d.errorf(r, "Invalid EKS cluster name",
				"%q cannot be an EKS cluster name: those are 1 to 100 letters, digits, '-' and '_', starting with a letter or digit. Use the name shown by aws eks list-clusters.", s)
		}
	}
	if s, r, ok := d.str(c, attrs, "vpc_id"); ok {
		c.VPCID = s
		if !vpcIDRe.MatchString(s) {
			d.errorf(r, "Invalid VPC ID", "%s", idDetail(s, "a VPC ID", vpcIDRe, "vpc-", "vpc-0b15ed35c02af5288"))
		}
	}
	if s, r, ok := d.str(c, attrs, "security_group_id"); ok {
		c.SecurityGroupID = s
		if !sgIDRe.MatchString(s) {
			d.errorf(r, "Invalid security group ID", "%s", idDetail(s, "a security group ID", sgIDRe, "sg-", "sg-0cb299e7ec153c595"))
		}
	}
	if l, rs, ok := d.strList(c, attrs, "route_table_ids"); ok {
		c.RouteTableIDs = l
		d.checkRouteTables(c, l, rs)
	}
	if l, rs, ok := d.strList(c, attrs, "cidr_blocks"); ok {
		c.CIDRBlocks = d.checkCIDRBlocks(c, l, rs)
	}
	if s, r, ok := d.str(c, attrs, "namespace"); ok {
		c.Namespace = s
		if !isDNSLabel(s) {
			d.errorf(r, "Invalid namespace",
				"%q is not a Kubernetes namespace name: it must be a DNS-1123 label (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit).", s)
		}
	}
	if s, r, ok := d.str(c, attrs, "cluster_domain"); ok {
		c.ClusterDomain = s
		if !isDNSSubdomain(s) {
			d.errorf(r, "Invalid cluster domain",
				"%q is not a cluster domain: it must be a DNS-1123 subdomain such as cluster.local (lowercase labels of letters, digits and '-' joined by dots, no trailing dot, at most 253 characters). Use the kubelet's --cluster-domain.", s)
		}
	}
	if s, r, ok := d.str(c, attrs, "assume_role"); ok {
		c.AssumeRole = s
		if !roleARNRe.MatchString(s) {
			d.errorf(r, "Invalid role ARN",
				`%q is not the ARN of an IAM role: assume_role takes "arn:aws:iam::<12-digit account ID>:role/<name>" (the partition one of %s; the name may have a path, role/meshd/mesh-admin), as shown by aws iam get-role.`, s, partitionNames(", "))
		}
	}
	if s, r, ok := d.str(c, attrs, "external_id"); ok {
		c.ExternalID = s
		if len(s) < 2 || len(s) > 1224 || !externalIDRe.MatchString(s) {
			d.errorf(r, "Invalid external ID",
				"external_id must be 2 to 1224 characters of letters, digits and +=,.@:/- (what STS accepts as an ExternalId), as the role's trust policy names it in sts:ExternalId.")
		}
	}

	if s, r, ok := d.str(c, attrs, "api_server"); ok {
		c.APIServer = s
		checkAPIServer(d, r, s)
	}
	d.decodeNetwork(c, attrs["network"])
	d.decodeClusterDNS(c, content.Blocks)

	if first, ok := d.clusterDecl[c.Name]; ok {
		d.errorf(b.DefRange, "Duplicate cluster name",
			"A cluster named %q was already declared at %s. Cluster names must be unique within a mesh: rename one of them.",
			c.Name, pos(first))
		// Kept out of Mesh.Clusters so that a name identifies one cluster; its values were checked above.
		return
	}
	d.clusterDecl[c.Name] = b.DefRange
	d.m.Clusters = append(d.m.Clusters, c)
}

// checkRouteTables reports malformed and repeated route table IDs.
func (d *decoder) checkRouteTables(c *Cluster, ids []string, rs []hcl.Range) {
	if len(ids) == 0 {
		d.errorf(c.AttrRange("route_table_ids"), "No route tables listed",
			"route_table_ids is empty, which would leave every route table unmanaged. List the route tables to manage, or remove route_table_ids to manage every route table of the VPC.")
		return
	}
	seen := map[string]bool{}
	for i, id := range ids {
		r := elem(rs, i, c.AttrRange("route_table_ids"))
		switch {
		case !rtbIDRe.MatchString(id):
			d.errorf(r, "Invalid route table ID", "%s", idDetail(id, "a route table ID", rtbIDRe, "rtb-", "rtb-0e4c2c6a8b5f3d1a7"))
		case seen[id]:
			d.errorf(r, "Duplicate route table ID", "%s is listed twice in route_table_ids; remove one of them.", id)
		}
		seen[id] = true
	}
}

// checkCIDRBlocks reports invalid and repeated CIDR blocks and returns the valid ones in canonical form.
func (d *decoder) checkCIDRBlocks(c *Cluster, blocks []string, rs []hcl.Range) []string {
	if len(blocks) == 0 {
		d.errorf(c.AttrRange("cidr_blocks"), "No CIDR blocks listed",
			"cidr_blocks is empty, which would mesh nothing of this cluster's VPC. List the VPC's CIDR blocks to mesh, or remove cidr_blocks to mesh all of them.")
		return nil
	}
	out := make([]string, 0, len(blocks))
	seen := map[netip.Prefix]bool{}
	for i, s := range blocks {
		r := elem(rs, i, c.AttrRange("cidr_blocks"))
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			d.errorf(r, "Invalid CIDR block", "%q is not a CIDR block: %s. Write an IPv4 block of the VPC, like 10.1.0.0/16.", s, prefixError(err))
			continue
		case !p.Addr().Is4():
			d.errorf(r, "Invalid CIDR block", "%s is not an IPv4 block. meshd routes only IPv4 between the clusters: list the VPC's IPv4 blocks.", s)
			continue
		case p.Masked() != p:
			d.errorf(r, "Invalid CIDR block",
				"%s has host bits set, so it is not the address of a block. The block that holds it is %s: write that instead.", s, p.Masked())
			continue
		case seen[p]:
			d.errorf(r, "Duplicate CIDR block", "%s is listed twice in cidr_blocks; remove one of them.", p)
			continue
		}
		seen[p] = true
		out = append(out, p.String())
	}
	if c.Elems["cidr_blocks"] != nil && len(out) != len(blocks) {
		// Element ranges must line up with CIDRBlocks; after an error they cannot, and Load failed anyway.
		delete(c.Elems, "cidr_blocks")
	}
	return out
}

// valueStatus tells how an attribute's value turned out.
type valueStatus int

const (
	valOK   valueStatus = iota
	valNull             // null: treated as unset, as in Terraform
	valBad              // wrong: a diagnostic was added
)

// value evaluates an attribute's expression without variables or functions (a spec holds literals only) and
// converts it to ty.
func (d *decoder) value(a *hcl.Attribute, ty cty.Type) (cty.Value, valueStatus) {
	v, diags := a.Expr.Value(nil)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, valBad
	}
	if v.IsNull() {
		return v, valNull
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity:   hcl.DiagError,
			Summary:    "Incorrect attribute value type",
			Detail:     fmt.Sprintf("Inappropriate value for attribute %q: %s. Write %s.", a.Name, err, typeHint(ty)),
			Subject:    a.Expr.Range().Ptr(),
			Expression: a.Expr,
		})
		return cty.NilVal, valBad
	}
	return cv, valOK
}

// str decodes a string attribute of a cluster. The attribute is recorded in c.Attrs whenever it is written
// (even with a wrong value), so that checks about which attributes go together do not pile onto a type error.
func (d *decoder) str(c *Cluster, attrs hcl.Attributes, name string) (string, hcl.Range, bool) {
	return d.strIn(c.Attrs, attrs, name)
}

// strIn is str for any block: the attribute's range goes into set under name.
func (d *decoder) strIn(set map[string]hcl.Range, attrs hcl.Attributes, name string) (string, hcl.Range, bool) {
	a := attrs[name]
	if a == nil {
		return "", hcl.Range{}, false
	}
	v, st := d.value(a, cty.String)
	if st != valNull {
		set[name] = a.Expr.Range()
	}
	if st != valOK {
		return "", hcl.Range{}, false
	}
	return v.AsString(), a.Expr.Range(), true
}

// strList decodes a list-of-strings attribute of a cluster, with the range of each element when the list is
// written as a literal.
func (d *decoder) strList(c *Cluster, attrs hcl.Attributes, name string) ([]string, []hcl.Range, bool) {
	return d.strListIn(c.Attrs, c.Elems, attrs, name)
}

// strListIn is strList for any block: ranges go into set and elems under name.
func (d *decoder) strListIn(set map[string]hcl.Range, elems map[string][]hcl.Range, attrs hcl.Attributes, name string) ([]string, []hcl.Range, bool) {
	a := attrs[name]
	if a == nil {
		return nil, nil, false
	}
	v, st := d.value(a, cty.List(cty.String))
	if st != valNull {
		set[name] = a.Expr.Range()
	}
	if st != valOK {
		return nil, nil, false
	}
	ok := true
	var rs []hcl.Range
	if exprs, diags := hcl.ExprList(a.Expr); !diags.HasErrors() && len(exprs) == v.LengthInt() {
		for _, e := range exprs {
			rs = append(rs, e.Range())
		}
		elems[name] = rs
	}
	var out []string
	for i, ev := range v.AsValueSlice() {
		if ev.IsNull() {
			d.errorf(elem(rs, i, a.Expr.Range()), "Incorrect attribute value type",
				"Element %d of %s is null. Remove it, or write a string.", i, name)
			ok = false
			continue
		}
		out = append(out, ev.AsString())
	}
	if !ok {
		delete(elems, name)
		return nil, nil, false
	}
	return out, rs, true
}

// prefixError is the reason netip gives, without its echo of the call and the input.
func prefixError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "): "); i >= 0 {
		return msg[i+3:]
	}
	return msg
}

func elem(rs []hcl.Range, i int, fallback hcl.Range) hcl.Range {
	if i < len(rs) {
		return rs[i]
	}
	return fallback
}

func typeHint(ty cty.Type) string {
	switch {
	case ty == cty.String:
		return `a quoted string, like "tidb-1"`
	case ty == cty.Bool:
		return "true or false"
	case ty == cty.Number:
		return "a number, like 50"
	case ty.IsListType():
		return `a list of strings, like ["a", "b"]`
	}
	return "a value of type " + ty.FriendlyName()
}

// pos is a declaration's position as a Detail names it: file:line.
func pos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line)
}

// decodeCorefileVia reads dns.corefile_via; unset (or null) leaves "", which means CorefileViaConfigMap.
func (d *decoder) decodeCorefileVia(a *hcl.Attribute) {
	d.meshEnum(a, "dns.corefile_via", &d.m.CorefileVia, []string{CorefileViaConfigMap, CorefileViaEKSAddon}, "Invalid Corefile destination",
		`corefile_via is %q; set it to "configmap" (meshd writes its blocks into kube-system/coredns only) or "eks_addon" (also into the EKS CoreDNS add-on's configurationValues, so that add-on updates keep them).`)
}

// meshEnum reads a mesh attribute a that takes one of allowed into dst, recording its range under key; any
// other value is an error whose detail is detail with the value.
func (d *decoder) meshEnum(a *hcl.Attribute, key string, dst *string, allowed []string, summary, detail string) {
	if a == nil {
		return
	}
	v, st := d.value(a, cty.String)
	if st != valOK {
		return
	}
	r := a.Expr.Range()
	d.m.Attrs[key] = r
	if s := v.AsString(); slices.Contains(allowed, s) {
		*dst = s
	} else {
		d.errorf(r, summary, detail, s)
	}
}

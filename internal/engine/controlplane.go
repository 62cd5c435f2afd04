package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/providers/kube"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

func init() {
	registerObserver(observer{name: "control planes", order: 50, kinds: []plan.Kind{plan.KindCPAccount, plan.KindKubeconfig},
		on: func(o *observation) bool { return o.e.controlPlanesOn(o.m, o.st) },
		observe: func(o *observation, ctx context.Context) (hcl.Diagnostics, error) {
			var diags hcl.Diagnostics
			o.in.ControlPlanes, diags = o.e.observeControlPlanes(ctx, o.v, o.m, o.st, o.destroy)
			return diags, nil
		},
		resolve: func(o *observation, _ context.Context) (hcl.Diagnostics, error) {
			return o.e.resolveEndpoints(o.m, o.in.ControlPlanes, o.aws.Observed, o.aws.Members), nil
		},
		evenWithErrors: true})
}

// now is the engine's clock: which tokens are due is decided against it.
func (e *Engine) now() time.Time {
	if e.Clock != nil {
		return e.Clock()
	}
	return time.Now()
}

// controlPlanesOn reports whether the plan needs the control-plane part: blocks to enforce, or objects the
// state records (a block removed, a destroy).
func (e *Engine) controlPlanesOn(m *spec.Mesh, st *state.State) bool {
	return e.Kube != nil && (len(m.ControlPlanes) > 0 || len(st.ControlPlanes) > 0)
}

// observeControlPlanes reads, in one batch, each control plane's Secret and the namespace it goes in, and
// in each data plane the account's ServiceAccount and binding and the ClusterRole it binds; and the
// recorded objects no block wants any more. Endpoints are filled in later (resolveEndpoints), once AWS is
// observed. A cluster_role missing in a data plane is an error at cluster_role (unless a replicate block
// copies it there in the same plan); so is an unreadable object or a missing namespace. With PartialDNS
// (meshd) they are warnings and only the block concerned is left out.
func (e *Engine) observeControlPlanes(ctx context.Context, v *passView, m *spec.Mesh, st *state.State, destroy bool) (*plan.ControlPlaneInput, hcl.Diagnostics) {
	contextOf := func(cluster string) string { return kubeContextOf(m, cluster) }
	type dataPlane struct {
		cluster           string
		sa, binding, role kube.ObjectQuery
	}
	type block struct {
		cp         *spec.ControlPlane
		secret, ns kube.ObjectQuery
		dataPlanes []dataPlane
	}
	var queries []kube.ObjectQuery
	var blocks []block
	if !destroy {
		for _, cp := range m.ControlPlanes {
			cctx := contextOf(cp.Cluster)
			b := block{cp: cp,
				secret: kube.ObjectQuery{Cluster: cp.Cluster, KubeContext: cctx, Kind: "Secret", Namespace: cp.SecretNamespace, Name: cp.SecretName},
				ns:     kube.ObjectQuery{Cluster: cp.Cluster, KubeContext: cctx, Kind: "Namespace", Name: cp.SecretNamespace}}
			queries = append(queries, b.secret, b.ns)
			name := plan.CPAccountName(cp.Name)
			for _, t := range cp.Targets(m) {
				dctx := contextOf(t)
				dp := dataPlane{cluster: t,
					sa:      kube.ObjectQuery{Cluster: t, KubeContext: dctx, Kind: "ServiceAccount", Namespace: plan.CPAccountNamespace, Name: name},
					binding: kube.ObjectQuery{Cluster: t, KubeContext: dctx, Kind: "ClusterRoleBinding", Name: name},
					role:    kube.ObjectQuery{Cluster: t, KubeContext: dctx, Kind: "ClusterRole", Name: cp.ClusterRole}}
				b.dataPlanes = append(b.dataPlanes, dp)
				queries = append(queries, dp.sa, dp.binding, dp.role)
			}
			blocks = append(blocks, b)
		}
	}
	wanted := map[string]bool{}
	for _, b := range blocks {
		wanted[plan.KubeconfigAddress(b.cp.Name)] = true
		for _, dp := range b.dataPlanes {
			wanted[plan.CPAccountAddress(b.cp.Name, dp.cluster)] = true
		}
	}
	orphans := map[string][]kube.ObjectQuery{}
	for _, addr := range slices.Sorted(maps.Keys(st.ControlPlanes)) {
		if wanted[addr] {
			continue
		}
		rec := st.ControlPlanes[addr]
		q := kube.ObjectQuery{Cluster: rec.Cluster, KubeContext: rec.KubeContext, Kind: rec.Kind, Namespace: rec.Namespace, Name: rec.Name}
		orphans[addr] = []kube.ObjectQuery{q}
		if rec.Kind == "ServiceAccount" {
			orphans[addr] = append(orphans[addr], kube.ObjectQuery{Cluster: rec.Cluster, KubeContext: rec.KubeContext, Kind: "ClusterRoleBinding", Name: rec.Name})
		}
		queries = append(queries, orphans[addr]...)
	}
	// Through the pass's view: a watch-triggered pass reads again only the clusters whose objects changed.
	results := e.observeObjects(ctx, v, queries)

	in := &plan.ControlPlaneInput{Now: e.now(), OrphanAccounts: map[string]plan.AccountObserved{}, OrphanSecrets: map[string]*kubeobj.Object{},
		LeftAlone: map[string]bool{}}
	var diags hcl.Diagnostics
	sev := hcl.DiagError
	if e.PartialDNS {
		sev = hcl.DiagWarning
	}
	for _, b := range blocks {
		cp := b.cp
		ok := true
		problem := func(rg hcl.Range, summary, detail string) {
			ok = false
			diags = append(diags, &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: detail, Subject: rg.Ptr()})
		}
		read := func(q kube.ObjectQuery) *kubeobj.Object {
			res := results[q]
			if res.Err != nil {
				problem(cp.DeclRange, "Cannot read a control plane's object",
					fmt.Sprintf("Control plane %q: reading %s %s in cluster %q: %v. Its kubeconfig is left as it is.", cp.Name, q.Kind, objectPath(q.Namespace, q.Name), q.Cluster, res.Err))
			}
			return res.Object
		}
		p := plan.ControlPlaneObserved{Name: cp.Name, Cluster: cp.Cluster, KubeContext: b.secret.KubeContext, Namespace: cp.SecretNamespace,
			SecretName: cp.SecretName, ClusterRole: cp.ClusterRole, TokenTTL: cp.TokenTTL, TokenFileDir: cp.TokenFileDir, Secret: read(b.secret)}
		if ns := read(b.ns); ns == nil && results[b.ns].Err == nil {
			problem(cp.AttrRange("secret"), "Secret namespace missing",
				fmt.Sprintf("Control plane %q writes its kubeconfig into namespace %q of cluster %q, which has no such namespace. meshd does not create namespaces: create it (KubeBlocks' own namespace, usually), or set secret to one that exists.",
					cp.Name, cp.SecretNamespace, cp.Cluster))
		}
		for _, dp := range b.dataPlanes {
			d := plan.DataPlaneObserved{Cluster: dp.cluster, KubeContext: dp.sa.KubeContext,
				Account: plan.AccountObserved{ServiceAccount: read(dp.sa), Binding: read(dp.binding)}}
			d.RoleFrom = replicatedRole(m, cp.ClusterRole, dp.cluster)
			d.Role = read(dp.role)
			if d.Role == nil && results[dp.role].Err == nil && d.RoleFrom == "" {
				problem(cp.AttrRange("cluster_role"), "ClusterRole missing",
					fmt.Sprintf("Control plane %q binds its account in data plane %q to ClusterRole %q, which that cluster does not have. Create it there, or replicate it from the control plane with a replicate block (kind = \"ClusterRole\").",
						cp.Name, dp.cluster, cp.ClusterRole))
			}
			p.DataPlanes = append(p.DataPlanes, d)
		}
		if ok {
			in.Planes = append(in.Planes, p)
			continue
		}
		// Left out this time (meshd plans around it): what it has is neither changed nor deleted.
		in.LeftAlone[plan.KubeconfigAddress(cp.Name)] = true
		for _, dp := range b.dataPlanes {
			in.LeftAlone[plan.CPAccountAddress(cp.Name, dp.cluster)] = true
		}
	}
	for addr, qs := range orphans {
		var failed bool
		var objs []*kubeobj.Object
		for _, q := range qs {
			res := results[q]
			failed = failed || res.Err != nil
			objs = append(objs, res.Object)
		}
		switch {
		case failed: // left alone (and its record kept) until it can be read
		case qs[0].Kind == "Secret":
			in.OrphanSecrets[addr] = objs[0]
		default:
			in.OrphanAccounts[addr] = plan.AccountObserved{ServiceAccount: objs[0], Binding: objs[1]}
		}
	}
	return in, diags
}

// replicatedRole is the address of the replica that copies ClusterRole role into cluster, if a replicate
// block does.
func replicatedRole(m *spec.Mesh, role, cluster string) string {
	for _, r := range m.Replicates {
		if r.FromKind == "ClusterRole" && r.FromName == role && slices.Contains(r.Targets(m), cluster) {
			return plan.ReplicaAddress(r.Name, cluster)
		}
	}
	return ""
}

// endpointSource reads a kube context's cluster entry in meshd's kubeconfig (the kube provider).
type endpointSource interface {
	Endpoint(kubeContext string) (kube.Endpoint, error)
}

// resolveEndpoints fills in how each control plane reaches each data plane: the cluster's api_server
// (with the TLS settings meshd's kubeconfig has for its context), else the EKS cluster's endpoint and CA,
// else the server and TLS settings of its context in meshd's kubeconfig. It also decides which EKS
// endpoints the control plane reaches privately (privateAPI).
func (e *Engine) resolveEndpoints(m *spec.Mesh, in *plan.ControlPlaneInput, obs *model.Observed, members []model.Member) hcl.Diagnostics {
	src, _ := e.clients.(endpointSource)
	var diags hcl.Diagnostics
	fromKubeconfig := func(c *spec.Cluster) (plan.KubeconfigDataPlane, error) {
		if src == nil {
			return plan.KubeconfigDataPlane{}, fmt.Errorf("this engine has no kubeconfig")
		}
		ep, err := src.Endpoint(c.KubeContext)
		return plan.KubeconfigDataPlane{Server: ep.Server, CAData: ep.CAData, InsecureSkipTLSVerify: ep.InsecureSkipTLSVerify, TLSServerName: ep.TLSServerName}, err
	}
	for i := range in.Planes {
		p := &in.Planes[i]
		for j := range p.DataPlanes {
			dp := &p.DataPlanes[j]
			c := m.Cluster(dp.Cluster)
			if c == nil {
				continue
			}
			var err error
			eks, isEKS := obs.APIEndpoints[c.Name]
			switch {
			case c.APIServer != "" && c.KubeContext == "" && isEKS:
				// kube_auth = "eks" without a context: the EKS cluster's CA, at the address api_server names
				dp.Endpoint = plan.KubeconfigDataPlane{Server: c.APIServer, CAData: eks.CAData}
			case c.APIServer != "":
				dp.Endpoint, err = fromKubeconfig(c)
				dp.Endpoint.Server = c.APIServer
			case isEKS && eks.Server != "":
				dp.Endpoint = plan.KubeconfigDataPlane{Server: eks.Server, CAData: eks.CAData}
			default:
				dp.Endpoint, err = fromKubeconfig(c)
			}
			if err != nil {
				rg := c.AttrRange("kube_context")
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No API server for a data plane",
					Detail:  fmt.Sprintf("Control plane %q needs the API server of data plane %q: %v. Set api_server on the cluster.", p.Name, c.Name, err),
					Subject: rg.Ptr()})
			}
		}
	}
	return append(diags, e.privateAPIs(m, in, obs, members)...)
}

// privateAPIs fills in the data planes each control plane reaches privately, for the blocks planned and
// those left alone this time (a destroy has neither), with the diagnostics of those it cannot reach.
func (e *Engine) privateAPIs(m *spec.Mesh, in *plan.ControlPlaneInput, obs *model.Observed, members []model.Member) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, cp := range m.ControlPlanes {
		planned := slices.ContainsFunc(in.Planes, func(p plan.ControlPlaneObserved) bool { return p.Name == cp.Name })
		if !planned && !in.LeftAlone[plan.KubeconfigAddress(cp.Name)] {
			continue
		}
		for _, dp := range cp.Targets(m) {
			c := m.Cluster(dp)
			eks, isEKS := obs.APIEndpoints[dp]
			if c == nil || !isEKS || c.APIServer != "" {
				continue
			}
			private, d := privateAPI(cp, c, eks, members)
			if private {
				in.PrivateAPIs = append(in.PrivateAPIs, plan.PrivateAPI{ControlPlane: cp.Name, Cluster: cp.Cluster, DataPlane: dp})
			}
			if d != nil {
				if e.PartialDNS {
					d.Severity = hcl.DiagWarning
				}
				diags = append(diags, d)
			}
		}
	}
	return diags
}

// privateAPI reports whether control plane p reaches data plane c's EKS endpoint privately, over the
// mesh's peering, so that the cluster security group must let it in on TCP 443: the endpoint has private
// access and both clusters are AWS members of the mesh (meshd peers their VPCs). AWS: "If you activate
// only private endpoint access, then Amazon EKS automatically advertises the endpoints' private IP
// addresses through the API server's public DNS name", so a client in a peered VPC reaches it with the
// endpoint as DescribeCluster reports it. With public access on as well the name resolves to public
// addresses outside the VPC; the rule is planned all the same, for a control plane whose DNS resolves it
// privately. An endpoint with private access only that the control plane cannot reach that way is the
// diagnostic returned.
func privateAPI(cp *spec.ControlPlane, c *spec.Cluster, eks model.APIEndpoint, members []model.Member) (bool, *hcl.Diagnostic) {
	if !eks.PrivateAccess {
		return false, nil
	}
	isMember := func(name string) bool {
		return slices.ContainsFunc(members, func(mem model.Member) bool { return mem.Name == name && mem.VPCID != "" })
	}
	if isMember(cp.Cluster) && isMember(c.Name) {
		return true, nil
	}
	if eks.PublicAccess {
		return false, nil // the public endpoint it is
	}
	unresolved := cp.Cluster
	if isMember(cp.Cluster) {
		unresolved = c.Name
	}
	why := fmt.Sprintf("cluster %q was not resolved as an AWS member of the mesh (its VPC was not observed)", unresolved)
	if slices.ContainsFunc(members, func(mem model.Member) bool { return mem.Name == unresolved && mem.External }) {
		why = fmt.Sprintf("cluster %q is external (network = \"external\"), a network meshd does not manage", unresolved)
	}
	rg := cp.ElemRange("data_planes", slices.Index(cp.DataPlanes, c.Name))
	return false, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Data plane's API endpoint is private and unreachable",
		Detail: fmt.Sprintf("EKS cluster %q (data plane %q of control_plane %q) has private endpoint access only, which a client reaches from its own VPC or a peered one; "+
			"%s, so the mesh does not peer the two clusters' VPCs. Make the control plane a mesh member with vpc_id or eks_cluster, turn on the endpoint's public access, "+
			"or set api_server on cluster %q to an address the control plane reaches (a proxy).", c.EKSCluster, c.Name, cp.Name, why, c.Name),
		Subject: rg.Ptr()}
}

package plan

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// KindCPAccount is a control plane's account in one data plane: a ServiceAccount and a ClusterRoleBinding
// of it to the block's cluster_role, both named CPAccountName. Ownership: meshd's labels on both, and the
// state's record (so that a removed data plane's account is deleted, and with it every token it issued).
//
// KindKubeconfig is the Secret in the control plane that holds the kubeconfig (key "kubeconfig", one
// context per data plane) and, with token_file_dir, each data plane's token under <cluster>.token.
// Ownership: meshd's labels on the Secret; a Secret of that name without them is a conflict. The tokens'
// issue and expiry times are in its annotation meshd.io/tokens (no secret there), where observation finds
// them; the tokens themselves exist only in the Secret and, between TokenRequest and the write, in memory.
const (
	KindCPAccount  Kind = "cp_account"
	KindKubeconfig Kind = "kubeconfig"
)

func init() {
	Register(KindInfo{
		Kind: KindCPAccount, Address: "cp_account[<control plane>:<cluster>]", Rank: 6,
		planner:  (*computer).controlPlanes, // and the kubeconfigs
		Provider: ProviderKube, Decode: decodeAs[CPAccount], RepeatHint: hintKube,
		Touches: func(r Resource) ObjectRef {
			a := r.(CPAccount)
			return ObjectRef{Cluster: a.Cluster, APIVersion: "v1", Kind: "ServiceAccount", Namespace: a.Namespace, Name: a.Name}
		},
		Watches: func(m *spec.Mesh) []Watch {
			var out []Watch
			for _, cp := range m.ControlPlanes {
				for _, dp := range cp.Targets(m) {
					out = append(out, Watch{Cluster: dp, APIVersion: "v1", Resource: "serviceaccounts",
						Namespace: CPAccountNamespace, Name: CPAccountName(cp.Name)})
				}
			}
			return out
		},
		RBAC: cpAccountRBAC,
		State: &Records{
			List: func(st *state.State) []state.Entry { return locatedEntries(KindCPAccount, st.ControlPlanes) },
			// The control planes' records are one map: the account's kind fixes the kubeconfig's too.
			Fix: func(p *Plan, st *state.State) {
				fixRecords(p.ForgetControlPlanes, p.RecordControlPlanes, st.RemoveControlPlane, st.SetControlPlane)
			},
		},
	})
	Register(KindInfo{
		Kind: KindKubeconfig, Address: "kubeconfig[<control plane>]", Rank: 7,
		Provider: ProviderKube, Decode: decodeAs[Kubeconfig], RepeatHint: hintKube,
		Touches: func(r Resource) ObjectRef {
			k := r.(Kubeconfig)
			return ObjectRef{Cluster: k.Cluster, APIVersion: "v1", Kind: "Secret", Namespace: k.Namespace, Name: k.Name}
		},
		Watches: func(m *spec.Mesh) []Watch {
			var out []Watch
			for _, cp := range m.ControlPlanes {
				out = append(out, Watch{Cluster: cp.Cluster, APIVersion: "v1", Resource: "secrets",
					Namespace: cp.SecretNamespace, Name: cp.SecretName})
			}
			return out
		},
		RBAC:  kubeconfigRBAC,
		State: &Records{List: func(st *state.State) []state.Entry { return locatedEntries(KindKubeconfig, st.ControlPlanes) }},
	})
}

// cpAccountRBAC: in each data plane, the control plane's ServiceAccount (a token for it, which is how the
// control plane reaches the data plane) and its ClusterRoleBinding to cluster_role. Kubernetes lets meshd
// write a binding to a role whose permissions it does not hold only with "bind" on that role: meshd gets
// bind on cluster_role by name, and reads it (the spec check looks at its rules).
func cpAccountRBAC(m *spec.Mesh) []access.Rule {
	const rbacGroup = "rbac.authorization.k8s.io"
	var out []access.Rule
	for _, cp := range m.ControlPlanes {
		name := []string{CPAccountName(cp.Name)}
		for _, dp := range cp.Targets(m) {
			out = append(out,
				rbacRule(dp, CPAccountNamespace, "", "serviceaccounts", name,
					fmt.Sprintf("Control plane %q's ServiceAccount: read, updated and deleted, never without meshd's labels.", cp.Name),
					"get", "update", "delete"),
				rbacRule(dp, CPAccountNamespace, "", "serviceaccounts", nil,
					whyCreate+fmt.Sprintf(" Here: control plane %q's ServiceAccount.", cp.Name), "create"),
				rbacRule(dp, CPAccountNamespace, "", "serviceaccounts/token", name,
					fmt.Sprintf("Tokens (TokenRequest) for control plane %q's ServiceAccount only, for its kubeconfig Secret.", cp.Name), "create"),
				rbacRule(dp, "", rbacGroup, "clusterrolebindings", name,
					fmt.Sprintf("Control plane %q's ClusterRoleBinding: read, deleted (and created again) when its role changes, never without meshd's labels.", cp.Name),
					"get", "update", "delete"),
				rbacRule(dp, "", rbacGroup, "clusterrolebindings", nil,
					whyCreate+fmt.Sprintf(" Here: control plane %q's ClusterRoleBinding; Kubernetes still refuses one to a role meshd may not bind.", cp.Name), "create"),
				rbacRule(dp, "", rbacGroup, "clusterroles", []string{cp.ClusterRole},
					fmt.Sprintf("The cluster_role of control plane %q: read (its rules are checked), and bound to its ServiceAccount, which Kubernetes allows only with bind on it. With create on ClusterRoleBindings, bind lets the holder of this identity bind this role to anyone: it is as powerful as the role.", cp.Name),
					"get", "bind"))
		}
	}
	return out
}

// kubeconfigRBAC: the control plane's kubeconfig Secret, in its namespace, which meshd checks exists.
func kubeconfigRBAC(m *spec.Mesh) []access.Rule {
	var out []access.Rule
	for _, cp := range m.ControlPlanes {
		out = append(out,
			rbacRule(cp.Cluster, cp.SecretNamespace, "", "secrets", []string{cp.SecretName},
				fmt.Sprintf("Control plane %q's kubeconfig Secret: read (its token times), written, deleted, never without meshd's labels.", cp.Name),
				"get", "update", "delete"),
			rbacRule(cp.Cluster, cp.SecretNamespace, "", "secrets", nil,
				whyCreate+fmt.Sprintf(" Here: control plane %q's kubeconfig Secret.", cp.Name), "create"),
			namespaceRule(cp.Cluster, cp.SecretNamespace))
	}
	return out
}

// Names, keys and annotations of the control-plane kinds.
const (
	// CPAccountNamespace holds the data planes' ServiceAccounts: it exists in every cluster.
	CPAccountNamespace = "kube-system"
	// LabelControlPlane names the control_plane block an account or Secret is for.
	LabelControlPlane = "meshd.io/control-plane"
	// AnnotationTokens holds, as JSON by data plane, when each token was issued and expires (TokenRecord).
	AnnotationTokens = "meshd.io/tokens"
	// SecretTypeKubeconfig is the type KubeBlocks documents for its multi-cluster Secret.
	SecretTypeKubeconfig = "kubernetes.kubeconfig"
	// KubeconfigKey is the Secret key of the kubeconfig.
	KubeconfigKey = "kubeconfig"
	// RenewAfter is the fraction of a token's lifetime after which it is renewed.
	RenewAfter = 0.8
)

// CPAccountName is the name of a control plane's ServiceAccount and ClusterRoleBinding in its data planes.
func CPAccountName(controlPlane string) string { return "meshd-cp-" + controlPlane }

// CPAccountAddress is the address of a control plane's account in a data plane.
func CPAccountAddress(controlPlane, cluster string) string {
	return fmt.Sprintf("%s[%s:%s]", KindCPAccount, controlPlane, cluster)
}

// KubeconfigAddress is the address of a control plane's kubeconfig Secret.
func KubeconfigAddress(controlPlane string) string {
	return fmt.Sprintf("%s[%s]", KindKubeconfig, controlPlane)
}

// CPAccount is one data plane's ServiceAccount and binding, as the plan shows them.
type CPAccount struct {
	ControlPlane string            `json:"control_plane"`
	Cluster      string            `json:"cluster"`
	KubeContext  string            `json:"kube_context"`
	Namespace    string            `json:"namespace"`
	Name         string            `json:"name"`
	ClusterRole  string            `json:"cluster_role,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	// UID and BindingUID are the observed objects' (Before): a delete is refused if one was replaced.
	UID        string `json:"uid,omitempty"`
	BindingUID string `json:"binding_uid,omitempty"`
}

func (CPAccount) Kind() Kind { return KindCPAccount }

func (a CPAccount) Attrs() []Attr {
	attrs := []Attr{{Name: "service_account", Value: a.Namespace + "/" + a.Name}}
	if a.ClusterRole != "" {
		attrs = append(attrs, Attr{Name: "binding", Value: "ClusterRoleBinding " + a.Name + " to ClusterRole " + a.ClusterRole})
	}
	return append(attrs, Attr{Name: "labels", Value: joinMap(a.Labels)})
}

// Record is how the state remembers the account (by its ServiceAccount; the binding has the same name).
func (a CPAccount) Record() state.ReplicaRecord {
	return state.ReplicaRecord{Cluster: a.Cluster, KubeContext: a.KubeContext, Kind: "ServiceAccount", Namespace: a.Namespace, Name: a.Name}
}

// Kubeconfig is the control plane's Secret, as the plan shows it: key names, a hash of the kubeconfig,
// and for each data plane its server and its token's expiry and renewal time — never a token.
type Kubeconfig struct {
	ControlPlane string `json:"control_plane"`
	Cluster      string `json:"cluster"`
	KubeContext  string `json:"kube_context"`
	Namespace    string `json:"namespace"`
	Name         string `json:"name"`
	// TokenFileDir is where the operator mounts the Secret; "" puts the tokens in the kubeconfig.
	TokenFileDir string            `json:"token_file_dir"`
	TokenTTL     time.Duration     `json:"token_ttl"`
	Labels       map[string]string `json:"labels,omitempty"`
	Keys         []string          `json:"keys,omitempty"`
	// KubeconfigHash is the SHA-256 of the kubeconfig key; "" when it is known only after apply (tokens
	// inline, one of them renewed).
	KubeconfigHash string                `json:"kubeconfig_hash,omitempty"`
	DataPlanes     []KubeconfigDataPlane `json:"data_planes,omitempty"`
	UID            string                `json:"uid,omitempty"`
}

// KubeconfigDataPlane is one context of the kubeconfig.
type KubeconfigDataPlane struct {
	Cluster     string `json:"cluster"`
	KubeContext string `json:"kube_context"`
	Server      string `json:"server"`
	// CAData are the public CA certificates of the server (from EKS or meshd's kubeconfig), not a secret.
	CAData                []byte `json:"ca_data,omitempty"`
	InsecureSkipTLSVerify bool   `json:"insecure_skip_tls_verify,omitempty"`
	TLSServerName         string `json:"tls_server_name,omitempty"`
	// The current token's times (zero when there is none) and, when Renew is set, why apply requests a new one.
	Issued  time.Time `json:"issued,omitzero"`
	Expires time.Time `json:"expires,omitzero"`
	RenewAt time.Time `json:"renew_at,omitzero"`
	Renew   string    `json:"renew,omitempty"`
	// AccountUID is the ServiceAccount the current token belongs to.
	AccountUID string `json:"account_uid,omitempty"`
}

func (Kubeconfig) Kind() Kind { return KindKubeconfig }

func (k Kubeconfig) Attrs() []Attr {
	attrs := []Attr{
		{Name: "object", Value: fmt.Sprintf("Secret %s/%s (type %s)", k.Namespace, k.Name, SecretTypeKubeconfig)},
		{Name: "keys", Value: strings.Join(k.Keys, ", ")},
	}
	if k.KubeconfigHash == "" {
		attrs = append(attrs, Attr{Name: "kubeconfig_hash", Unknown: true})
	} else {
		attrs = append(attrs, Attr{Name: "kubeconfig_hash", Value: "sha256:" + k.KubeconfigHash, Sensitive: true})
	}
	for _, dp := range k.DataPlanes {
		where := "token inline"
		if k.TokenFileDir != "" {
			where = "token file " + k.TokenFileDir + "/" + spec.TokenKey(dp.Cluster)
		}
		if dp.Server != "" {
			attrs = append(attrs, Attr{Name: "context." + dp.Cluster, Value: "server " + dp.Server + ", " + where})
		}
		attrs = append(attrs, Attr{Name: "token." + dp.Cluster, Value: dp.tokenSummary(k.TokenTTL)})
	}
	return append(attrs, Attr{Name: "labels", Value: joinMap(k.Labels)})
}

func (dp KubeconfigDataPlane) tokenSummary(ttl time.Duration) string {
	switch {
	case dp.Renew != "":
		return fmt.Sprintf("new token for %s (%s)", ttl, dp.Renew)
	case dp.Expires.IsZero():
		return "none"
	}
	return fmt.Sprintf("expires %s, renewed from %s", dp.Expires.UTC().Format(time.RFC3339), dp.RenewAt.UTC().Format(time.RFC3339))
}

// Record is how the state remembers the Secret.
func (k Kubeconfig) Record() state.ReplicaRecord {
	return state.ReplicaRecord{Cluster: k.Cluster, KubeContext: k.KubeContext, Kind: "Secret", Namespace: k.Namespace, Name: k.Name}
}

// Entries are the kubeconfig's entries with the tokens given (by cluster; in token-file mode they are not
// part of the kubeconfig and may be nil).
func (k Kubeconfig) Entries(tokens map[string]string) []kubeobj.KubeconfigEntry {
	var out []kubeobj.KubeconfigEntry
	for _, dp := range k.DataPlanes {
		e := kubeobj.KubeconfigEntry{Name: dp.Cluster, Server: dp.Server, CAData: dp.CAData,
			InsecureSkipTLSVerify: dp.InsecureSkipTLSVerify, TLSServerName: dp.TLSServerName}
		if k.TokenFileDir != "" {
			e.TokenFile = k.TokenFileDir + "/" + spec.TokenKey(dp.Cluster)
		} else {
			e.Token = tokens[dp.Cluster]
		}
		out = append(out, e)
	}
	return out
}

// KeptTokens are the tokens (and their records) of the Secret cur that a write of k keeps, by data plane:
// those of k's data planes that the plan does not renew and cur still holds. The executor requests the
// others. cur nil keeps none.
func (k Kubeconfig) KeptTokens(cur *kubeobj.Object) (map[string]string, map[string]TokenRecord) {
	tokens, kept := map[string]string{}, map[string]TokenRecord{}
	if cur == nil {
		return tokens, kept
	}
	data := kubeobj.SecretBytes(*cur)
	records := ParseTokenRecords(cur.Annotations)
	inline := map[string]string{}
	if k.TokenFileDir == "" {
		inline, _ = kubeobj.InlineTokens(data[KubeconfigKey])
	}
	for _, dp := range k.DataPlanes {
		token := inline[dp.Cluster]
		if k.TokenFileDir != "" {
			token = string(data[spec.TokenKey(dp.Cluster)])
		}
		if rec, ok := records[dp.Cluster]; ok && dp.Renew == "" && token != "" {
			tokens[dp.Cluster], kept[dp.Cluster] = token, rec
		}
	}
	return tokens, kept
}

// Secret is the Secret that holds k with the given tokens and their records, by data plane.
func (k Kubeconfig) Secret(tokens map[string]string, records map[string]TokenRecord) (kubeobj.Object, error) {
	kc, err := kubeobj.RenderKubeconfig(k.Entries(tokens))
	if err != nil {
		return kubeobj.Object{}, err
	}
	data := map[string][]byte{KubeconfigKey: kc}
	if k.TokenFileDir != "" {
		for c, t := range tokens {
			data[spec.TokenKey(c)] = []byte(t)
		}
	}
	s, err := kubeobj.New("Secret", k.Namespace, k.Name, map[string]any{"type": SecretTypeKubeconfig, "data": kubeobj.SecretData(data)})
	s.Labels = maps.Clone(k.Labels)
	s.Annotations = map[string]string{AnnotationTokens: FormatTokenRecords(records)}
	return s, err
}

// TokenRecord is one data plane's entry in the AnnotationTokens annotation.
type TokenRecord struct {
	Issued     time.Time     `json:"issued"`
	Expires    time.Time     `json:"expires"`
	TTL        time.Duration `json:"ttl"`
	AccountUID string        `json:"account_uid"`
}

// RenewAt is when a token is renewed: once RenewAfter of the lifetime the API server granted has passed.
func (r TokenRecord) RenewAt() time.Time {
	return r.Issued.Add(time.Duration(RenewAfter * float64(r.Expires.Sub(r.Issued)))).UTC()
}

// ParseTokenRecords reads the AnnotationTokens annotation; a missing or unreadable one has no records
// (every token is then renewed).
func ParseTokenRecords(annotations map[string]string) map[string]TokenRecord {
	out := map[string]TokenRecord{}
	if s, ok := annotations[AnnotationTokens]; ok {
		_ = json.Unmarshal([]byte(s), &out)
	}
	return out
}

// FormatTokenRecords writes the AnnotationTokens annotation.
func FormatTokenRecords(recs map[string]TokenRecord) string {
	b, _ := json.Marshal(recs) // maps are written in key order
	return string(b)
}

// ControlPlaneInput is what the control-plane part of Compute needs.
type ControlPlaneInput struct {
	// Now decides which tokens are due for renewal (Compute reads no clock).
	Now    time.Time
	Planes []ControlPlaneObserved
	// OrphanAccounts and OrphanSecrets are the observed recorded objects no block wants, by address (a nil
	// object: gone). One that could not be observed has no entry and is left alone.
	OrphanAccounts map[string]AccountObserved
	OrphanSecrets  map[string]*kubeobj.Object
	// LeftAlone are the addresses of blocks the spec has but that could not be planned this time (an object
	// unreadable, a role missing; meshd plans around them): their recorded objects are not orphans.
	LeftAlone map[string]bool
	// PrivateAPIs are the data planes reached privately, of every block in the spec, also of those left
	// alone (their network stays as it is).
	PrivateAPIs []PrivateAPI
}

// ControlPlaneObserved is one control_plane block as observed.
type ControlPlaneObserved struct {
	Name         string
	Cluster      string
	KubeContext  string
	Namespace    string
	SecretName   string
	ClusterRole  string
	TokenTTL     time.Duration
	TokenFileDir string
	// Secret is the observed Secret (nil: none). Its data stays in memory: the planner compares it and
	// never copies it into a resource.
	Secret     *kubeobj.Object
	DataPlanes []DataPlaneObserved
}

// DataPlaneObserved is one data plane of a control plane.
type DataPlaneObserved struct {
	Cluster     string
	KubeContext string
	// Endpoint is how the control plane reaches it.
	Endpoint KubeconfigDataPlane
	Account  AccountObserved
	// RoleFrom is the address of the replica change that makes the cluster_role there in this plan, if any.
	RoleFrom string
	// Role is the cluster_role as observed there (nil: none, or not read), whose rules privileges checks.
	Role *kubeobj.Object
}

// PrivateAPI is a data plane whose EKS endpoint a control plane reaches privately, over the mesh's
// peering: the data plane's EKS cluster security group lets in TCP 443 from the control plane's CIDR
// blocks (apiRules).
type PrivateAPI struct {
	ControlPlane string // the block's name
	Cluster      string // the control plane's cluster
	DataPlane    string
}

// AccountObserved are a data plane's ServiceAccount and ClusterRoleBinding as observed (nil: none).
type AccountObserved struct {
	ServiceAccount *kubeobj.Object
	Binding        *kubeobj.Object
}

// controlPlanes plans every control plane's accounts and Secret:
//
//	object                   | plan
//	-------------------------+------------------------------------------------------------------------
//	account missing          | + create (ServiceAccount and binding); its token is renewed
//	binding to another role  | ~ update (the binding is replaced: its roleRef cannot change)
//	account not meshd's      | conflict; the data plane is left out of the kubeconfig
//	Secret missing           | + create, every token new
//	Secret not meshd's       | conflict, never overwritten
//	Secret differs, or a token is due (80% of its lifetime passed, missing, of another account) | ~ update
//	recorded, not wanted     | - delete (a data plane removed, a block removed, destroy)
func (c *computer) controlPlanes() {
	in := c.in.ControlPlanes
	if in == nil {
		return
	}
	wanted := map[string]bool{}
	if !c.in.Destroy {
		for _, p := range in.Planes {
			wanted[KubeconfigAddress(p.Name)] = true
			for _, dp := range p.DataPlanes {
				wanted[CPAccountAddress(p.Name, dp.Cluster)] = true
			}
			c.controlPlane(p)
		}
	}
	reason := "no longer wanted"
	if c.in.Destroy {
		reason = "destroy"
	}
	for _, addr := range slices.Sorted(maps.Keys(c.in.State.ControlPlanes)) {
		if wanted[addr] || in.LeftAlone[addr] {
			continue
		}
		rec := c.in.State.ControlPlanes[addr]
		if rec.Kind == "Secret" {
			obs, observed := in.OrphanSecrets[addr]
			switch {
			case !observed:
			case obs == nil || !model.OwnedBy(obs.Labels, c.in.Mesh):
				c.plan.ForgetControlPlanes = append(c.plan.ForgetControlPlanes, addr)
			default:
				before := observedKubeconfig(addr, rec, *obs, nil)
				c.add(Change{Action: Delete, Address: addr, Kind: KindKubeconfig, Reason: reason, Before: before})
			}
			continue
		}
		obs, observed := in.OrphanAccounts[addr]
		if !observed {
			continue
		}
		before := CPAccount{Cluster: rec.Cluster, KubeContext: rec.KubeContext, Namespace: rec.Namespace, Name: rec.Name}
		before.ControlPlane, _ = addressArgs(KindCPAccount, addr)
		if sa := obs.ServiceAccount; sa != nil && model.OwnedBy(sa.Labels, c.in.Mesh) {
			before.UID, before.Labels = sa.UID, sa.Labels
		}
		if b := obs.Binding; b != nil && model.OwnedBy(b.Labels, c.in.Mesh) {
			before.BindingUID, before.ClusterRole = b.UID, roleRefName(*b)
		}
		if before.UID == "" && before.BindingUID == "" {
			c.plan.ForgetControlPlanes = append(c.plan.ForgetControlPlanes, addr)
			continue
		}
		r := reason
		if !c.in.Destroy && c.in.State.ControlPlanes[KubeconfigAddress(before.ControlPlane)] != (state.ReplicaRecord{}) {
			r = "no longer a data plane of control_plane " + fmt.Sprintf("%q", before.ControlPlane) + ": its tokens die with its ServiceAccount"
		}
		c.add(Change{Action: Delete, Address: addr, Kind: KindCPAccount, Reason: r, Before: before})
	}
}

func (c *computer) recordControlPlane(addr string, rec state.ReplicaRecord) {
	if c.in.State.ControlPlanes[addr] == rec {
		return
	}
	if c.plan.RecordControlPlanes == nil {
		c.plan.RecordControlPlanes = map[string]state.ReplicaRecord{}
	}
	c.plan.RecordControlPlanes[addr] = rec
}

func (c *computer) controlPlane(p ControlPlaneObserved) {
	labels := kubeobj.Own(kubeobj.Object{Labels: map[string]string{LabelControlPlane: p.Name}}, c.in.Mesh).Labels
	want := Kubeconfig{ControlPlane: p.Name, Cluster: p.Cluster, KubeContext: p.KubeContext, Namespace: p.Namespace,
		Name: p.SecretName, TokenFileDir: p.TokenFileDir, TokenTTL: p.TokenTTL, Labels: labels}
	var accountChanges []string
	newAccount := map[string]bool{}
	for _, dp := range p.DataPlanes {
		addr, ok, isNew := c.cpAccount(p, dp, labels)
		if !ok {
			continue // a conflict: this data plane stays out of the kubeconfig
		}
		if addr != "" {
			accountChanges = append(accountChanges, addr)
		}
		newAccount[dp.Cluster] = isNew
		e := dp.Endpoint
		e.Cluster, e.KubeContext = dp.Cluster, dp.KubeContext
		if sa := dp.Account.ServiceAccount; sa != nil {
			e.AccountUID = sa.UID
		}
		want.DataPlanes = append(want.DataPlanes, e)
	}

	addr := KubeconfigAddress(p.Name)
	want.Keys = []string{KubeconfigKey}
	if p.TokenFileDir != "" {
		for _, dp := range want.DataPlanes {
			want.Keys = append(want.Keys, spec.TokenKey(dp.Cluster))
		}
	}
	slices.Sort(want.Keys)
	if p.Secret != nil && !model.OwnedBy(p.Secret.Labels, c.in.Mesh) {
		c.plan.Conflicts = append(c.plan.Conflicts, Conflict{Address: addr,
			Summary: fmt.Sprintf("Cluster %s already has a Secret %s/%s that meshd did not create", p.Cluster, p.Namespace, p.SecretName),
			Detail: fmt.Sprintf("meshd wants to write the kubeconfig of control_plane %q there, but the Secret does not carry meshd's labels (%s=%s, %s=%s), so it is left alone and never overwritten. "+
				"Delete it yourself, or set secret to another name.", p.Name, model.LabelManagedBy, model.ManagedByMeshd, model.LabelMesh, c.in.Mesh)})
		return
	}

	var data map[string][]byte
	var records map[string]TokenRecord
	inline := map[string]string{}
	if p.Secret != nil {
		data = kubeobj.SecretBytes(*p.Secret)
		records = ParseTokenRecords(p.Secret.Annotations)
		if p.TokenFileDir == "" {
			inline, _ = kubeobj.InlineTokens(data[KubeconfigKey])
		}
	}
	var reasons []string
	renewed := false
	for i := range want.DataPlanes {
		dp := &want.DataPlanes[i]
		rec, ok := records[dp.Cluster]
		token := inline[dp.Cluster]
		if p.TokenFileDir != "" {
			token = string(data[spec.TokenKey(dp.Cluster)])
		}
		switch {
		case p.Secret == nil:
			dp.Renew = "the Secret is new"
		case !ok:
			dp.Renew = "no token yet"
		case newAccount[dp.Cluster] || rec.AccountUID != dp.AccountUID:
			dp.Renew = "its ServiceAccount is new"
		case token == "":
			dp.Renew = "its token is missing from the Secret"
		case rec.TTL != p.TokenTTL:
			dp.Renew = fmt.Sprintf("token_ttl changed from %s", rec.TTL)
		case !c.in.ControlPlanes.Now.Before(rec.RenewAt()):
			dp.Renew = fmt.Sprintf("%d%% of its lifetime has passed", int(RenewAfter*100))
		}
		if ok && dp.Renew == "" {
			dp.Issued, dp.Expires, dp.RenewAt = rec.Issued, rec.Expires, rec.RenewAt()
			if c.plan.NextRenewal == nil || dp.RenewAt.Before(*c.plan.NextRenewal) {
				t := dp.RenewAt
				c.plan.NextRenewal = &t
			}
		}
		if dp.Renew != "" {
			renewed = true
			if p.Secret != nil {
				reasons = append(reasons, fmt.Sprintf("token of %s renewed: %s", dp.Cluster, dp.Renew))
			}
		}
	}
	if !renewed || p.TokenFileDir != "" {
		if kc, err := kubeobj.RenderKubeconfig(want.Entries(inline)); err == nil {
			want.KubeconfigHash = kubeconfigHash(kc)
			if p.Secret != nil && string(data[KubeconfigKey]) != string(kc) {
				reasons = append(reasons, "the kubeconfig differs (a context, server or CA changed)")
			}
		}
	}

	if p.Secret == nil {
		c.add(Change{Action: Create, Address: addr, Kind: KindKubeconfig, Reason: "Secret missing", After: want, DependsOn: accountChanges})
		return
	}
	want.UID = p.Secret.UID
	c.recordControlPlane(addr, want.Record())
	if !slices.Equal(slices.Sorted(maps.Keys(data)), want.Keys) {
		reasons = append(reasons, "its keys differ")
	}
	if t, _ := p.Secret.Content["type"].(string); t != SecretTypeKubeconfig {
		reasons = append(reasons, fmt.Sprintf("its type is %q", t))
	}
	for name := range records {
		if !slices.ContainsFunc(want.DataPlanes, func(dp KubeconfigDataPlane) bool { return dp.Cluster == name }) {
			reasons = append(reasons, "data plane "+name+" removed")
		}
	}
	for k, v := range labels {
		if p.Secret.Labels[k] != v {
			reasons = append(reasons, "labels["+k+"]")
		}
	}
	if len(reasons) == 0 {
		return
	}
	slices.Sort(reasons)
	c.add(Change{Action: Update, Address: addr, Kind: KindKubeconfig, Reason: strings.Join(slices.Compact(reasons), "; "),
		Before: observedKubeconfig(addr, want.Record(), *p.Secret, &want), After: want, DependsOn: accountChanges})
}

// cpAccount plans one data plane's account. It returns the change's address if there is one, whether the
// data plane can go into the kubeconfig (false: someone else's object is in the way), and whether the
// ServiceAccount is made now (its token must then be new).
func (c *computer) cpAccount(p ControlPlaneObserved, dp DataPlaneObserved, labels map[string]string) (string, bool, bool) {
	addr := CPAccountAddress(p.Name, dp.Cluster)
	want := CPAccount{ControlPlane: p.Name, Cluster: dp.Cluster, KubeContext: dp.KubeContext, Namespace: CPAccountNamespace,
		Name: CPAccountName(p.Name), ClusterRole: p.ClusterRole, Labels: labels}
	sa, b := dp.Account.ServiceAccount, dp.Account.Binding
	for _, o := range []*kubeobj.Object{sa, b} {
		if o != nil && !model.OwnedBy(o.Labels, c.in.Mesh) {
			c.plan.Conflicts = append(c.plan.Conflicts, Conflict{Address: addr,
				Summary: fmt.Sprintf("Cluster %s already has a %s that meshd did not create", dp.Cluster, o.Ref()),
				Detail: fmt.Sprintf("meshd wants it as control_plane %q's account there, but it does not carry meshd's labels (%s=%s, %s=%s), so it is left alone and %s stays out of the kubeconfig. Delete or rename it.",
					p.Name, model.LabelManagedBy, model.ManagedByMeshd, model.LabelMesh, c.in.Mesh, dp.Cluster)})
			return "", false, false
		}
	}
	var deps []string
	if dp.RoleFrom != "" && c.plan.Find(dp.RoleFrom) != nil {
		deps = []string{dp.RoleFrom}
	}
	if sa == nil || b == nil {
		missing := "ServiceAccount and ClusterRoleBinding missing"
		switch {
		case sa != nil:
			missing = "ClusterRoleBinding missing"
		case b != nil:
			missing = "ServiceAccount missing"
		}
		c.add(Change{Action: Create, Address: addr, Kind: KindCPAccount, Reason: missing, After: want, DependsOn: deps})
		return addr, true, sa == nil
	}
	want.UID, want.BindingUID = sa.UID, b.UID
	c.recordControlPlane(addr, want.Record())
	before := want
	before.ClusterRole, before.Labels = roleRefName(*b), b.Labels
	var reasons []string
	if before.ClusterRole != p.ClusterRole {
		reasons = append(reasons, fmt.Sprintf("the binding is to ClusterRole %q (a roleRef cannot change in place: the binding is replaced)", before.ClusterRole))
	}
	if !bindsAccount(*b, want.Namespace, want.Name) {
		reasons = append(reasons, "the binding's subjects differ")
	}
	if len(reasons) == 0 {
		return "", true, false
	}
	c.add(Change{Action: Update, Address: addr, Kind: KindCPAccount, Reason: strings.Join(reasons, "; "), Before: before, After: want, DependsOn: deps})
	return addr, true, false
}

// CPBinding is the ClusterRoleBinding of a control plane's account.
func CPBinding(a CPAccount) kubeobj.Object {
	o, _ := kubeobj.New("ClusterRoleBinding", "", a.Name, map[string]any{
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": a.ClusterRole},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "namespace": a.Namespace, "name": a.Name}},
	})
	o.Labels = a.Labels
	return o
}

func roleRefName(b kubeobj.Object) string {
	ref, _ := b.Content["roleRef"].(map[string]any)
	name, _ := ref["name"].(string)
	return name
}

func bindsAccount(b kubeobj.Object, namespace, name string) bool {
	subjects, _ := b.Content["subjects"].([]any)
	if len(subjects) != 1 {
		return false
	}
	s, _ := subjects[0].(map[string]any)
	return s["kind"] == "ServiceAccount" && s["namespace"] == namespace && s["name"] == name
}

// kubeconfigHash is the content hash of a Secret holding only the kubeconfig kc, as the plan shows it.
func kubeconfigHash(kc []byte) string {
	return kubeobj.ContentHash(kubeobj.Object{Kind: "Secret", Content: map[string]any{"data": kubeobj.SecretData(map[string][]byte{KubeconfigKey: kc})}})
}

// observedKubeconfig describes an observed Secret for the plan: its keys, the hash of its kubeconfig key
// and the data planes its annotation records, with the servers of want (when updating to it) for those it
// keeps.
func observedKubeconfig(addr string, rec state.ReplicaRecord, s kubeobj.Object, want *Kubeconfig) Kubeconfig {
	k := Kubeconfig{Cluster: rec.Cluster, KubeContext: rec.KubeContext, Namespace: s.Namespace, Name: s.Name, UID: s.UID, Labels: s.Labels}
	k.ControlPlane, _ = addressArgs(KindKubeconfig, addr)
	data := kubeobj.SecretBytes(s)
	k.Keys = slices.Sorted(maps.Keys(data))
	if kc, ok := data[KubeconfigKey]; ok {
		k.KubeconfigHash = kubeconfigHash(kc)
	}
	recs := ParseTokenRecords(s.Annotations)
	for _, name := range slices.Sorted(maps.Keys(recs)) {
		r := recs[name]
		dp := KubeconfigDataPlane{Cluster: name, Issued: r.Issued, Expires: r.Expires, RenewAt: r.RenewAt(), AccountUID: r.AccountUID}
		if want != nil {
			for _, w := range want.DataPlanes {
				if w.Cluster == name {
					dp.Server, dp.CAData, dp.InsecureSkipTLSVerify, dp.TLSServerName = w.Server, w.CAData, w.InsecureSkipTLSVerify, w.TLSServerName
				}
			}
		}
		k.DataPlanes = append(k.DataPlanes, dp)
	}
	if want != nil {
		k.TokenFileDir, k.TokenTTL = want.TokenFileDir, want.TokenTTL
	}
	return k
}

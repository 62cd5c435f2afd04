package plan_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/planfile"
	"github.com/meshd-io/meshd/internal/planview"
	"github.com/meshd-io/meshd/internal/state"
)

// The control-plane fixture: control plane "kb" in cluster a, data planes b and c, tokens as files under
// /mnt, issued at t0 for an hour (renewed from t0+48m).
var (
	t0       = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	cpTokens = map[string]string{"b": "token-of-b-do-not-print", "c": "token-of-c-do-not-print"}
)

func owned(o kubeobj.Object) *kubeobj.Object {
	o = kubeobj.Own(o, "tidb")
	return &o
}

func account(cluster string) plan.AccountObserved {
	sa, _ := kubeobj.New("ServiceAccount", plan.CPAccountNamespace, plan.CPAccountName("kb"), nil)
	sa.UID = "sa-" + cluster
	b := plan.CPBinding(plan.CPAccount{Namespace: plan.CPAccountNamespace, Name: plan.CPAccountName("kb"), ClusterRole: "kb-role"})
	b.UID = "crb-" + cluster
	return plan.AccountObserved{ServiceAccount: owned(sa), Binding: owned(b)}
}

func dataPlane(cluster string, acc plan.AccountObserved) plan.DataPlaneObserved {
	return plan.DataPlaneObserved{Cluster: cluster, KubeContext: "ctx-" + cluster, Account: acc,
		Endpoint: plan.KubeconfigDataPlane{Server: "https://" + cluster + ".example:443", CAData: []byte("ca of " + cluster)}}
}

// appliedSecret is the Secret as meshd wrote it for the data planes dps: kubeconfig, token files, times.
func appliedSecret(t *testing.T, dps ...string) *kubeobj.Object {
	t.Helper()
	k := plan.Kubeconfig{ControlPlane: "kb", TokenFileDir: "/mnt"}
	recs := map[string]plan.TokenRecord{}
	data := map[string][]byte{}
	for _, dp := range dps {
		e := dataPlane(dp, account(dp)).Endpoint
		e.Cluster = dp
		k.DataPlanes = append(k.DataPlanes, e)
		recs[dp] = plan.TokenRecord{Issued: t0, Expires: t0.Add(time.Hour), TTL: time.Hour, AccountUID: "sa-" + dp}
		data[dp+".token"] = []byte(cpTokens[dp])
	}
	kc, err := kubeobj.RenderKubeconfig(k.Entries(nil))
	if err != nil {
		t.Fatal(err)
	}
	data["kubeconfig"] = kc
	s, _ := kubeobj.New("Secret", "kb-system", "data-planes", map[string]any{"type": plan.SecretTypeKubeconfig, "data": kubeobj.SecretData(data)})
	s.Labels = map[string]string{plan.LabelControlPlane: "kb"}
	s.Annotations = map[string]string{plan.AnnotationTokens: plan.FormatTokenRecords(recs)}
	s.UID = "uid-secret"
	return owned(s)
}

func cpInput(now time.Time, secret *kubeobj.Object, dps ...plan.DataPlaneObserved) *plan.ControlPlaneInput {
	return &plan.ControlPlaneInput{Now: now, Planes: []plan.ControlPlaneObserved{{Name: "kb", Cluster: "a", KubeContext: "ctx-a",
		Namespace: "kb-system", SecretName: "data-planes", ClusterRole: "kb-role", TokenTTL: time.Hour, TokenFileDir: "/mnt",
		Secret: secret, DataPlanes: dps}}}
}

func computeCP(in *plan.ControlPlaneInput, st *state.State, destroy bool) *plan.Plan {
	if st == nil {
		st = state.New("tidb")
	}
	return plan.Compute(plan.Input{Mesh: "tidb", Observed: model.NewObserved(), State: st, Destroy: destroy, ControlPlanes: in})
}

type cpChange struct {
	Action  plan.Action
	Address string
	Reason  string
}

func changesOf(p *plan.Plan) []cpChange {
	var out []cpChange
	for _, c := range p.Changes {
		out = append(out, cpChange{c.Action, c.Address, c.Reason})
	}
	return out
}

func recorded() *state.State {
	st := state.New("tidb")
	st.SetControlPlane("kubeconfig[kb]", state.ReplicaRecord{Cluster: "a", KubeContext: "ctx-a", Kind: "Secret", Namespace: "kb-system", Name: "data-planes"})
	for _, dp := range []string{"b", "c"} {
		st.SetControlPlane("cp_account[kb:"+dp+"]", state.ReplicaRecord{Cluster: dp, KubeContext: "ctx-" + dp, Kind: "ServiceAccount", Namespace: plan.CPAccountNamespace, Name: plan.CPAccountName("kb")})
	}
	return st
}

func TestControlPlanePlan(t *testing.T) {
	foreignSA, _ := kubeobj.New("ServiceAccount", plan.CPAccountNamespace, plan.CPAccountName("kb"), nil)
	foreignSecret := *appliedSecret(t, "b", "c")
	foreignSecret.Labels = nil
	otherRole := account("c")
	b := *otherRole.Binding
	b.Content = plan.CPBinding(plan.CPAccount{Namespace: plan.CPAccountNamespace, Name: plan.CPAccountName("kb"), ClusterRole: "view"}).Content
	otherRole.Binding = &b

	cases := map[string]struct {
		reason      string
		in          *plan.ControlPlaneInput
		st          *state.State
		destroy     bool
		want        []cpChange
		conflicts   int
		nextRenewal *time.Time
		forgotten   []string
	}{
		"nothing yet": {
			reason: "Accounts and the Secret are created; the Secret waits for the accounts.",
			in:     cpInput(t0, nil, dataPlane("b", plan.AccountObserved{}), dataPlane("c", plan.AccountObserved{})),
			want: []cpChange{
				{plan.Create, "cp_account[kb:b]", "ServiceAccount and ClusterRoleBinding missing"},
				{plan.Create, "cp_account[kb:c]", "ServiceAccount and ClusterRoleBinding missing"},
				{plan.Create, "kubeconfig[kb]", "Secret missing"},
			},
		},
		"all in place": {
			reason:      "Before 80% of the lifetime nothing changes; the plan says when to plan again.",
			in:          cpInput(t0.Add(47*time.Minute), appliedSecret(t, "b", "c"), dataPlane("b", account("b")), dataPlane("c", account("c"))),
			st:          recorded(),
			nextRenewal: new(t0.Add(48 * time.Minute)),
		},
		"due": {
			reason: "At 80% of the lifetime both tokens are renewed in one update.",
			in:     cpInput(t0.Add(48*time.Minute), appliedSecret(t, "b", "c"), dataPlane("b", account("b")), dataPlane("c", account("c"))),
			st:     recorded(),
			want: []cpChange{{plan.Update, "kubeconfig[kb]",
				"token of b renewed: 80% of its lifetime has passed; token of c renewed: 80% of its lifetime has passed"}},
		},
		"account replaced": {
			reason: "A ServiceAccount made anew (another UID) invalidated the token: it is renewed.",
			in: func() *plan.ControlPlaneInput {
				acc := account("c")
				acc.ServiceAccount.UID = "sa-c-new"
				return cpInput(t0, appliedSecret(t, "b", "c"), dataPlane("b", account("b")), dataPlane("c", acc))
			}(),
			st:          recorded(),
			want:        []cpChange{{plan.Update, "kubeconfig[kb]", "token of c renewed: its ServiceAccount is new"}},
			nextRenewal: new(t0.Add(48 * time.Minute)),
		},
		"binding to another role": {
			reason:      "A binding to another role is updated (replaced by the executor).",
			in:          cpInput(t0, appliedSecret(t, "b", "c"), dataPlane("b", account("b")), dataPlane("c", otherRole)),
			st:          recorded(),
			want:        []cpChange{{plan.Update, "cp_account[kb:c]", `the binding is to ClusterRole "view" (a roleRef cannot change in place: the binding is replaced)`}},
			nextRenewal: new(t0.Add(48 * time.Minute)),
		},
		"data plane removed": {
			reason: "c leaves the Secret and its account is deleted after.",
			in: func() *plan.ControlPlaneInput {
				in := cpInput(t0, appliedSecret(t, "b", "c"), dataPlane("b", account("b")))
				in.OrphanAccounts = map[string]plan.AccountObserved{"cp_account[kb:c]": account("c")}
				return in
			}(),
			st: recorded(),
			want: []cpChange{
				{plan.Update, "kubeconfig[kb]", "data plane c removed; its keys differ; the kubeconfig differs (a context, server or CA changed)"},
				{plan.Delete, "cp_account[kb:c]", `no longer a data plane of control_plane "kb": its tokens die with its ServiceAccount`},
			},
			nextRenewal: new(t0.Add(48 * time.Minute)),
		},
		"left alone": {
			reason: "A block that could not be planned this time keeps its recorded objects.",
			in: &plan.ControlPlaneInput{OrphanSecrets: map[string]*kubeobj.Object{"kubeconfig[kb]": appliedSecret(t, "b", "c")},
				OrphanAccounts: map[string]plan.AccountObserved{"cp_account[kb:b]": account("b"), "cp_account[kb:c]": account("c")},
				LeftAlone:      map[string]bool{"kubeconfig[kb]": true, "cp_account[kb:b]": true, "cp_account[kb:c]": true}},
			st: recorded(),
		},
		"foreign Secret": {
			reason:    "A Secret of that name without meshd's labels is a conflict and never written.",
			in:        cpInput(t0, &foreignSecret, dataPlane("b", account("b"))),
			conflicts: 1,
		},
		"foreign ServiceAccount": {
			reason:    "Someone else's ServiceAccount is a conflict; that data plane stays out of the kubeconfig.",
			in:        cpInput(t0, nil, dataPlane("b", plan.AccountObserved{ServiceAccount: &foreignSA}), dataPlane("c", plan.AccountObserved{})),
			want:      []cpChange{{plan.Create, "cp_account[kb:c]", "ServiceAccount and ClusterRoleBinding missing"}, {plan.Create, "kubeconfig[kb]", "Secret missing"}},
			conflicts: 1,
		},
		"destroy": {
			reason: "Destroy deletes what the state records.",
			in: &plan.ControlPlaneInput{OrphanSecrets: map[string]*kubeobj.Object{"kubeconfig[kb]": appliedSecret(t, "b", "c")},
				OrphanAccounts: map[string]plan.AccountObserved{"cp_account[kb:b]": account("b"), "cp_account[kb:c]": {}}},
			st:        recorded(),
			destroy:   true,
			want:      []cpChange{{plan.Delete, "cp_account[kb:b]", "destroy"}, {plan.Delete, "kubeconfig[kb]", "destroy"}},
			forgotten: []string{"cp_account[kb:c]"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := computeCP(tc.in, tc.st, tc.destroy)
			if diff := cmp.Diff(tc.want, changesOf(p)); diff != "" {
				t.Errorf("%s\nchanges (-want +got):\n%s", tc.reason, diff)
			}
			if len(p.Conflicts) != tc.conflicts {
				t.Errorf("%s\n%d conflicts, want %d: %v", tc.reason, len(p.Conflicts), tc.conflicts, p.Conflicts)
			}
			if diff := cmp.Diff(tc.nextRenewal, p.NextRenewal); diff != "" {
				t.Errorf("%s\nnext renewal (-want +got):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.forgotten, p.ForgetControlPlanes); diff != "" {
				t.Errorf("%s\nforgotten (-want +got):\n%s", tc.reason, diff)
			}
			if k := p.Find("kubeconfig[kb]"); k != nil && k.Action == plan.Create {
				if len(k.DependsOn) == 0 {
					t.Errorf("the Secret's create waits for no account")
				}
			}
			// Neither rendering nor the saved plan holds a token.
			var text, js bytes.Buffer
			if err := planview.RenderHuman(&text, p); err != nil {
				t.Fatal(err)
			}
			if err := planview.RenderJSON(&js, p); err != nil {
				t.Fatal(err)
			}
			if tc.nextRenewal != nil && !strings.Contains(text.String(), "next control-plane token is due for renewal at "+tc.nextRenewal.Format(time.RFC3339)) {
				t.Errorf("the plan does not say when the next token is due:\n%s", text.String())
			}
			for _, tok := range cpTokens {
				if strings.Contains(text.String()+js.String(), tok) {
					t.Errorf("the plan holds a token")
				}
			}
			if _, err := planfile.Decode(&js); err != nil {
				t.Errorf("the saved plan does not decode: %v", err)
			}
		})
	}
}

// TestControlPlaneInlineTokens: with token_file_dir = "" the tokens are in the kubeconfig, so a renewal
// changes it (its hash is known after apply), and a kubeconfig that is current shows no change.
func TestControlPlaneInlineTokens(t *testing.T) {
	k := plan.Kubeconfig{ControlPlane: "kb"}
	e := dataPlane("b", account("b")).Endpoint
	e.Cluster = "b"
	k.DataPlanes = []plan.KubeconfigDataPlane{e}
	kc, err := kubeobj.RenderKubeconfig(k.Entries(cpTokens))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := kubeobj.New("Secret", "kb-system", "data-planes", map[string]any{"type": plan.SecretTypeKubeconfig,
		"data": kubeobj.SecretData(map[string][]byte{"kubeconfig": kc})})
	s.Labels = map[string]string{plan.LabelControlPlane: "kb"}
	s.Annotations = map[string]string{plan.AnnotationTokens: plan.FormatTokenRecords(map[string]plan.TokenRecord{
		"b": {Issued: t0, Expires: t0.Add(time.Hour), TTL: time.Hour, AccountUID: "sa-b"}})}
	in := cpInput(t0, owned(s), dataPlane("b", account("b")))
	in.Planes[0].TokenFileDir = ""
	if p := computeCP(in, recorded(), false); len(p.Changes) != 0 {
		t.Errorf("a current inline kubeconfig: %v, want no changes", changesOf(p))
	}
	in.Now = t0.Add(50 * time.Minute)
	p := computeCP(in, recorded(), false)
	ch := p.Find("kubeconfig[kb]")
	if ch == nil || ch.After.(plan.Kubeconfig).KubeconfigHash != "" {
		t.Fatalf("a due inline token: %v, want an update whose kubeconfig hash is known after apply", changesOf(p))
	}
	var text bytes.Buffer
	_ = planview.RenderHuman(&text, p)
	if strings.Contains(text.String(), cpTokens["b"]) || !strings.Contains(text.String(), "-> (known after apply)") {
		t.Errorf("the plan:\n%s", text.String())
	}
}

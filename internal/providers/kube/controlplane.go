package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
)

// Endpoint is the cluster entry of a kube context in meshd's kubeconfig: where a control plane reaches
// that cluster when nothing else says.
type Endpoint struct {
	Server                string
	CAData                []byte
	InsecureSkipTLSVerify bool
	TLSServerName         string
}

// Endpoint returns the server and TLS settings of a kube context's cluster (its CA file read in).
func (p *Provider) Endpoint(kubeContext string) (Endpoint, error) {
	p.mu.Lock()
	raw, err := p.rawLocked()
	p.mu.Unlock()
	if err != nil {
		return Endpoint{}, err
	}
	kc, ok := raw.Contexts[kubeContext]
	if !ok {
		return Endpoint{}, fmt.Errorf("%w: the kubeconfig %s has no context %q", ErrNoContext, p.Source(), kubeContext)
	}
	cl, ok := raw.Clusters[kc.Cluster]
	if !ok {
		return Endpoint{}, fmt.Errorf("kube context %q in %s names cluster %q, which it does not have", kubeContext, p.Source(), kc.Cluster)
	}
	e := Endpoint{Server: cl.Server, CAData: cl.CertificateAuthorityData, InsecureSkipTLSVerify: cl.InsecureSkipTLSVerify, TLSServerName: cl.TLSServerName}
	if len(e.CAData) == 0 && cl.CertificateAuthority != "" {
		ca, err := os.ReadFile(cl.CertificateAuthority)
		if err != nil {
			return Endpoint{}, fmt.Errorf("kube context %q: reading its CA file: %w", kubeContext, err)
		}
		e.CAData = ca
	}
	return e, nil
}

func (p *Provider) now() time.Time {
	if p.opts.Now != nil {
		return p.opts.Now()
	}
	return time.Now()
}

func init() {
	executors.Register(func(p *Provider) apply.Executor { return cpAccountExecutor{p} }, plan.KindCPAccount)
	executors.Register(func(p *Provider) apply.Executor { return kubeconfigExecutor{p} }, plan.KindKubeconfig)
}

type cpAccountExecutor struct{ p *Provider }

// Execute makes a data plane's ServiceAccount and its ClusterRoleBinding what the plan says (creating the
// missing one, replacing a binding to another role), or deletes both. Neither is touched unless meshd's.
func (e cpAccountExecutor) Execute(ctx context.Context, ch plan.Change, _ apply.Known) (apply.Outcome, error) {
	if ch.Action == plan.Delete {
		a := ch.Before.(plan.CPAccount)
		objs, err := e.p.Objects(a.Cluster, a.KubeContext)
		if err != nil {
			return apply.Outcome{}, err
		}
		// The binding first: a ServiceAccount without its binding can do nothing.
		if a.BindingUID != "" {
			b := plan.CPBinding(a)
			b.UID = a.BindingUID
			if err := objs.Delete(ctx, b); err != nil {
				return apply.Outcome{}, fmt.Errorf("cluster %s: %w", a.Cluster, err)
			}
		}
		if a.UID != "" {
			sa, _ := kubeobj.New("ServiceAccount", a.Namespace, a.Name, nil)
			sa.UID = a.UID
			if err := objs.Delete(ctx, sa); err != nil {
				return apply.Outcome{}, fmt.Errorf("cluster %s: %w", a.Cluster, err)
			}
		}
		return apply.Outcome{Record: func(st *state.State) { st.RemoveControlPlane(ch.Address) }}, nil
	}
	a := ch.After.(plan.CPAccount)
	objs, err := e.p.Objects(a.Cluster, a.KubeContext)
	if err != nil {
		return apply.Outcome{}, err
	}
	if err := ensureAccount(ctx, objs, a); err != nil {
		return apply.Outcome{}, fmt.Errorf("cluster %s: %w", a.Cluster, err)
	}
	rec := a.Record()
	return apply.Outcome{Record: func(st *state.State) { st.SetControlPlane(ch.Address, rec) }}, nil
}

func ensureAccount(ctx context.Context, objs *kubeobj.Client, a plan.CPAccount) error {
	sa, _ := kubeobj.New("ServiceAccount", a.Namespace, a.Name, nil)
	sa.Labels = a.Labels
	cur, err := objs.Get(ctx, "ServiceAccount", a.Namespace, a.Name)
	switch {
	case err != nil:
		return err
	case cur == nil:
		if _, err := objs.Create(ctx, sa); err != nil {
			return err
		}
	default:
		if _, err := objs.Update(ctx, sa); err != nil { // refuses one that is not meshd's
			return err
		}
	}
	want := plan.CPBinding(a)
	b, err := objs.Get(ctx, "ClusterRoleBinding", "", a.Name)
	switch {
	case err != nil:
		return err
	case b == nil:
		_, err = objs.Create(ctx, want)
	case kubeobj.NeedsReplace(want, *b):
		// roleRef cannot change in place.
		if err = objs.Delete(ctx, *b); err == nil {
			_, err = objs.Create(ctx, want)
		}
	default:
		_, err = objs.Mirror(ctx, want, "")
	}
	return err
}

type kubeconfigExecutor struct{ p *Provider }

// errChanged is wrapped by the error for a Secret that is not the one the plan observed.
var errChanged = errors.New("the Secret changed since the plan")

// Execute writes the control plane's kubeconfig Secret: it requests a token (TokenRequest) in each data
// plane whose token the plan renews or that the Secret lacks, keeps the others as they are in the Secret,
// and writes the kubeconfig, the tokens and their times in one update. The tokens exist only in memory
// between the request and the write; errors never carry them.
func (e kubeconfigExecutor) Execute(ctx context.Context, ch plan.Change, _ apply.Known) (apply.Outcome, error) {
	if ch.Action == plan.Delete {
		k := ch.Before.(plan.Kubeconfig)
		objs, err := e.p.Objects(k.Cluster, k.KubeContext)
		if err != nil {
			return apply.Outcome{}, err
		}
		s, _ := kubeobj.New("Secret", k.Namespace, k.Name, nil)
		s.UID = k.UID
		if err := objs.Delete(ctx, s); err != nil {
			return apply.Outcome{}, fmt.Errorf("cluster %s: %w", k.Cluster, err)
		}
		return apply.Outcome{Record: func(st *state.State) { st.RemoveControlPlane(ch.Address) }}, nil
	}
	k := ch.After.(plan.Kubeconfig)
	objs, err := e.p.Objects(k.Cluster, k.KubeContext)
	if err != nil {
		return apply.Outcome{}, err
	}
	cur, err := objs.Get(ctx, "Secret", k.Namespace, k.Name)
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("cluster %s: %w", k.Cluster, err)
	}
	switch {
	case ch.Action == plan.Create && cur != nil:
		return apply.Outcome{}, fmt.Errorf("cluster %s: %w: Secret %s/%s exists now; nothing written, plan again", k.Cluster, errChanged, k.Namespace, k.Name)
	case ch.Action == plan.Update && (cur == nil || cur.UID != k.UID):
		return apply.Outcome{}, fmt.Errorf("cluster %s: %w: Secret %s/%s was deleted or replaced; nothing written, plan again", k.Cluster, errChanged, k.Namespace, k.Name)
	case cur != nil && !model.OwnedBy(cur.Labels, e.p.opts.Mesh):
		return apply.Outcome{}, fmt.Errorf("cluster %s: Secret %s/%s: %w", k.Cluster, k.Namespace, k.Name, kubeobj.ErrNotOwned)
	}
	want, err := e.desired(ctx, k, cur)
	if err != nil {
		return apply.Outcome{}, err
	}
	if cur == nil {
		_, err = objs.Create(ctx, want)
	} else {
		_, err = objs.Mirror(ctx, want, "")
	}
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("cluster %s: %w", k.Cluster, err)
	}
	rec := k.Record()
	return apply.Outcome{Record: func(st *state.State) { st.SetControlPlane(ch.Address, rec) }}, nil
}

// desired is the Secret to write: the tokens kept from cur, the new ones requested now.
func (e kubeconfigExecutor) desired(ctx context.Context, k plan.Kubeconfig, cur *kubeobj.Object) (kubeobj.Object, error) {
	tokens, records := k.KeptTokens(cur)
	for _, dp := range k.DataPlanes {
		if _, kept := tokens[dp.Cluster]; kept {
			continue
		}
		token, rec, err := e.requestToken(ctx, k, dp)
		if err != nil {
			return kubeobj.Object{}, err
		}
		tokens[dp.Cluster], records[dp.Cluster] = token, rec
	}
	return k.Secret(tokens, records)
}

// requestToken asks a data plane for a token of the control plane's ServiceAccount.
func (e kubeconfigExecutor) requestToken(ctx context.Context, k plan.Kubeconfig, dp plan.KubeconfigDataPlane) (string, plan.TokenRecord, error) {
	objs, err := e.p.Objects(dp.Cluster, dp.KubeContext)
	if err != nil {
		return "", plan.TokenRecord{}, err
	}
	name := plan.CPAccountName(k.ControlPlane)
	sa, err := objs.Get(ctx, "ServiceAccount", plan.CPAccountNamespace, name)
	if err != nil {
		return "", plan.TokenRecord{}, fmt.Errorf("cluster %s: %w", dp.Cluster, err)
	}
	if sa == nil || !model.OwnedBy(sa.Labels, e.p.opts.Mesh) {
		return "", plan.TokenRecord{}, fmt.Errorf("cluster %s: meshd's ServiceAccount %s/%s is missing; nothing written, plan again", dp.Cluster, plan.CPAccountNamespace, name)
	}
	requested := e.p.now()
	token, expiry, err := objs.CreateToken(ctx, plan.CPAccountNamespace, name, k.TokenTTL)
	if err != nil {
		return "", plan.TokenRecord{}, fmt.Errorf("cluster %s: %w", dp.Cluster, err)
	}
	issued, ok := kubeobj.TokenIssuedAt(token)
	if !ok {
		issued = requested
	}
	return token, plan.TokenRecord{Issued: issued.UTC(), Expires: expiry.UTC(), TTL: k.TokenTTL, AccountUID: sa.UID}, nil
}

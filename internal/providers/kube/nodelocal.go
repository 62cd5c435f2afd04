package kube

import (
	"context"
	"fmt"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
)

func init() {
	executors.Register(func(p *Provider) apply.Executor { return nodeLocalExecutor{p} }, plan.KindNodeLocalDNS)
}

type nodeLocalExecutor struct{ p *Provider }

// Execute merges meshd's blocks into the NodeLocal DNSCache's Corefile as it is now, each routed as the
// cache routes the cluster's own domain in that Corefile, as the Corefile executor does for CoreDNS.
func (e nodeLocalExecutor) Execute(ctx context.Context, ch plan.Change, _ apply.Known) (apply.Outcome, error) {
	p := e.p
	if ch.Action != plan.Update {
		return apply.Outcome{}, fmt.Errorf("%s: cannot %s a NodeLocal DNSCache Corefile", ch.Address, ch.Action.Verb())
	}
	after := ch.After.(plan.NodeLocalDNS)
	c, err := p.clientFor(after.Cluster, after.KubeContext)
	if err != nil {
		return apply.Outcome{}, err
	}
	target := mergeTarget{Namespace: plan.DNSNamespace, Name: plan.NodeLocalConfigMap, Key: plan.CorefileKey}
	owned, err := p.mergeInto(ctx, c, target, after.DeleteBackup, func(text string) (string, corefile.Report, error) {
		blocks, err := after.Blocks(text)
		if err != nil {
			return "", corefile.Report{}, err
		}
		return corefile.Merge(text, p.opts.Mesh, after.Owned, blocks)
	})
	return mergeOutcome(after.Cluster, owned, err, func(st *state.State) { plan.RecordNodeLocal(st, after, owned) })
}

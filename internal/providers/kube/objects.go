package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
)

// ObjectQuery names one object to read: kind, namespace and name in the cluster a kube context reaches.
type ObjectQuery struct {
	Cluster     string
	KubeContext string
	Kind        string // a kubeobj kind: Secret, ClusterRole, Namespace, ...
	Namespace   string
	Name        string
}

// ObjectResult is what reading one object gave: the object, nil when it does not exist, or an error.
type ObjectResult struct {
	Object *kubeobj.Object
	Err    error
}

// Objects returns the owned-object client of a kube context.
func (p *Provider) Objects(cluster, kubeContext string) (*kubeobj.Client, error) {
	c, err := p.clientFor(cluster, kubeContext)
	if err != nil {
		return nil, err
	}
	return kubeobj.NewClient(c, p.opts.Mesh), nil
}

// ObserveObjects reads the queried objects, all at once (bounded by Parallelism): one GET each.
func (p *Provider) ObserveObjects(ctx context.Context, queries []ObjectQuery) map[ObjectQuery]ObjectResult {
	out := make(map[ObjectQuery]ObjectResult, len(queries))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, p.opts.Parallelism)
	for _, q := range queries {
		if _, dup := out[q]; dup {
			continue
		}
		out[q] = ObjectResult{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var res ObjectResult
			objs, err := p.Objects(q.Cluster, q.KubeContext)
			if err == nil {
				reqCtx, cancel := context.WithTimeout(ctx, p.opts.RequestTimeout)
				res.Object, err = objs.Get(reqCtx, q.Kind, q.Namespace, q.Name)
				cancel()
			}
			res.Err = err
			mu.Lock()
			out[q] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func init() {
	executors.Register(func(p *Provider) apply.Executor { return replicaExecutor{p} }, plan.KindReplica)
}

type replicaExecutor struct{ p *Provider }

// Execute writes or deletes one copy. A create, update, replacement or adoption reads the source again and
// writes the copy only when its content still hashes as the plan says: the plan holds no content (a
// Secret's data never reaches a plan), and a source that changed since is the next plan's to copy.
func (e replicaExecutor) Execute(ctx context.Context, ch plan.Change, _ apply.Known) (apply.Outcome, error) {
	if ch.Action == plan.Delete {
		before := ch.Before.(plan.Replica)
		objs, err := e.p.Objects(before.Cluster, before.KubeContext)
		if err != nil {
			return apply.Outcome{}, err
		}
		if err := objs.Delete(ctx, observedCopy(before)); err != nil {
			return apply.Outcome{}, fmt.Errorf("cluster %s: %w", before.Cluster, err)
		}
		return apply.Outcome{Record: func(st *state.State) { st.RemoveReplica(ch.Address) }}, nil
	}
	after := ch.After.(plan.Replica)
	want, err := e.desired(ctx, after)
	if err != nil {
		return apply.Outcome{}, err
	}
	objs, err := e.p.Objects(after.Cluster, after.KubeContext)
	if err != nil {
		return apply.Outcome{}, err
	}
	switch ch.Action {
	case plan.Create:
		_, err = objs.Create(ctx, want)
	case plan.Update:
		_, err = objs.Mirror(ctx, want, "")
	case plan.Adopt:
		_, err = objs.Mirror(ctx, want, after.UID)
	case plan.Replace:
		before := observedCopy(ch.Before.(plan.Replica))
		if after.Adopting {
			err = objs.DeleteAdopted(ctx, before)
		} else {
			err = objs.Delete(ctx, before)
		}
		if err == nil {
			_, err = objs.Create(ctx, want)
		}
	default:
		err = fmt.Errorf("cannot %s a replica", ch.Action.Verb())
	}
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("cluster %s: %w", after.Cluster, err)
	}
	rec := after.Record()
	return apply.Outcome{Record: func(st *state.State) { st.SetReplica(ch.Address, rec) }}, nil
}

// errSourceChanged is wrapped by the error for a source whose content changed between plan and apply.
var errSourceChanged = errors.New("the source changed since the plan")

// desired reads the source and makes the copy from it, refusing a source that changed since the plan.
func (e replicaExecutor) desired(ctx context.Context, r plan.Replica) (kubeobj.Object, error) {
	objs, err := e.p.Objects(r.SourceCluster, r.SourceContext)
	if err != nil {
		return kubeobj.Object{}, err
	}
	src, err := objs.Get(ctx, r.ObjectKind, r.SourceNamespace, r.Name)
	if err != nil {
		return kubeobj.Object{}, fmt.Errorf("cluster %s: %w", r.SourceCluster, err)
	}
	if src == nil {
		return kubeobj.Object{}, fmt.Errorf("%w: %s is gone; nothing written, plan again", errSourceChanged, r.Source())
	}
	want, _ := plan.DesiredCopy(*src, r.SourceCluster, r.Namespace)
	if got := kubeobj.ContentHash(want); got != r.ContentHash {
		return kubeobj.Object{}, fmt.Errorf("%w: %s now hashes sha256:%s, the plan has sha256:%s; nothing written, plan again",
			errSourceChanged, r.Source(), got, r.ContentHash)
	}
	return want, nil
}

// observedCopy is the observed copy a delete must find unchanged (same UID).
func observedCopy(r plan.Replica) kubeobj.Object {
	return kubeobj.Object{APIVersion: r.APIVersion, Kind: r.ObjectKind, Namespace: r.Namespace, Name: r.Name, UID: r.UID}
}

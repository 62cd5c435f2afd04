// Package kindio is the I/O half of a kind registered outside meshd's built-in set: how it reads its part
// of the world and how it carries out its changes, registered by kind. The pure half (address, planner,
// state records, watches: plan.KindInfo) stays in plan, which makes no call; this half is what the
// providers and the engine loop over, so that such a kind is one file (docs/architecture.md, "Adding a
// kind"):
//
//   - the providers' Executors() carry out a registered kind's changes through its Execute, with the client
//     of the cluster (Kubernetes) or the SDK configuration of the (access, region) (AWS) the change names;
//   - the engine observes a registered kind's parts with the others, in one errgroup, and hands them to the
//     kind's planner as plan.Parts in Input.Kinds: a Kubernetes part per member cluster, cached per cluster
//     under the cache's rules (read again when a watched object of the cluster changed or a change touched
//     the cluster, see KindInfo.Touches); an AWS part per (access, region) of the members, cached with the
//     rest of AWS (read again on the AWS interval and after any AWS change);
//   - the simulated world (plan/plantest) runs the same Observe and Execute against fake clients.
//
// The built-in kinds keep their I/O in the providers (they share client sets, waits and the DNS
// observation) and are not registered here.
package kindio

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/plan"
)

// Cluster is one member cluster as a Kubernetes part sees it.
type Cluster struct {
	Name        string
	KubeContext string
}

// Kube is the I/O of a kind carried out in member clusters (plan.ProviderKube).
type Kube struct {
	// Observe reads the kind's part of one member cluster through its client. An error leaves the cluster
	// out of plan.Parts (the planner leaves its objects alone) and is reported.
	Observe func(ctx context.Context, c kubeclient.Interface, cl Cluster) (any, error)
	// Where names the cluster (and its kube context) a change is carried out in.
	Where func(ch plan.Change) Cluster
	// Execute carries out one change through that cluster's client; it checks ownership again before
	// writing, and records what observation cannot find again through Outcome.Record.
	Execute func(ctx context.Context, c kubeclient.Interface, ch plan.Change, known apply.Known) (apply.Outcome, error)
}

// AWS is the I/O of a kind carried out in AWS (plan.ProviderAWS).
type AWS struct {
	// Observe reads the kind's part in one (access, region) of the members, with the SDK configuration
	// for it (the default credentials, or the member's assumed role).
	Observe func(ctx context.Context, cfg aws.Config, at plan.Where) (any, error)
	// Where names the (access, region) a change is carried out in.
	Where func(ch plan.Change) plan.Where
	// Execute carries out one change with that configuration.
	Execute func(ctx context.Context, cfg aws.Config, ch plan.Change, known apply.Known) (apply.Outcome, error)
}

var (
	mu   sync.Mutex
	kube = map[plan.Kind]Kube{}
	aw   = map[plan.Kind]AWS{}
)

// RegisterKube registers the Kubernetes I/O of a kind; it panics on a duplicate or an incomplete entry
// (programming errors, found by any test that loads the package).
func RegisterKube(k plan.Kind, io Kube) {
	mu.Lock()
	defer mu.Unlock()
	if io.Where == nil || io.Execute == nil {
		panic(fmt.Sprintf("kindio: kind %q registered without Where or Execute", k))
	}
	if _, dup := kube[k]; dup {
		panic(fmt.Sprintf("kindio: kind %q registered twice", k))
	}
	if _, dup := aw[k]; dup {
		panic(fmt.Sprintf("kindio: kind %q registered twice", k))
	}
	kube[k] = io
}

// RegisterAWS registers the AWS I/O of a kind, as RegisterKube does.
func RegisterAWS(k plan.Kind, io AWS) {
	mu.Lock()
	defer mu.Unlock()
	if io.Where == nil || io.Execute == nil {
		panic(fmt.Sprintf("kindio: kind %q registered without Where or Execute", k))
	}
	if _, dup := aw[k]; dup {
		panic(fmt.Sprintf("kindio: kind %q registered twice", k))
	}
	if _, dup := kube[k]; dup {
		panic(fmt.Sprintf("kindio: kind %q registered twice", k))
	}
	aw[k] = io
}

// KubeOf returns a kind's Kubernetes I/O.
func KubeOf(k plan.Kind) (Kube, bool) {
	mu.Lock()
	defer mu.Unlock()
	io, ok := kube[k]
	return io, ok
}

// AWSOf returns a kind's AWS I/O.
func AWSOf(k plan.Kind) (AWS, bool) {
	mu.Lock()
	defer mu.Unlock()
	io, ok := aw[k]
	return io, ok
}

// KubeKinds and AWSKinds list the kinds registered here, by their rank in plan's registry (kinds plan does
// not know come last, by name).
func KubeKinds() []plan.Kind {
	mu.Lock()
	defer mu.Unlock()
	return byRank(keys(kube))
}

// AWSKinds: see KubeKinds.
func AWSKinds() []plan.Kind {
	mu.Lock()
	defer mu.Unlock()
	return byRank(keys(aw))
}

func keys[V any](m map[plan.Kind]V) []plan.Kind {
	out := make([]plan.Kind, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func byRank(ks []plan.Kind) []plan.Kind {
	rank := func(k plan.Kind) (int, bool) {
		info, ok := plan.Lookup(k)
		return info.Rank, ok
	}
	sort.Slice(ks, func(i, j int) bool {
		ri, oki := rank(ks[i])
		rj, okj := rank(ks[j])
		if oki != okj {
			return oki
		}
		if ri != rj {
			return ri < rj
		}
		return ks[i] < ks[j]
	})
	return ks
}

// KubeExecutor carries out a registered Kubernetes kind's changes with the clients client hands out by
// kube context (the kube provider's, or the simulated world's).
func KubeExecutor(io Kube, client func(cl Cluster) (kubeclient.Interface, error)) apply.Executor {
	return kubeExecutor{io, client}
}

type kubeExecutor struct {
	io     Kube
	client func(cl Cluster) (kubeclient.Interface, error)
}

func (e kubeExecutor) Execute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	cl := e.io.Where(ch)
	c, err := e.client(cl)
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("cluster %s: %w", cl.Name, err)
	}
	return e.io.Execute(ctx, c, ch, known)
}

// AWSExecutor carries out a registered AWS kind's changes with the configurations config hands out.
func AWSExecutor(io AWS, config func(at plan.Where) aws.Config) apply.Executor {
	return awsExecutor{io, config}
}

type awsExecutor struct {
	io     AWS
	config func(at plan.Where) aws.Config
}

func (e awsExecutor) Execute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	return e.io.Execute(ctx, e.config(e.io.Where(ch)), ch, known)
}

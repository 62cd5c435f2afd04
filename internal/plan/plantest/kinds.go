package plantest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/meshd-io/meshd/internal/kindio"
	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
)

// Kinds registered in kindio apply in the world through their own Observe and Execute, against a fake
// Kubernetes client per member cluster (client-go's fake clientset and dynamic client): the kind's real
// I/O code, not a stand-in of it. (AWS kinds registered there have no simulated SDK yet.)

// KubeClient returns cluster's fake Kubernetes client, made on first use.
func (w *World) KubeClient(cluster string) kubeclient.Interface {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.kube == nil {
		w.kube = map[string]kubeclient.Interface{}
	}
	c, ok := w.kube[cluster]
	if !ok {
		c = kubeclient.Join(kubefake.NewClientset(), dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()))
		w.kube[cluster] = c
	}
	return c
}

// KindParts reads the part of every kind registered in kindio with a Kubernetes Observe, in every member
// cluster and every former member's, as the engine does: what Compute finds in Input.Kinds.
func (w *World) KindParts(members []model.Member, st *state.State) map[plan.Kind]any {
	clusters := map[string]string{}
	for _, m := range st.Members {
		if m.KubeContext != "" {
			clusters[m.Name] = m.KubeContext
		}
	}
	for _, m := range members {
		clusters[m.Name] = m.KubeContext
	}
	out := map[plan.Kind]any{}
	for _, k := range kindio.KubeKinds() {
		io, _ := kindio.KubeOf(k)
		if io.Observe == nil {
			continue
		}
		parts := &plan.Parts{Kube: map[string]any{}}
		for _, name := range slices.Sorted(maps.Keys(clusters)) {
			v, err := io.Observe(context.Background(), w.KubeClient(name), kindio.Cluster{Name: name, KubeContext: clusters[name]})
			if err != nil {
				if parts.Unobserved == nil {
					parts.Unobserved = map[string]bool{}
				}
				parts.Unobserved[name] = true
				continue
			}
			parts.Kube[name] = v
		}
		out[k] = parts
	}
	return out
}

// Input is what the engine would hand Compute for the world: the members (each with its kube context,
// KubeContext(name) when it has none), the AWS objects, the DNS objects (with the EKS add-ons), the
// replicated objects, the control planes, the load balancers and the parts of the kinds registered in
// kindio.
func (w *World) Input(members []model.Member, st *state.State, destroy bool) plan.Input {
	ms := slices.Clone(members)
	for i := range ms {
		if ms[i].KubeContext == "" {
			ms[i].KubeContext = KubeContext(ms[i].Name)
		}
	}
	return plan.Input{Mesh: w.Mesh, Members: ms, Observed: w.Observed, State: st, Destroy: destroy,
		DNS: w.withAddons(w.DNSInput(w.ForwardBy)), Replicas: w.ReplicaInput(st, destroy), Kinds: w.KindParts(ms, st),
		ControlPlanes: w.ControlPlaneInput(ms, st, destroy), LoadBalancers: w.LoadBalancerInput(ms, st, destroy),
		TransitGateways: w.TransitGateways}
}

// StateRecords counts the records a state file holds, in its JSON (so that a field of the state no kind
// lists is counted too): each route, each Corefile with zones, each entry of the other maps and of each
// table. `state list` (plan.StateEntries) must show exactly that many.
func StateRecords(data []byte) (int, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return 0, err
	}
	records := 0
	for key, v := range raw {
		switch key {
		case "version", "lineage", "serial", "mesh":
		case "routes":
			var l []any
			if err := json.Unmarshal(v, &l); err != nil {
				return 0, fmt.Errorf("%s: %w", key, err)
			}
			records += len(l)
		case "corefiles": // a cluster with no zone left is no record
			var m map[string][]string
			if err := json.Unmarshal(v, &m); err != nil {
				return 0, fmt.Errorf("%s: %w", key, err)
			}
			for _, zones := range m {
				if len(zones) > 0 {
					records++
				}
			}
		case "records":
			var tables map[string]map[string]json.RawMessage
			if err := json.Unmarshal(v, &tables); err != nil {
				return 0, fmt.Errorf("%s: %w", key, err)
			}
			for _, tab := range tables {
				records += len(tab)
			}
		default:
			var m map[string]json.RawMessage
			if err := json.Unmarshal(v, &m); err != nil {
				return 0, fmt.Errorf("%s: %w", key, err)
			}
			records += len(m)
		}
	}
	return records, nil
}

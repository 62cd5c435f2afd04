// Package state keeps what meshd cannot observe: the routes it created (routes take no tags), the Corefile
// blocks it owns, the members of the last apply (so that a cluster removed from the spec can be cleaned up),
// and the serial of the last apply (so that a saved plan made before it is refused as stale).
package state

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/meshd-io/meshd/internal/model"
)

// FormatVersion is the version of the state format this build reads and writes.
const FormatVersion = 1

// State is the content of a state backend.
type State struct {
	Version int    `json:"version"`
	Lineage string `json:"lineage"` // random at first write; a plan from another lineage is refused
	Serial  uint64 `json:"serial"`  // incremented by every write
	Mesh    string `json:"mesh"`

	// Members are the clusters as resolved at the last apply, by cluster name.
	Members map[string]model.Member `json:"members,omitempty"`
	// Routes are the routes meshd created or adopted.
	Routes []RouteRecord `json:"routes,omitempty"`
	// Corefiles are the Corefile zones meshd owns, by cluster name.
	Corefiles map[string][]string `json:"corefiles,omitempty"`
	// Replicas are the copies meshd made of replicated objects, by plan address (replica[<name>:<cluster>]):
	// where they are, so that a copy whose replicate block or target is gone can still be deleted.
	Replicas map[string]ReplicaRecord `json:"replicas,omitempty"`
	// LoadBalancers are the objects of load_balancer blocks meshd annotated or made, by plan address
	// (lb_service[<name>], target_group_binding[<name>:<cluster>]).
	LoadBalancers map[string]LoadBalancerRecord `json:"load_balancers,omitempty"`
	// Addons are the EKS CoreDNS add-ons whose configurationValues.corefile meshd wrote its blocks into,
	// by cluster name: where they are and what the configuration was before, so that taking the blocks out
	// (destroy, corefile_via back to "configmap", a cluster that left) gives it back as it was.
	Addons map[string]AddonRecord `json:"addons,omitempty"`
	// ControlPlanes are the objects meshd made for control_plane blocks, by plan address (the data planes'
	// ServiceAccounts at cp_account[<control plane>:<cluster>], the kubeconfig Secrets at
	// kubeconfig[<control plane>]), located as copies are: so that a removed data plane or block is cleaned up.
	ControlPlanes map[string]ReplicaRecord `json:"control_planes,omitempty"`
	// Records are the records of kinds that keep them in a Table rather than a field of their own: by
	// table name, then address.
	Records map[string]map[string]json.RawMessage `json:"records,omitempty"`
}

// AddonRecord is one add-on configuration meshd wrote to. It holds hashes, never the configuration: that
// may hold credentials.
type AddonRecord struct {
	Region     string   `json:"region"`
	EKSCluster string   `json:"eks_cluster"`
	Addon      string   `json:"addon"`
	Zones      []string `json:"zones,omitempty"` // meshd's zones in the add-on's Corefile
	// HadCorefile, BaseHash and OriginalHash describe the configuration before meshd's first write (see
	// corefile.AddonRestore); WrittenHash the configurationValues meshd last wrote.
	HadCorefile  bool   `json:"had_corefile,omitempty"`
	BaseHash     string `json:"base_hash,omitempty"`
	OriginalHash string `json:"original_hash"`
	WrittenHash  string `json:"written_hash"`
}

// ReplicaRecord locates one copy meshd made.
type ReplicaRecord struct {
	Cluster     string `json:"cluster"`
	KubeContext string `json:"kube_context"`
	Kind        string `json:"kind"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name"`
}

// RouteRecord identifies one route meshd owns.
type RouteRecord struct {
	Region          string `json:"region"`
	VPCID           string `json:"vpc_id"`
	RouteTableID    string `json:"route_table_id"`
	DestinationCIDR string `json:"destination_cidr"`
	PeeringID       string `json:"peering_id"`
}

// Key identifies the route within its region: a route table holds one route per destination.
func (r RouteRecord) Key() string { return r.RouteTableID + "|" + r.DestinationCIDR }

// New returns an empty state for a mesh.
func New(mesh string) *State {
	return &State{Version: FormatVersion, Mesh: mesh, Members: map[string]model.Member{}, Corefiles: map[string][]string{}}
}

// ErrLocked is returned (wrapped, with who holds it) when another process holds the state lock.
var ErrLocked = errors.New("state is locked")

// Backend stores one State. Implementations: a local file (default) and, for the daemon, a Kubernetes Secret.
// LosableLock is implemented by backends whose lock can be lost while it is held (the Secret backend's
// Lease, when it could not be renewed in time and another process may take it). Lost is closed once the lock
// taken by the last Lock is no longer this process's; whoever acts under the lock should stop then.
type LosableLock interface {
	Lost() <-chan struct{}
}

type Backend interface {
	// Lock takes the exclusive lock for a read-modify-write cycle; the returned func releases it.
	Lock(ctx context.Context) (unlock func() error, err error)
	// Read returns the stored state, or a new empty one (Serial 0) when none has been written.
	Read(ctx context.Context) (*State, error)
	// Write stores s atomically, incrementing s.Serial and setting s.Lineage if empty.
	Write(ctx context.Context, s *State) error
}

package state

import (
	"slices"
	"sort"
	"strings"

	"github.com/meshd-io/meshd/internal/model"
)

// RouteSet returns the recorded routes keyed by RouteRecord.Key().
func (s *State) RouteSet() map[string]RouteRecord {
	m := make(map[string]RouteRecord, len(s.Routes))
	for _, r := range s.Routes {
		m[r.Key()] = r
	}
	return m
}

// AddRoute records r. A record with the same key (route table and destination) is replaced: the later one
// wins, in RouteSet at once and in Routes at the next SortRoutes, which drops the earlier one. Appending
// keeps an apply of thousands of routes linear.
func (s *State) AddRoute(r RouteRecord) { s.Routes = append(s.Routes, r) }

// RemoveRoute forgets the route to cidr in routeTableID; it is a no-op when no such route is recorded.
func (s *State) RemoveRoute(routeTableID, cidr string) {
	s.Routes = slices.DeleteFunc(s.Routes, func(r RouteRecord) bool {
		return r.RouteTableID == routeTableID && r.DestinationCIDR == cidr
	})
	if len(s.Routes) == 0 {
		s.Routes = nil
	}
}

// SortRoutes orders Routes by (region, route table, destination), the order the state file is written in,
// and keeps only the last added record of each key (see AddRoute).
func (s *State) SortRoutes() {
	last := make(map[string]int, len(s.Routes))
	for i, r := range s.Routes {
		last[r.Key()] = i
	}
	if len(last) < len(s.Routes) {
		kept := s.Routes[:0]
		for i, r := range s.Routes {
			if last[r.Key()] == i {
				kept = append(kept, r)
			}
		}
		s.Routes = kept
	}
	sort.SliceStable(s.Routes, func(i, j int) bool { return routeLess(s.Routes[i], s.Routes[j]) })
}

func routeLess(a, b RouteRecord) bool {
	if c := strings.Compare(a.Region, b.Region); c != 0 {
		return c < 0
	}
	if c := strings.Compare(a.RouteTableID, b.RouteTableID); c != 0 {
		return c < 0
	}
	if c := strings.Compare(a.DestinationCIDR, b.DestinationCIDR); c != 0 {
		return c < 0
	}
	// Same key: keep a deterministic order for the (invalid) duplicate case.
	if c := strings.Compare(a.VPCID, b.VPCID); c != 0 {
		return c < 0
	}
	return a.PeeringID < b.PeeringID
}

// SetCorefileZones records the Corefile zones meshd owns in cluster's Corefile (sorted, deduplicated).
// An empty list forgets the cluster.
func (s *State) SetCorefileZones(cluster string, zones []string) {
	if len(zones) == 0 {
		delete(s.Corefiles, cluster)
		return
	}
	if s.Corefiles == nil {
		s.Corefiles = map[string][]string{}
	}
	z := slices.Clone(zones)
	slices.Sort(z)
	s.Corefiles[cluster] = slices.Compact(z)
}

// CorefileZones returns the zones meshd owns in cluster's Corefile.
func (s *State) CorefileZones(cluster string) []string { return s.Corefiles[cluster] }

// setIn sets m[k] = v, making the map first if needed.
func setIn[V any](m *map[string]V, k string, v V) {
	if *m == nil {
		*m = map[string]V{}
	}
	(*m)[k] = v
}

// removeFrom deletes k from m, and leaves no empty map behind (the state file omits it then).
func removeFrom[V any](m *map[string]V, k string) {
	delete(*m, k)
	if len(*m) == 0 {
		*m = nil
	}
}

// SetReplica records the copy at address.
func (s *State) SetReplica(address string, r ReplicaRecord) { setIn(&s.Replicas, address, r) }

// RemoveReplica forgets the copy at address.
func (s *State) RemoveReplica(address string) { removeFrom(&s.Replicas, address) }

// SetControlPlane records an object of a control_plane block at address.
func (s *State) SetControlPlane(address string, r ReplicaRecord) { setIn(&s.ControlPlanes, address, r) }

// RemoveControlPlane forgets the object at address.
func (s *State) RemoveControlPlane(address string) { removeFrom(&s.ControlPlanes, address) }

// SetMembers records the members of the last apply. The per-cluster records of clusters that are no longer
// members go with them (after a clean destroy: all): their Corefile zones. Copies of replicated objects
// are recorded by address and stay until a plan deletes them.
func (s *State) SetMembers(members map[string]model.Member) {
	s.Members = members
	for name := range s.Corefiles {
		if _, ok := members[name]; !ok {
			delete(s.Corefiles, name)
		}
	}
}

// SetAddon records the add-on configuration meshd wrote to in cluster.
func (s *State) SetAddon(cluster string, r AddonRecord) { setIn(&s.Addons, cluster, r) }

// RemoveAddon forgets the add-on of cluster.
func (s *State) RemoveAddon(cluster string) { removeFrom(&s.Addons, cluster) }

// Addon returns the record of cluster's add-on, if there is one.
func (s *State) Addon(cluster string) (AddonRecord, bool) {
	r, ok := s.Addons[cluster]
	return r, ok
}

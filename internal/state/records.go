package state

import (
	"slices"
	"sort"
	"strings"
)

// RouteSet returns the recorded routes keyed by RouteRecord.Key().
func (s *State) RouteSet() map[string]RouteRecord {
	m := make(map[string]RouteRecord, len(s.Routes))
	for _, r := range s.Routes {
		m[r.Key()] = r
	}
	return m
}

// AddRoute records r, replacing a record with the same key (route table and destination).
func (s *State) AddRoute(r RouteRecord) {
	for i := range s.Routes {
		if s.Routes[i].Key() == r.Key() {
			s.Routes[i] = r
			s.SortRoutes()
			return
		}
	}
	s.Routes = append(s.Routes, r)
	s.SortRoutes()
}

// RemoveRoute forgets the route to cidr in routeTableID; it is a no-op when no such route is recorded.
func (s *State) RemoveRoute(routeTableID, cidr string) {
	key := RouteRecord{RouteTableID: routeTableID, DestinationCIDR: cidr}.Key()
	s.Routes = slices.DeleteFunc(s.Routes, func(r RouteRecord) bool { return r.Key() == key })
	if len(s.Routes) == 0 {
		s.Routes = nil
	}
}

// SortRoutes orders Routes by (region, route table, destination), the order the state file is written in.
func (s *State) SortRoutes() {
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

package state

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRouteHelpers(t *testing.T) {
	s := New("m")
	r1 := RouteRecord{Region: "us-west-2", VPCID: "vpc-2", RouteTableID: "rtb-b", DestinationCIDR: "10.1.0.0/16", PeeringID: "pcx-1"}
	r2 := RouteRecord{Region: "us-west-1", VPCID: "vpc-1", RouteTableID: "rtb-a", DestinationCIDR: "10.2.0.0/16", PeeringID: "pcx-1"}
	r3 := RouteRecord{Region: "us-west-1", VPCID: "vpc-1", RouteTableID: "rtb-a", DestinationCIDR: "10.0.0.0/16", PeeringID: "pcx-2"}
	s.AddRoute(r1)
	s.AddRoute(r2)
	s.AddRoute(r3)
	s.SortRoutes()
	if diff := cmp.Diff([]RouteRecord{r3, r2, r1}, s.Routes); diff != "" {
		t.Fatalf("routes not sorted (-want +got):\n%s", diff)
	}
	// Same key replaces: at once in RouteSet, in Routes once sorted.
	r2b := r2
	r2b.PeeringID = "pcx-9"
	s.AddRoute(r2b)
	if s.RouteSet()[r2.Key()].PeeringID != "pcx-9" {
		t.Fatalf("RouteSet after AddRoute of the same key: %+v", s.RouteSet())
	}
	s.SortRoutes()
	if len(s.Routes) != 3 || s.Routes[1].PeeringID != "pcx-9" {
		t.Fatalf("AddRoute did not replace: %+v", s.Routes)
	}
	set := s.RouteSet()
	if len(set) != 3 || set["rtb-a|10.0.0.0/16"] != r3 {
		t.Fatalf("RouteSet = %+v", set)
	}
	s.RemoveRoute("rtb-a", "10.2.0.0/16")
	s.RemoveRoute("rtb-x", "10.2.0.0/16") // absent: no-op
	if diff := cmp.Diff([]RouteRecord{r3, r1}, s.Routes); diff != "" {
		t.Fatalf("after remove (-want +got):\n%s", diff)
	}
	s.RemoveRoute("rtb-a", "10.0.0.0/16")
	s.RemoveRoute("rtb-b", "10.1.0.0/16")
	if s.Routes != nil {
		t.Fatalf("routes = %#v, want nil", s.Routes)
	}
}

func TestSetCorefileZones(t *testing.T) {
	s := &State{} // nil maps
	in := []string{"b.svc.cluster.local", "a.svc.cluster.local", "b.svc.cluster.local"}
	s.SetCorefileZones("c1", in)
	if diff := cmp.Diff([]string{"a.svc.cluster.local", "b.svc.cluster.local"}, s.CorefileZones("c1")); diff != "" {
		t.Fatal(diff)
	}
	if in[0] != "b.svc.cluster.local" {
		t.Fatal("SetCorefileZones modified its argument")
	}
	s.SetCorefileZones("c1", nil)
	if _, ok := s.Corefiles["c1"]; ok {
		t.Fatal("empty zone list kept")
	}
}

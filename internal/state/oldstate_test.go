package state

import (
	"bytes"
	"os"
	"testing"
)

// testdata/v1-release-state.json was written by the release before the kinds registered their records
// (every kind of record in it). It must load as it is, and be written back byte for byte.
func TestStateOfTheLastReleaseLoads(t *testing.T) {
	data, err := os.ReadFile("testdata/v1-release-state.json")
	if err != nil {
		t.Fatal(err)
	}
	st, err := Decode("testdata/v1-release-state.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 3 || len(st.Routes) != 2 || len(st.Corefiles) != 2 || len(st.Replicas) != 1 ||
		len(st.LoadBalancers) != 2 || len(st.Addons) != 1 || len(st.ControlPlanes) != 2 {
		t.Errorf("records lost on load: %+v", st)
	}
	again, err := Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Errorf("written back differently:\n%s\nwant:\n%s", again, data)
	}
}

func TestTableRecordsRoundTrip(t *testing.T) {
	type rec struct {
		Cluster string `json:"cluster"`
	}
	tab := Table[rec]{Name: "things"}
	st := New("m")
	if err := tab.Set(st, "thing[a]", rec{Cluster: "a"}); err != nil {
		t.Fatal(err)
	}
	data, err := Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode("mem", data)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, err := tab.Get(back, "thing[a]"); err != nil || !ok || got.Cluster != "a" {
		t.Errorf("Get after a round trip: %+v %v %v", got, ok, err)
	}
	tab.Forget(back, "thing[a]")
	if back.Records != nil || len(tab.Addresses(back)) != 0 {
		t.Errorf("Forget left %v", back.Records)
	}
}

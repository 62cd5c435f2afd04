package plan_test

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/state"
)

// Every record of a state written by the last release is listed, at its kind's address: state list once
// left out the load balancers and add-ons.
func TestStateEntriesListEveryRecord(t *testing.T) {
	data, err := os.ReadFile("../state/testdata/v1-release-state.json")
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Decode("v1-release-state.json", data)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range plan.StateEntries(st) {
		got = append(got, e.Address)
	}
	want := []string{
		"member[ext-1]", "member[tidb-1]", "member[tidb-2]",
		"route[tidb-1:rtb-1a:10.2.0.0/16]", "route[tidb-2:rtb-2a:10.1.0.0/16]",
		"corefile[tidb-1]", "corefile[tidb-2]",
		"replica[tidb-ca:tidb-2]",
		"cp_account[kb:tidb-2]",
		"kubeconfig[kb]",
		"target_group_binding[web:tidb-2]",
		"lb_service[web]",
		"addon_corefile[tidb-1]",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("StateEntries (-want, +got):\n%s", diff)
	}
	// Each record of the file is one entry: count them in the JSON itself, so that a new field of the state
	// that no kind lists fails here.
	records, err := plantest.StateRecords(data)
	if err != nil {
		t.Fatal(err)
	}
	if records != len(got) {
		t.Errorf("the state file holds %d records, StateEntries lists %d", records, len(got))
	}
}

// A plan's record fixes reach the state through the kinds (Records.Fix).
func TestFixStateGoesThroughTheKinds(t *testing.T) {
	st := state.New("m")
	st.SetReplica("replica[a:b]", state.ReplicaRecord{Cluster: "b"})
	st.SetAddon("b", state.AddonRecord{Region: "r"})
	p := &plan.Plan{
		Record:              []state.RouteRecord{{RouteTableID: "rtb-1", DestinationCIDR: "10.0.0.0/16"}},
		ForgetReplicas:      []string{"replica[a:b]"},
		RecordLoadBalancers: map[string]state.LoadBalancerRecord{"lb_service[x]": {Cluster: "b"}},
		ForgetAddons:        []string{"b"},
		RecordControlPlanes: map[string]state.ReplicaRecord{"kubeconfig[k]": {Cluster: "b"}},
	}
	p.FixState(st)
	if len(st.Routes) != 1 || st.Replicas != nil || len(st.LoadBalancers) != 1 || st.Addons != nil || len(st.ControlPlanes) != 1 {
		t.Errorf("FixState: %+v", st)
	}
}

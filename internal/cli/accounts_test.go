package cli_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/meshd-io/meshd/internal/model"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/sandbox"
)

// Two accounts in moto: the default one, which the harness's static credentials reach, and another one
// reached by assuming a role of it (moto puts what an assumed role of account X does in account X).
const (
	accountA   = "123456789012"
	accountB   = "111111111111"
	roleB      = "arn:aws:iam::111111111111:role/meshd"
	externalID = "mesh-tidb"
)

// accountsHarness is the three-cluster harness spread over two accounts: tidb-1 (EKS, us-west-1) in the
// default account, tidb-2 (us-west-2) and tidb-3 (EKS, us-east-1) in account B behind roleB. cfgs[i] reaches
// nets[i] with its account's credentials.
type accountsHarness struct {
	meshExtra string // more of the mesh block
	*harness
	cfgs  []aws.Config
	calls *callRecorder
}

var accountOf = []string{accountA, accountB, accountB}

func newAccountsHarness(t *testing.T) *accountsHarness {
	t.Helper()
	m := startMoto(t)
	m.Reset(t)
	m.SetEnv(t)
	h := &harness{t: t, moto: m, dir: t.TempDir()}
	h.spec = h.dir + "/mesh.hcl"
	h.state = h.dir + "/meshd.state.json"
	assumed := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(m.AWSConfig("us-east-1")), roleB,
		func(o *stscreds.AssumeRoleOptions) { o.ExternalID = aws.String(externalID) }))
	ah := &accountsHarness{harness: h, calls: &callRecorder{keys: map[string]map[string]bool{}, count: map[string]int{}}}
	for i, region := range regions {
		cfg := m.AWSConfig(region)
		if accountOf[i] == accountB {
			cfg.Credentials = assumed
		}
		n, err := sandbox.CreateNetwork(context.Background(), cfg, sandbox.ClusterNet{
			Name: fmt.Sprintf("tidb-%d", i+1), Region: region, CIDR: fmt.Sprintf("10.%d.0.0/16", i+1), EKS: i != 1})
		if err != nil {
			t.Fatal(err)
		}
		h.nets = append(h.nets, n)
		ah.cfgs = append(ah.cfgs, cfg)
	}
	h.awsOptions = []func(*middleware.Stack) error{ah.calls.middleware}
	ah.writeSpec()
	return ah
}

func (h *accountsHarness) writeSpec() {
	var b strings.Builder
	b.WriteString("mesh \"tidb\" {\n  dns {\n    enabled = false\n  }\n" + h.meshExtra + "}\n")
	for i, n := range h.nets {
		fmt.Fprintf(&b, "\ncluster %q {\n  region       = %q\n  kube_context = %q\n  namespace    = \"pingcap-%d\"\n", n.Name, n.Region, n.Name, i+1)
		if n.EKS {
			fmt.Fprintf(&b, "  eks_cluster  = %q\n", n.Name)
		} else {
			fmt.Fprintf(&b, "  vpc_id            = %q\n  security_group_id = %q\n", n.VPCID, n.SecurityGroupID)
		}
		if accountOf[i] == accountB {
			fmt.Fprintf(&b, "  assume_role = %q\n  external_id = %q\n", roleB, externalID)
		}
		b.WriteString("}\n")
	}
	if err := os.WriteFile(h.spec, []byte(b.String()), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *accountsHarness) ec2(i int) *ec2.Client { return ec2.NewFromConfig(h.cfgs[i]) }

// snapshot is harness.snapshot with each cluster's objects read with its own account's credentials;
// owners holds each live peering's "<requester owner>-><accepter owner>" as each account sees it.
func (h *accountsHarness) snapshot() (w world, owners map[string][]string) {
	h.t.Helper()
	ctx := context.Background()
	w = world{Routes: map[string][]string{}, Rules: map[string][]string{}}
	owners = map[string][]string{}
	seen := map[string]bool{}
	for i, n := range h.nets {
		c := h.ec2(i)
		pcs, err := c.DescribeVpcPeeringConnections(ctx, &ec2.DescribeVpcPeeringConnectionsInput{})
		if err != nil {
			h.t.Fatal(err)
		}
		for _, pc := range pcs.VpcPeeringConnections {
			id, status := aws.ToString(pc.VpcPeeringConnectionId), string(pc.Status.Code)
			if status == "deleted" || status == "rejected" {
				continue
			}
			o := fmt.Sprintf("%s->%s %s seen by %s", aws.ToString(pc.RequesterVpcInfo.OwnerId), aws.ToString(pc.AccepterVpcInfo.OwnerId), status, accountOf[i])
			if !slices.Contains(owners[id], o) {
				owners[id] = append(owners[id], o)
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			// The tags are the requester's: AWS keeps tags per account.
			w.Peerings = append(w.Peerings, fmt.Sprintf("%s %s->%s %s mesh=%s", id, aws.ToString(pc.RequesterVpcInfo.VpcId),
				aws.ToString(pc.AccepterVpcInfo.VpcId), status, tag(pc.Tags, "meshd.io/mesh")))
		}
		w.addNetwork(h.t, c, n)
	}
	sort.Strings(w.Peerings)
	return w, owners
}

// callRecorder keeps, by operation, the access keys that signed meshd's AWS requests (each attempt), and
// counts operations once per call.
type callRecorder struct {
	mu    sync.Mutex
	keys  map[string]map[string]bool
	count map[string]int
}

var credentialRe = regexp.MustCompile(`Credential=([^/]+)/`)

func (c *callRecorder) middleware(s *middleware.Stack) error {
	if err := s.Initialize.Add(middleware.InitializeMiddlewareFunc("count-calls", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		c.mu.Lock()
		c.count[awsmiddleware.GetOperationName(ctx)]++
		c.mu.Unlock()
		return next.HandleInitialize(ctx, in)
	}), middleware.Before); err != nil {
		return err
	}
	// In the deserialize step the request is signed.
	return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("record-keys", func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
		if req, ok := in.Request.(*smithyhttp.Request); ok {
			key := "unsigned"
			if m := credentialRe.FindStringSubmatch(req.Header.Get("Authorization")); m != nil {
				key = m[1]
			}
			op := awsmiddleware.GetOperationName(ctx)
			c.mu.Lock()
			if c.keys[op] == nil {
				c.keys[op] = map[string]bool{}
			}
			c.keys[op][key] = true
			c.mu.Unlock()
		}
		return next.HandleDeserialize(ctx, in)
	}), middleware.After)
}

func (c *callRecorder) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.keys)
	clear(c.count)
}

func (c *callRecorder) keysOf(op string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k := range c.keys[op] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (c *callRecorder) calls(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count[op]
}

func TestMeshAcrossTwoAccounts(t *testing.T) {
	h := newAccountsHarness(t)
	ctx := context.Background()

	// The two accounts are apart in moto: the default credentials do not see account B's VPC.
	if out, err := h.ec2(0).DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{h.nets[1].VPCID}}); err == nil && len(out.Vpcs) > 0 {
		t.Fatalf("the default account sees %s of account B: moto does not separate the accounts", h.nets[1].VPCID)
	}
	h.mustRun(0, "validate")
	before, _ := h.snapshot()

	r := h.mustRun(2, "plan", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "Plan: 21 to add, 0 to change, 0 to destroy.") {
		t.Fatalf("first plan summary:\n%s", r.stdout)
	}
	// Applied from a saved plan: the plan file carries each object's access, nothing is observed again.
	planFile := h.dir + "/mesh.plan"
	h.mustRun(0, "plan", "--out", planFile)
	h.calls.reset()
	r = h.mustRun(0, "apply", planFile)
	if !strings.Contains(r.stdout, "Apply complete! Resources: 21 added, 0 changed, 0 destroyed") {
		t.Fatalf("apply output:\n%s", r.stdout)
	}
	converged, owners := h.snapshot()
	h.assertConverged(converged)

	// Who requested and who accepted each peering, as both accounts see it: tidb-1 (A) requests from
	// tidb-2 and tidb-3 (B) with PeerOwnerId; tidb-2 requests from tidb-3 within B.
	var got []string
	for _, id := range slices.Sorted(maps.Keys(owners)) {
		sort.Strings(owners[id])
		got = append(got, strings.Join(owners[id], ", "))
	}
	sort.Strings(got)
	crossAccount := accountA + "->" + accountB + " active seen by " + accountB + ", " + accountA + "->" + accountB + " active seen by " + accountA
	want := []string{accountB + "->" + accountB + " active seen by " + accountB, crossAccount, crossAccount}
	if !slices.Equal(got, want) {
		t.Errorf("peering owners:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The calls went out with the right account's keys: every accept with B's (all three accepters are in
	// B), requests with both A's and B's; routes and rules in both accounts. The role was assumed once for
	// the whole apply, though it is used in two regions.
	if keys := h.calls.keysOf("AcceptVpcPeeringConnection"); len(keys) != 1 || keys[0] == "testing" {
		t.Errorf("AcceptVpcPeeringConnection signed with %v, want only account B's assumed-role key", keys)
	}
	for _, op := range []string{"CreateVpcPeeringConnection", "CreateRoute", "AuthorizeSecurityGroupIngress"} {
		if keys := h.calls.keysOf(op); len(keys) != 2 || !slices.Contains(keys, "testing") {
			t.Errorf("%s signed with %v, want the default key and account B's", op, keys)
		}
	}
	if n := h.calls.calls("AssumeRole"); n != 1 {
		t.Errorf("AssumeRole called %d times in one apply, want 1", n)
	}
	if keys := h.calls.keysOf("AssumeRole"); !slices.Equal(keys, []string{"testing"}) {
		t.Errorf("AssumeRole signed with %v, want the default credentials", keys)
	}

	r = h.mustRun(0, "plan", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "No changes.") {
		t.Fatalf("second plan:\n%s", r.stdout)
	}

	// Drift in account B: a route deleted there is planned and restored with B's credentials.
	n := h.nets[1]
	if _, err := h.ec2(1).DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(n.PrivateTable),
		DestinationCidrBlock: aws.String(h.nets[0].CIDR)}); err != nil {
		t.Fatal(err)
	}
	r = h.mustRun(2, "plan", "--detailed-exitcode")
	wantLine := fmt.Sprintf("route[tidb-2:%s:10.1.0.0/16] will be created: route was deleted outside meshd", n.PrivateTable)
	if !strings.Contains(r.stdout, wantLine) || !strings.Contains(r.stdout, "Plan: 1 to add, 0 to change, 0 to destroy.") {
		t.Fatalf("plan after deleting a route in account B: want %q and one change:\n%s", wantLine, r.stdout)
	}
	h.mustRun(0, "apply", "--auto-approve")
	if repaired, _ := h.snapshot(); !equalWorld(converged, repaired) {
		t.Errorf("after repair:\n%+v\nwant:\n%+v", repaired, converged)
	}

	// Destroy leaves nothing of meshd's in either account.
	r = h.mustRun(0, "destroy", "--auto-approve")
	if !strings.Contains(r.stdout, "21 destroyed") {
		t.Errorf("destroy output:\n%s", r.stdout)
	}
	if after, _ := h.snapshot(); !equalWorld(before, after) {
		t.Errorf("destroy did not restore the accounts:\nbefore: %+v\nafter:  %+v", before, after)
	}
	h.mustRun(0, "plan", "--destroy", "--detailed-exitcode")
}

// TestLoadBalancerInAnotherAccount: the NLB behind a DNS Service of a cluster with an assumed role is found
// in that cluster's account (with its private addresses), and not with the default credentials.
func TestLoadBalancerInAnotherAccount(t *testing.T) {
	h := newAccountsHarness(t)
	ctx := context.Background()
	n := h.nets[1]
	out, err := elbv2.NewFromConfig(h.cfgs[1]).CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{
		Name: aws.String("k8s-dns-tidb2"), Type: elbtypes.LoadBalancerTypeEnumNetwork,
		Scheme: elbtypes.LoadBalancerSchemeEnumInternal, Subnets: n.SubnetIDs})
	if err != nil {
		t.Fatal(err)
	}
	lb := out.LoadBalancers[0]
	if _, err := h.ec2(1).CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(n.SubnetIDs[1]),
		Description: aws.String(awsprovider.ENIDescription(aws.ToString(lb.LoadBalancerArn))), PrivateIpAddress: aws.String("10.2.1.53")}); sentTwice(err, "InvalidIPAddress.InUse") != nil {
		t.Fatal(err)
	}
	p, err := awsprovider.New(ctx, awsprovider.Options{Mesh: "tidb"})
	if err != nil {
		t.Fatal(err)
	}
	host := aws.ToString(lb.DNSName)
	found, err := p.LoadBalancersIn(ctx, model.Access{AssumeRole: roleB, ExternalID: externalID}, n.Region, []string{host})
	if err != nil {
		t.Fatal(err)
	}
	if got := found[host]; got.Name != "k8s-dns-tidb2" || !slices.Equal(got.Addresses, []string{"10.2.1.53"}) {
		t.Errorf("with the role: %+v, want k8s-dns-tidb2 at 10.2.1.53", got)
	}
	found, err = p.LoadBalancers(ctx, n.Region, []string{host})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := found[host]; ok {
		t.Errorf("the default account sees account B's NLB: %+v", got)
	}
}

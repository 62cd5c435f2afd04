package cli_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go/middleware"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshd-io/meshd/internal/corefile"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
)

// The Kubernetes side is shared by the tests of this package: one etcd and three kube-apiservers (several
// seconds each to start), one kubeconfig with a context per cluster. Each test resets the objects meshd
// touches; TestMain stops the processes.
var (
	kubeOnce sync.Once
	kubeEnv  *kubeWorld
	kubeErr  error
)

type kubeWorld struct {
	dir        string
	etcd       *testenv.EtcdServer
	servers    map[string]*testenv.APIServer
	clients    map[string]kubernetes.Interface
	kubeconfig string
}

var clusterNames = []string{"tidb-1", "tidb-2", "tidb-3"}

func startKube(t *testing.T) *kubeWorld {
	t.Helper()
	testenv.Require(t, testenv.BinEtcd)
	testenv.Require(t, testenv.BinKubeAPIServer)
	kubeOnce.Do(func() {
		kw := &kubeWorld{servers: map[string]*testenv.APIServer{}, clients: map[string]kubernetes.Interface{}}
		kubeEnv = kw
		kw.dir, kubeErr = os.MkdirTemp("", "meshd-kube-")
		if kubeErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), testenv.APIServerStartTimeout)
		defer cancel()
		kw.etcd, kubeErr = testenv.RunEtcd(ctx, filepath.Join(kw.dir, "etcd"), filepath.Join(kw.dir, "etcd.log"))
		if kubeErr != nil {
			return
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		var errs []error
		for _, name := range clusterNames {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := testenv.RunAPIServer(ctx, testenv.APIServerOptions{Name: name, EtcdURL: kw.etcd.ClientURL, Dir: filepath.Join(kw.dir, name)})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				kw.servers[name] = s
			}()
		}
		wg.Wait()
		if kubeErr = errors.Join(errs...); kubeErr != nil {
			return
		}
		for name, s := range kw.servers {
			if kw.clients[name], kubeErr = kubernetes.NewForConfig(s.RESTConfig()); kubeErr != nil {
				return
			}
		}
		kw.kubeconfig = filepath.Join(kw.dir, "kubeconfig")
		kubeErr = testenv.WriteMultiKubeconfig(kw.kubeconfig, kw.servers)
	})
	if kubeErr != nil {
		t.Fatalf("starting the Kubernetes side: %v", kubeErr)
	}
	return kubeEnv
}

func stopKube() {
	if kubeEnv == nil {
		return
	}
	for _, s := range kubeEnv.servers {
		_ = s.Stop()
	}
	if kubeEnv.etcd != nil {
		_ = kubeEnv.etcd.Stop()
	}
	_ = os.RemoveAll(kubeEnv.dir)
}

// reset puts every cluster back to a fresh EKS cluster: no DNS Service, no backup, and the add-on's
// Corefile (written by the field manager "eks", as the add-on does) or the given one.
func (kw *kubeWorld) reset(t *testing.T, corefiles map[string]string) {
	t.Helper()
	ctx := context.Background()
	for name, c := range kw.clients {
		if err := c.CoreV1().Services("kube-system").Delete(ctx, "across-cluster-dns-tcp", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		for _, cm := range []string{"coredns", "coredns-meshd-backup"} {
			if err := c.CoreV1().ConfigMaps("kube-system").Delete(ctx, cm, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
		}
		text := corefile.EKSDefault
		if s, ok := corefiles[name]; ok {
			text = s
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system",
			Labels: map[string]string{"eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns"}},
			Data: map[string]string{"Corefile": text}}
		if _, err := c.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{FieldManager: "eks"}); err != nil {
			t.Fatal(err)
		}
	}
}

func (kw *kubeWorld) corefile(t *testing.T, cluster string) string {
	t.Helper()
	cm, err := kw.clients[cluster].CoreV1().ConfigMaps("kube-system").Get(context.Background(), "coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm.Data["Corefile"]
}

func (kw *kubeWorld) setCorefile(t *testing.T, cluster, text string) {
	t.Helper()
	cms := kw.clients[cluster].CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(context.Background(), "coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["Corefile"] = text
	if _, err := cms.Update(context.Background(), cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
}

// backup returns the backup ConfigMap of a cluster, or nil.
func (kw *kubeWorld) backup(t *testing.T, cluster string) *corev1.ConfigMap {
	t.Helper()
	cm, err := kw.clients[cluster].CoreV1().ConfigMaps("kube-system").Get(context.Background(), "coredns-meshd-backup", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func (kw *kubeWorld) service(t *testing.T, cluster string) *corev1.Service {
	t.Helper()
	svc, err := kw.clients[cluster].CoreV1().Services("kube-system").Get(context.Background(), "across-cluster-dns-tcp", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// lbController stands in for the AWS load balancer controller: when a cluster's DNS Service appears
// without a load balancer, it creates an internal network load balancer in moto in the cluster's subnets,
// one ENI per subnet described `ELB net/<name>/<id>` (moto makes none), and sets the Service's
// status.loadBalancer.ingress hostname to the NLB's DNS name.
type lbController struct {
	h    *harness
	kw   *kubeWorld
	stop context.CancelFunc
	done chan struct{}

	mu      sync.Mutex
	ips     map[string][]string // by cluster: the addresses of its current NLB
	descs   map[string]string   // by cluster: the ENI description of its current NLB
	created int
	errs    []error
}

func startLBController(t *testing.T, h *harness, kw *kubeWorld) *lbController {
	ctx, cancel := context.WithCancel(context.Background())
	lc := &lbController{h: h, kw: kw, stop: cancel, done: make(chan struct{}), ips: map[string][]string{}, descs: map[string]string{}}
	go func() {
		defer close(lc.done)
		for {
			for _, n := range h.nets {
				if err := lc.reconcile(ctx, n); err != nil && ctx.Err() == nil {
					lc.mu.Lock()
					lc.errs = append(lc.errs, fmt.Errorf("%s: %w", n.Name, err))
					lc.mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(30 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-lc.done
		for _, err := range lc.errs {
			t.Errorf("load balancer stand-in: %v", err)
		}
	})
	return lc
}

func (lc *lbController) addresses(cluster string) []string {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.ips[cluster]
}

func (lc *lbController) reconcile(ctx context.Context, n sandbox.Network) error {
	svcs := lc.kw.clients[n.Name].CoreV1().Services("kube-system")
	svc, err := svcs.Get(ctx, "across-cluster-dns-tcp", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Annotations["service.beta.kubernetes.io/aws-load-balancer-type"] != "nlb" ||
		len(svc.Status.LoadBalancer.Ingress) > 0 {
		return nil
	}
	lc.mu.Lock()
	lc.created++
	seq := lc.created
	lc.mu.Unlock()

	cfg := lc.h.moto.AWSConfig(n.Region)
	lbName := fmt.Sprintf("k8s-kubesyst-acrossc-%04d", seq)
	out, err := elbv2.NewFromConfig(cfg).CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{
		Name: aws.String(lbName), Subnets: n.SubnetIDs,
		Scheme: elbtypes.LoadBalancerSchemeEnumInternal, Type: elbtypes.LoadBalancerTypeEnumNetwork})
	if sandbox.Retried(err, "DuplicateLoadBalancerName") {
		// The SDK retried a create moto had done (see sandbox.Retried): the NLB of this name is ours.
		if out2, derr := elbv2.NewFromConfig(cfg).DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{Names: []string{lbName}}); derr == nil && len(out2.LoadBalancers) == 1 {
			out, err = &elbv2.CreateLoadBalancerOutput{LoadBalancers: out2.LoadBalancers}, nil
		}
	}
	if err != nil {
		return fmt.Errorf("creating the NLB: %w", err)
	}
	lb := out.LoadBalancers[0]
	// What AWS names an NLB's interfaces, and what meshd looks them up by.
	desc := awsprovider.ENIDescription(aws.ToString(lb.LoadBalancerArn))
	prefix := strings.TrimSuffix(n.CIDR, ".0.0/16")
	var ips []string
	for j, subnet := range n.SubnetIDs {
		ip := fmt.Sprintf("%s.%d.%d", prefix, j, 100+seq)
		if _, err := ec2.NewFromConfig(cfg).CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
			SubnetId: aws.String(subnet), Description: aws.String(desc), PrivateIpAddress: aws.String(ip)}); err != nil &&
			!sandbox.Retried(err, "InvalidIPAddress.InUse") {
			return fmt.Errorf("creating the NLB's network interface: %w", err)
		}
		ips = append(ips, ip)
	}
	lc.mu.Lock()
	lc.ips[n.Name] = ips
	lc.descs[n.Name] = desc
	lc.mu.Unlock()
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{Hostname: aws.ToString(lb.DNSName)}}
	_, err = svcs.UpdateStatus(ctx, svc, metav1.UpdateOptions{})
	return err
}

// opCounter counts AWS calls by "<service> <operation>".
type opCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *opCounter) middleware(s *middleware.Stack) error {
	return s.Initialize.Add(middleware.InitializeMiddlewareFunc("count-ops", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		c.mu.Lock()
		c.calls[awsmiddleware.GetServiceID(ctx)+"."+awsmiddleware.GetOperationName(ctx)]++
		c.mu.Unlock()
		return next.HandleInitialize(ctx, in)
	}), middleware.Before)
}

// newDNSHarness is newHarness with the mesh's DNS part on: three API servers behind one kubeconfig, each
// with the EKS add-on's Corefile (or the given one), and the load balancer stand-in running.
func newDNSHarness(t *testing.T, corefiles map[string]string) (*harness, *kubeWorld, *lbController) {
	t.Helper()
	kw := startKube(t)
	h := newHarness(t)
	kw.reset(t, corefiles)
	h.dns = true
	h.kubeconfig = kw.kubeconfig
	h.writeSpec("")
	return h, kw, startLBController(t, h, kw)
}

// meshdBlock is the block meshd appends for a zone (after a blank line), as docs/dns.md shows it, with
// the addresses in numeric order.
func meshdBlock(zone string, ips []string) string {
	ips = slices.Clone(ips)
	slices.SortFunc(ips, func(a, b string) int { return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b)) })
	return "\n# meshd.io/mesh=tidb: managed by meshd, edits here are overwritten\n" + zone + ":53 {\n    errors\n    cache 30\n" +
		"    forward . " + strings.Join(ips, " ") + " {\n        force_tcp\n    }\n}\n"
}

// wantCorefile is base with a block for every other cluster's namespace, forwarding to its NLB.
func wantCorefile(lc *lbController, cluster, base string) string {
	out := base
	for i, name := range clusterNames {
		if name != cluster {
			out += meshdBlock(fmt.Sprintf("pingcap-%d.svc.cluster.local", i+1), lc.addresses(name))
		}
	}
	return out
}

func (h *harness) assertDNSConverged(kw *kubeWorld, lc *lbController, originals map[string]string) {
	t := h.t
	t.Helper()
	for _, name := range clusterNames {
		svc := kw.service(t, name)
		if svc == nil {
			t.Fatalf("%s: no DNS Service", name)
		}
		if svc.Labels["app.kubernetes.io/managed-by"] != "meshd" || svc.Labels["meshd.io/mesh"] != "tidb" ||
			svc.Annotations["service.beta.kubernetes.io/aws-load-balancer-type"] != "nlb" ||
			svc.Annotations["service.beta.kubernetes.io/aws-load-balancer-internal"] != "true" ||
			svc.Annotations["service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled"] != "true" ||
			svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.Selector["k8s-app"] != "kube-dns" || len(svc.Spec.Selector) != 1 ||
			len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 53 || svc.Spec.Ports[0].Protocol != corev1.ProtocolTCP ||
			svc.Spec.Ports[0].Name != "dns-tcp" || svc.Spec.Ports[0].TargetPort.IntValue() != 53 {
			t.Errorf("%s: DNS Service is not as docs/dns.md describes it: labels %v annotations %v spec %+v", name, svc.Labels, svc.Annotations, svc.Spec)
		}
		if got, want := kw.corefile(t, name), wantCorefile(lc, name, originals[name]); got != want {
			t.Errorf("%s: Corefile:\n%s\nwant:\n%s", name, got, want)
		}
		b := kw.backup(t, name)
		if b == nil || b.Data["Corefile"] != originals[name] || b.Labels["app.kubernetes.io/managed-by"] != "meshd" || b.Labels["meshd.io/mesh"] != "tidb" {
			t.Errorf("%s: backup ConfigMap %+v, want the original Corefile with meshd's labels", name, b)
		}
	}
}

func TestDNSApplyRevertDestroy(t *testing.T) {
	h, kw, lc := newDNSHarness(t, nil)
	before := h.snapshot()

	r := h.mustRun(2, "plan", "--detailed-exitcode")
	for _, want := range []string{
		"dns_service[tidb-1] will be created: DNS Service missing",
		"corefile[tidb-2] will be updated in place: add blocks for pingcap-1.svc.cluster.local, pingcap-3.svc.cluster.local",
		"pingcap-3.svc.cluster.local = dns_service[tidb-3].id (known after apply)",
		`Warning: The Corefile of cluster tidb-1 is managed by the EKS CoreDNS add-on (field manager "eks")`,
		"Plan: 24 to add, 3 to change, 0 to destroy.",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("first plan lacks %q:\n%s", want, r.stdout)
		}
	}
	// One graph: the DNS Services with the peerings, the Corefiles after the routes and rules.
	if i, j := strings.Index(r.stdout, "dns_service[tidb-1]"), strings.Index(r.stdout, "corefile[tidb-1]"); i < 0 || j < i ||
		strings.Index(r.stdout, "sg_rule[") > j {
		t.Errorf("plan order: want DNS Services before the routes and Corefiles last:\n%s", r.stdout)
	}

	start := time.Now()
	r = h.mustRun(0, "apply", "--auto-approve")
	t.Logf("apply from empty took %v", time.Since(start))
	if !strings.Contains(r.stdout, "Apply complete! Resources: 24 added, 3 changed, 0 destroyed") {
		t.Fatalf("apply output:\n%s", r.stdout)
	}
	originals := map[string]string{"tidb-1": corefile.EKSDefault, "tidb-2": corefile.EKSDefault, "tidb-3": corefile.EKSDefault}
	h.assertDNSConverged(kw, lc, originals)
	h.assertConverged(h.snapshot())
	backupVersion := kw.backup(t, "tidb-2").ResourceVersion

	r = h.mustRun(0, "plan", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "No changes.") {
		t.Fatalf("second plan:\n%s", r.stdout)
	}

	// Someone puts tidb-2's Corefile back to the backup (as an EKS add-on update would).
	kw.setCorefile(t, "tidb-2", kw.backup(t, "tidb-2").Data["Corefile"])
	r = h.mustRun(2, "plan", "--detailed-exitcode")
	for _, want := range []string{
		"corefile[tidb-2] will be updated in place: restore blocks removed outside meshd for pingcap-1.svc.cluster.local, pingcap-3.svc.cluster.local",
		"Plan: 0 to add, 1 to change, 0 to destroy.",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan after the revert lacks %q:\n%s", want, r.stdout)
		}
	}
	h.mustRun(0, "apply", "--auto-approve")
	h.assertDNSConverged(kw, lc, originals)
	if v := kw.backup(t, "tidb-2").ResourceVersion; v != backupVersion {
		t.Errorf("the backup was written again (resourceVersion %s -> %s): it must be saved once", backupVersion, v)
	}
	// Observing the DNS side costs one DescribeLoadBalancers and one DescribeNetworkInterfaces per region.
	calls := &opCounter{calls: map[string]int{}}
	h.awsOptions = []func(*middleware.Stack) error{calls.middleware}
	h.mustRun(0, "plan", "--detailed-exitcode")
	h.awsOptions = nil
	if got, want := calls.calls["Elastic Load Balancing v2.DescribeLoadBalancers"], len(regions); got != want {
		t.Errorf("%d DescribeLoadBalancers per plan, want %d: %v", got, want, calls.calls)
	}
	if got, want := calls.calls["EC2.DescribeNetworkInterfaces"], len(regions); got != want {
		t.Errorf("%d DescribeNetworkInterfaces per plan, want %d: %v", got, want, calls.calls)
	}

	// tidb-3's NLB gets a third address: the next plan updates the blocks for it in the other Corefiles.
	n := h.nets[2]
	if _, err := h.ec2(n.Region).CreateNetworkInterface(context.Background(), &ec2.CreateNetworkInterfaceInput{
		SubnetId: aws.String(n.SubnetIDs[0]), Description: aws.String(lc.descs["tidb-3"]), PrivateIpAddress: aws.String("10.3.0.250")}); err != nil {
		t.Fatal(err)
	}
	r = h.mustRun(2, "plan", "--detailed-exitcode")
	for _, want := range []string{
		"corefile[tidb-1] will be updated in place: update blocks for pingcap-3.svc.cluster.local",
		"corefile[tidb-2] will be updated in place: update blocks for pingcap-3.svc.cluster.local",
		"Plan: 0 to add, 2 to change, 0 to destroy.",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan after the NLB's addresses changed lacks %q:\n%s", want, r.stdout)
		}
	}
	h.mustRun(0, "apply", "--auto-approve")
	lc.mu.Lock()
	lc.ips["tidb-3"] = append(lc.ips["tidb-3"], "10.3.0.250")
	lc.mu.Unlock()
	h.assertDNSConverged(kw, lc, originals)
	h.mustRun(0, "plan", "--detailed-exitcode")

	r = h.mustRun(0, "destroy", "--auto-approve")
	for _, name := range clusterNames {
		if svc := kw.service(t, name); svc != nil {
			t.Errorf("%s: DNS Service still there after destroy", name)
		}
		if b := kw.backup(t, name); b != nil {
			t.Errorf("%s: backup ConfigMap still there after destroy", name)
		}
		if got := kw.corefile(t, name); got != corefile.EKSDefault {
			t.Errorf("%s: Corefile after destroy:\n%q\nwant the original:\n%q", name, got, corefile.EKSDefault)
		}
	}
	if got := h.snapshot(); !equalWorld(before, got) {
		t.Errorf("destroy did not restore the account:\nbefore: %+v\nafter:  %+v", before, got)
	}
	st, err := os.ReadFile(h.state)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(st), "corefiles") {
		t.Errorf("the state still records Corefile zones after destroy:\n%s", st)
	}
	h.mustRun(0, "plan", "--destroy", "--detailed-exitcode")
}

// userCorefile is tidb-1's Corefile with the user's own comments and server block.
var userCorefile = "# Cluster DNS. Edited by the platform team; ask #dns before changing.\n" + corefile.EKSDefault + `
# The corporate zone, forwarded to the office resolvers.
corp.example.com:53 {
    errors
    forward . 10.200.0.2 10.200.0.3   # two resolvers
}
# end of the platform team's blocks`

func TestDNSUserBlocksSurvive(t *testing.T) {
	h, kw, lc := newDNSHarness(t, map[string]string{"tidb-1": userCorefile})
	// Through a saved plan: the NLB addresses are placeholders in the file, resolved during the apply.
	planFile := filepath.Join(h.dir, "dns.plan")
	h.mustRun(0, "plan", "--out", planFile)
	h.mustRun(0, "apply", planFile)
	got := kw.corefile(t, "tidb-1")
	// The user's text had no final line break: meshd adds one before its first block, nothing else.
	if want := wantCorefile(lc, "tidb-1", userCorefile+"\n"); got != want {
		t.Errorf("Corefile of tidb-1 after apply:\n%s\nwant:\n%s", got, want)
	}
	h.mustRun(0, "plan", "--detailed-exitcode")

	h.mustRun(0, "destroy", "--auto-approve")
	if got := kw.corefile(t, "tidb-1"); strings.TrimSuffix(got, "\n") != userCorefile {
		t.Errorf("Corefile of tidb-1 after destroy:\n%q\nwant:\n%q", got, userCorefile)
	}
	for _, name := range clusterNames[1:] {
		if got := kw.corefile(t, name); got != corefile.EKSDefault {
			t.Errorf("%s: Corefile after destroy:\n%q", name, got)
		}
	}
}

func TestDNSConflictingUserBlock(t *testing.T) {
	mine := corefile.EKSDefault + "\npingcap-2.svc.cluster.local:53 {\n    forward . 10.2.9.9\n}\n"
	h, kw, _ := newDNSHarness(t, map[string]string{"tidb-1": mine})
	r := h.mustRun(1, "plan")
	want := "Conflict: The Corefile of cluster tidb-1 already serves zone pingcap-2.svc.cluster.local in a block meshd did not write"
	if !strings.Contains(r.stdout, want) {
		t.Fatalf("plan does not report %q:\n%s", want, r.stdout)
	}
	r = h.mustRun(1, "apply", "--auto-approve")
	if !strings.Contains(r.stderr, "nothing was changed") {
		t.Errorf("apply with a conflict: %s", r.stderr)
	}
	if got := kw.corefile(t, "tidb-1"); got != mine {
		t.Errorf("the user's Corefile changed:\n%s", got)
	}
	for _, name := range clusterNames {
		if kw.service(t, name) != nil || kw.backup(t, name) != nil {
			t.Errorf("%s: apply with a conflict created objects", name)
		}
	}
}

func TestDNSKubeContextProblems(t *testing.T) {
	h, _, _ := newDNSHarness(t, nil)
	spec, err := os.ReadFile(h.spec)
	if err != nil {
		t.Fatal(err)
	}
	lineOf := func(src, needle string) int {
		i := strings.Index(src, needle)
		if i < 0 {
			t.Fatalf("%q not in the spec", needle)
		}
		return strings.Count(src[:i], "\n") + 1
	}

	t.Run("missing context", func(t *testing.T) {
		h.t = t
		src := strings.Replace(string(spec), `kube_context = "tidb-2"`, `kube_context = "tidb-9"`, 1)
		if err := os.WriteFile(h.spec, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		r := h.mustRun(1, "plan")
		want := fmt.Sprintf("%s:%d,", h.spec, lineOf(src, `"tidb-9"`))
		for _, s := range []string{want, "Unknown kube context", `Cluster "tidb-2"`, `no context "tidb-9"`, `in cluster "tidb-2"`} {
			if !strings.Contains(r.stderr, s) {
				t.Errorf("diagnostics lack %q:\n%s", s, r.stderr)
			}
		}
	})

	t.Run("unreachable cluster", func(t *testing.T) {
		h.t = t
		if err := os.WriteFile(h.spec, spec, 0o644); err != nil {
			t.Fatal(err)
		}
		// A kubeconfig whose tidb-3 points at a port nothing listens on.
		dead := &testenv.APIServer{Name: "tidb-3", Host: fmt.Sprintf("https://127.0.0.1:%d", testenv.FreePortT(t)), Token: "secret-token-value"}
		kc := filepath.Join(t.TempDir(), "kubeconfig")
		kw := kubeEnv
		if err := testenv.WriteMultiKubeconfig(kc, map[string]*testenv.APIServer{"tidb-1": kw.servers["tidb-1"], "tidb-2": kw.servers["tidb-2"], "tidb-3": dead}); err != nil {
			t.Fatal(err)
		}
		h.kubeconfig = kc
		defer func() { h.kubeconfig = kw.kubeconfig }()
		r := h.mustRun(1, "plan")
		want := fmt.Sprintf("%s:%d,", h.spec, lineOf(string(spec), `kube_context = "tidb-3"`))
		for _, s := range []string{want, "Cannot reach cluster", `Cluster "tidb-3"`} {
			if !strings.Contains(r.stderr, s) {
				t.Errorf("diagnostics lack %q:\n%s", s, r.stderr)
			}
		}
		if strings.Contains(r.stderr+r.stdout, "secret-token-value") || strings.Contains(r.stderr+r.stdout, kw.servers["tidb-1"].Token) {
			t.Errorf("a token from the kubeconfig was printed:\n%s", r.stderr)
		}
	})
}

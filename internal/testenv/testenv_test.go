package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestLookupMissing(t *testing.T) {
	t.Setenv("MESHD_COREDNS", filepath.Join(t.TempDir(), "nope"))
	_, err := Lookup(BinCoreDNS)
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "make testenv") || !strings.Contains(err.Error(), "MESHD_COREDNS") {
		t.Fatalf("Lookup of a missing binary: %v", err)
	}
}

// The defaults must match what scripts/testenv.sh installs, and every variable it prints must be a Binary's
// (a part added to the script alone would be installed but never looked up).
func TestDefaultsMatchScript(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", filepath.Join(root, "scripts", "testenv.sh"), "env").Output()
	if err != nil {
		if os.Getenv("CI") == "true" { // CI installs every part: the script must answer there
			t.Fatalf("scripts/testenv.sh env: %v", err)
		}
		t.Skipf("scripts/testenv.sh env: %v", err)
	}
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			got[k] = v
		}
	}
	for _, b := range Binaries {
		v, ok := got[b.EnvVar()]
		if !ok || v != b.DefaultPath() {
			t.Errorf("%s: script says %q (printed: %v), DefaultPath %q", b.EnvVar(), v, ok, b.DefaultPath())
		}
		delete(got, b.EnvVar())
	}
	for k, v := range got {
		t.Errorf("scripts/testenv.sh env prints %s=%s, which no testenv.Binary reads", k, v)
	}
}

type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }
func (f *fakeTB) Skipf(format string, args ...any)  { f.skip = fmt.Sprintf(format, args...) }

func TestRequireMissing(t *testing.T) {
	if testing.Short() {
		t.Skip("Require skips everything with -short")
	}
	t.Setenv("MESHD_KUBE_APISERVER", filepath.Join(t.TempDir(), "missing"))
	for _, ci := range []string{"true", ""} {
		t.Setenv("CI", ci)
		f := &fakeTB{TB: t}
		Require(f, BinKubeAPIServer)
		got, other := f.skip, f.fatal
		if ci == "true" {
			got, other = f.fatal, f.skip
		}
		if !strings.Contains(got, "make testenv") || other != "" {
			t.Errorf("CI=%q: fatal %q skip %q", ci, f.fatal, f.skip)
		}
	}
}

func TestProcessStopKillsGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: takes StopTimeout")
	}
	dir := t.TempDir()
	// The shell ignores SIGTERM (and so does its child): Stop must fall back to SIGKILL for the whole group.
	p, err := StartProcess("sh", "/bin/sh", []string{"-c", `trap "" TERM; sleep 300 & echo child $! ; wait`}, nil, filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	var child int
	deadline := time.Now().Add(5 * time.Second)
	for child == 0 && time.Now().Before(deadline) {
		data, _ := os.ReadFile(p.LogPath)
		_, after, _ := strings.Cut(string(data), "\nchild ")
		fmt.Sscanf(after, "%d", &child)
		time.Sleep(10 * time.Millisecond)
	}
	if child == 0 {
		_ = p.Stop()
		t.Fatalf("no child pid in log: %s", p.LogTail(1000))
	}
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < StopTimeout-time.Second {
		t.Errorf("Stop took %v; the TERM-ignoring shell should have needed SIGKILL after %v", d, StopTimeout)
	}
	for _, pid := range []int{p.PID, child} {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			// The child may linger as a zombie of init for a moment.
			time.Sleep(200 * time.Millisecond)
			if data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); len(data) > 0 && !strings.Contains(string(data), ") Z ") {
				t.Errorf("pid %d still running: %s", pid, data)
			}
		}
	}
	if err := p.Stop(); err != nil { // idempotent
		t.Fatal(err)
	}
}

func TestMoto(t *testing.T) {
	start := time.Now()
	m := StartMoto(t)
	t.Logf("moto ready at %s after %v", m.Endpoint(), time.Since(start))
	ctx := context.Background()
	client := ec2.NewFromConfig(m.AWSConfig("us-east-1"))

	out, err := client.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var defaultVPC bool
	for _, v := range out.Vpcs {
		if aws.ToBool(v.IsDefault) && aws.ToString(v.CidrBlock) == "172.31.0.0/16" {
			defaultVPC = true
		}
	}
	if !defaultVPC {
		t.Fatalf("no default VPC 172.31.0.0/16 in %+v", out.Vpcs)
	}
	created, err := client.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.1.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	m.Reset(t)
	out, err = client.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range out.Vpcs {
		if aws.ToString(v.VpcId) == aws.ToString(created.Vpc.VpcId) {
			t.Fatalf("VPC %s survived Reset", aws.ToString(v.VpcId))
		}
	}
	if len(out.Vpcs) != 1 {
		t.Errorf("after Reset: %d VPCs, want the default one", len(out.Vpcs))
	}

	// The environment variables point the SDK's default chain at moto too.
	env := m.Env()
	for _, want := range []string{"AWS_ENDPOINT_URL=" + m.Endpoint(), "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"} {
		if !slices.Contains(env, want) {
			t.Errorf("Env() lacks %s: %v", want, env)
		}
	}
}

func TestRunMotoStop(t *testing.T) {
	Require(t, BinMoto)
	ctx, cancel := context.WithTimeout(context.Background(), MotoStartTimeout)
	defer cancel()
	p, endpoint, err := RunMoto(ctx, filepath.Join(t.TempDir(), "moto.log"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("moto stopped in %v", time.Since(start))
	if err := ResetMoto(context.Background(), endpoint); err == nil {
		t.Fatal("moto still answers after Stop")
	}
}

func TestKube(t *testing.T) {
	Require(t, BinEtcd)
	Require(t, BinKubeAPIServer)
	start := time.Now()
	etcd := StartEtcd(t)
	t.Logf("etcd ready at %s after %v", etcd.ClientURL, time.Since(start))

	start = time.Now()
	servers := StartAPIServers(t, etcd.ClientURL, "cluster-a", "cluster-b")
	t.Logf("two kube-apiservers ready after %v (started in parallel)", time.Since(start))
	a, b := servers["cluster-a"], servers["cluster-b"]

	ctx := context.Background()
	ca, err := kubernetes.NewForConfig(a.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	cb, err := kubernetes.NewForConfig(b.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "only-in-a", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if _, err := ca.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.CoreV1().ConfigMaps("default").Get(ctx, "only-in-a", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.CoreV1().ConfigMaps("default").Get(ctx, "only-in-a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("ConfigMap of cluster-a seen in cluster-b: %v", err)
	}

	// One kubeconfig with both contexts works with client-go's loader.
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := WriteMultiKubeconfig(path, map[string]*APIServer{"ctx-a": a, "ctx-b": b}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig mode: %v %v", fi, err)
	}
	for ctxName, want := range map[string]bool{"ctx-a": true, "ctx-b": false} {
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: path},
			&clientcmd.ConfigOverrides{CurrentContext: ctxName}).ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CoreV1().ConfigMaps("default").Get(ctx, "only-in-a", metav1.GetOptions{})
		if got := err == nil; got != want {
			t.Errorf("context %s: ConfigMap found = %v (%v), want %v", ctxName, got, err, want)
		}
	}
	single := filepath.Join(t.TempDir(), "single")
	if err := b.WriteKubeconfig(single, ""); err != nil {
		t.Fatal(err)
	}
	raw, err := clientcmd.LoadFromFile(single)
	if err != nil {
		t.Fatal(err)
	}
	if raw.CurrentContext != "cluster-b" || raw.Clusters["cluster-b"].Server != b.Host || !raw.Clusters["cluster-b"].InsecureSkipTLSVerify {
		t.Fatalf("single kubeconfig: %s", b.Kubeconfig())
	}

	start = time.Now()
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver stopped in %v", time.Since(start))
}

func TestCoreDNS(t *testing.T) {
	Require(t, BinCoreDNS)
	addr := FreeDNSAddr(t, "127.0.0.11")
	host, _, _ := strings.Cut(addr, ":")
	corefile := filepath.Join(t.TempDir(), "Corefile")
	write := func(ip string) {
		t.Helper()
		content := fmt.Sprintf(`example.test {
    bind %s
    errors
    hosts {
        %s www.example.test
        10.9.9.9 other.example.test
    }
}
nx.test {
    bind %s
    template ANY ANY {
        rcode NXDOMAIN
    }
}
`, host, ip, host)
		if err := os.WriteFile(corefile, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10.1.2.3")
	start := time.Now()
	s := StartCoreDNS(t, corefile, addr)
	t.Logf("coredns ready at %s after %v", s.Addr, time.Since(start))

	for _, tcp := range []bool{false, true} {
		got, err := LookupA(s.Addr, "www.example.test", tcp)
		if err != nil {
			t.Fatalf("tcp=%v: %v", tcp, err)
		}
		if want := []netip.Addr{netip.MustParseAddr("10.1.2.3")}; !slices.Equal(got, want) {
			t.Fatalf("tcp=%v: got %v, want %v", tcp, got, want)
		}
	}
	// The hosts plugin answers SERVFAIL, not NXDOMAIN, for a missing name in its zone (it has no SOA).
	_, err := LookupA(s.Addr, "missing.example.test.", false)
	var rerr *RcodeError
	if !errors.As(err, &rerr) || rerr.Rcode != RcodeServFail {
		t.Fatalf("missing name: %v, want SERVFAIL", err)
	}
	_, err = LookupA(s.Addr, "anything.nx.test", true)
	if !errors.As(err, &rerr) || rerr.Rcode != RcodeNXDomain {
		t.Fatalf("name in nx.test: %v, want NXDOMAIN", err)
	}

	// A rewritten Corefile is picked up on Reload (SIGUSR1).
	write("10.4.5.6")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := LookupA(s.Addr, "www.example.test", true)
		if err == nil && len(got) == 1 && got[0] == netip.MustParseAddr("10.4.5.6") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after reload: %v %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestParseAResponseCompressed(t *testing.T) {
	q, err := buildQuery(0x1234, "a.example.test", dnsTypeA)
	if err != nil {
		t.Fatal(err)
	}
	msg := append([]byte(nil), q...)
	msg[2], msg[3] = 0x81, 0x80 // response, RD, RA
	msg[7] = 2                  // ANCOUNT
	// CNAME a.example.test -> b.example.test (b + pointer to "example.test" at offset 14).
	msg = append(msg, 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 30, 0, 4, 1, 'b', 0xc0, 14)
	// A b.example.test 192.0.2.7, name as a pointer to the CNAME's target.
	cnameTarget := len(msg) - 4
	msg = append(msg, 0xc0, byte(cnameTarget), 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 7)
	got, err := parseAResponse(0x1234, "a.example.test", msg)
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Addr{netip.MustParseAddr("192.0.2.7")}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := parseAResponse(0x1234, "x", msg[:len(msg)-3]); err == nil {
		t.Fatal("truncated message parsed")
	}
}

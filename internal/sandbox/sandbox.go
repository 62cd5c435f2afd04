package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"k8s.io/client-go/kubernetes"

	"github.com/meshd-io/meshd/internal/testenv"
)

// Options configure Start.
type Options struct {
	// Dir holds everything the sandbox writes: logs/, kubeconfig, etcd/, <cluster>/Corefile, ... It is
	// created if needed.
	Dir string
	// Clusters default to DefaultClusters().
	Clusters []Cluster
	// Progress receives one line per step ("starting moto and etcd... ok (1.8s)"); nil discards.
	Progress io.Writer
	// Logf receives what the stand-ins do (Corefile writes, NLBs made); nil discards.
	Logf func(format string, args ...any)
}

// Sandbox is a running set of simulated clusters: moto with a VPC per cluster (but the external ones), one
// etcd, a kube-apiserver and a CoreDNS per cluster, and the kubelet and load-balancer-controller stand-ins
// (goroutines of this process). Stop stops all of it.
type Sandbox struct {
	Options
	MotoEndpoint string
	Kubeconfig   string             // one context per cluster, named Cluster.Context
	Networks     map[string]Network // by cluster name; none for an External cluster
	APIServers   map[string]*testenv.APIServer
	DNS          map[string]*testenv.DNSServer
	Clients      map[string]kubernetes.Interface
	Syncers      map[string]*CorefileSyncer
	// NodeLocalDNS and NodeLocalSyncers are the NodeLocal DNSCache CoreDNS and its kubelet and node-cache
	// stand-in, by cluster name, for the clusters with Cluster.NodeLocal (see nodelocal.go).
	NodeLocalDNS     map[string]*testenv.DNSServer
	NodeLocalSyncers map[string]*CorefileSyncer
	LB               *LBController
	// MetalLB and NodePorts stand in for MetalLB and kube-proxy's node ports in the External clusters
	// (they serve no cluster when none is External).
	MetalLB   *MetalLB
	NodePorts *NodePorts
	// Addons stands in for the EKS add-on API (moto has none) and passes the rest of EKS on to moto; Env
	// points the SDK's EKS endpoint at it.
	Addons *EKSAddons
	// Pods stand in for the sample Pods that meshctl verify --probe connects to (see ProbeRunner).
	Pods *PodListeners
	// IAM stands in for aws-iam-authenticator behind every API server's token webhook, as on EKS: a token
	// made as aws eks get-token makes it for cluster <name> (the moto EKS cluster's name) authenticates as
	// the identity its caller's ARN is mapped to. The sandbox's own credentials (DefaultARN) are mapped to
	// the user and group "meshd", as an EKS access entry would map meshd's role, and so is each cluster's
	// AssumeRole; tests map more.
	IAM *IAMAuthenticator

	moto    *testenv.Process
	etcd    *testenv.EtcdServer
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stop    sync.Once
	mu      sync.Mutex
	assumed map[string]aws.CredentialsProvider // by role ARN: see ClusterAWSConfig
}

// Start brings the sandbox up and returns when every cluster's CoreDNS answers for its own verification
// name. On error, whatever was started is stopped. The processes do not depend on ctx once started; ctx
// bounds the start.
func Start(ctx context.Context, o Options) (s *Sandbox, err error) {
	if o.Dir == "" {
		return nil, errors.New("sandbox: Options.Dir is required")
	}
	if len(o.Clusters) == 0 {
		o.Clusters = DefaultClusters()
	}
	o.Clusters = slices.Clone(o.Clusters)
	for i := range o.Clusters {
		if o.Clusters[i].External || o.Clusters[i].Layout != LayoutEKS {
			o.Clusters[i].EKS, o.Clusters[i].PrivateEndpoint = false, false
		}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	for _, b := range []testenv.Binary{testenv.BinMoto, testenv.BinEtcd, testenv.BinKubeAPIServer, testenv.BinCoreDNS} {
		if _, err := testenv.Lookup(b); err != nil {
			return nil, err
		}
	}
	var addrs []string
	for _, c := range o.Clusters {
		addrs = append(addrs, c.DNS...)
		addrs = append(addrs, c.NodeLocal...)
	}
	if err := CheckBind(addrs...); err != nil {
		return nil, err
	}

	bg, cancel := context.WithCancel(context.Background())
	s = &Sandbox{Options: o, cancel: cancel, Networks: map[string]Network{}, APIServers: map[string]*testenv.APIServer{},
		DNS: map[string]*testenv.DNSServer{}, Clients: map[string]kubernetes.Interface{}, Syncers: map[string]*CorefileSyncer{},
		NodeLocalDNS: map[string]*testenv.DNSServer{}, NodeLocalSyncers: map[string]*CorefileSyncer{},
		Kubeconfig: filepath.Join(o.Dir, "kubeconfig")}
	defer func() {
		if err != nil {
			s.Stop()
			s = nil
		}
	}()
	logPath := func(name string) string { return filepath.Join(o.Dir, "logs", name+".log") }

	if err := s.step("starting moto and etcd", func() error {
		var wg sync.WaitGroup
		var merr, eerr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			s.moto, s.MotoEndpoint, merr = testenv.RunMoto(ctx, logPath("moto"))
		}()
		go func() {
			defer wg.Done()
			s.etcd, eerr = testenv.RunEtcd(ctx, filepath.Join(o.Dir, "etcd"), logPath("etcd"))
		}()
		wg.Wait()
		return errors.Join(merr, eerr)
	}); err != nil {
		return s, err
	}

	if err := s.step("starting the aws-iam-authenticator stand-in", func() error {
		var err error
		if s.IAM, err = s.startIAM(ctx, bg); err != nil {
			return err
		}
		for _, c := range o.Clusters {
			if err := os.MkdirAll(filepath.Join(o.Dir, c.Name), 0o755); err != nil {
				return err
			}
			if err := s.IAM.WriteWebhookConfig(s.webhookConfig(c), c.Name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return s, err
	}

	// The API servers take the longest; the VPCs are made while they start.
	type apiResult struct {
		srv *testenv.APIServer
		err error
	}
	apiCh := make(map[string]chan apiResult)
	for _, c := range o.Clusters {
		ch := make(chan apiResult, 1)
		apiCh[c.Name] = ch
		go func() {
			srv, err := testenv.RunAPIServer(ctx, testenv.APIServerOptions{Name: c.Name, EtcdURL: s.etcd.ClientURL,
				Dir: filepath.Join(o.Dir, c.Name, "apiserver"), LogPath: logPath("kube-apiserver-" + c.Name),
				TokenWebhookConfig: s.webhookConfig(c)})
			ch <- apiResult{srv, err}
		}()
	}
	collectAPI := func() error {
		var errs []error
		for _, c := range o.Clusters {
			r := <-apiCh[c.Name]
			if r.err != nil {
				errs = append(errs, r.err)
				continue
			}
			s.APIServers[c.Name] = r.srv
		}
		return errors.Join(errs...)
	}

	if err := s.step(fmt.Sprintf("creating %d VPCs in moto as eksctl lays them out", len(s.awsClusters())), func() error {
		for _, c := range s.awsClusters() {
			n, err := CreateNetwork(ctx, s.ClusterAWSConfig(c), c.ClusterNet)
			if err != nil {
				return err
			}
			s.Networks[c.Name] = n
		}
		return nil
	}); err != nil {
		_ = collectAPI() // so that they are stopped
		return s, err
	}

	if err := s.step(fmt.Sprintf("starting %d kube-apiservers (one etcd, prefix per cluster)", len(o.Clusters)), collectAPI); err != nil {
		return s, err
	}

	if err := s.step("writing kubeconfig and seeding clusters", func() error {
		byContext := map[string]*testenv.APIServer{}
		for _, c := range o.Clusters {
			byContext[c.Context] = s.APIServers[c.Name]
		}
		if err := testenv.WriteMultiKubeconfig(s.Kubeconfig, byContext); err != nil {
			return err
		}
		for _, c := range o.Clusters {
			kc, err := kubernetes.NewForConfig(s.APIServers[c.Name].RESTConfig())
			if err != nil {
				return err
			}
			s.Clients[c.Name] = kc
			if err := Seed(ctx, kc, c); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return s, err
	}

	if err := s.step(fmt.Sprintf("starting %d CoreDNS with the kubelet stand-in", len(o.Clusters)), func() error {
		for _, c := range o.Clusters {
			s.Syncers[c.Name] = c.coreDNSSyncer(filepath.Join(o.Dir, c.Name), s.Kubeconfig, o.Logf)
		}
		return s.startCoreDNS(ctx, bg, s.Syncers, "coredns-", s.DNS)
	}); err != nil {
		return s, err
	}
	if n := len(s.nodeLocalClusters()); n > 0 {
		if err := s.step(fmt.Sprintf("starting %d NodeLocal DNSCache CoreDNS with the node-cache stand-in", n), func() error {
			for _, c := range s.nodeLocalClusters() {
				s.NodeLocalSyncers[c.Name] = c.nodeLocalSyncer(filepath.Join(o.Dir, c.Name, ConfigMapNodeLocalDNS), o.Logf)
			}
			return s.startCoreDNS(ctx, bg, s.NodeLocalSyncers, ConfigMapNodeLocalDNS+"-", s.NodeLocalDNS)
		}); err != nil {
			return s, err
		}
	}

	if err := s.step("starting the EKS add-on stand-in", func() error {
		clients := map[string]kubernetes.Interface{}
		for _, c := range s.awsClusters() {
			if c.EKS {
				clients[c.Name] = s.Clients[c.Name]
			}
		}
		var err error
		s.Addons, err = StartEKSAddons(bg, s.MotoEndpoint, clients, o.Logf)
		return err
	}); err != nil {
		return s, err
	}

	s.step("starting the load-balancer-controller stand-in", func() error {
		s.LB = &LBController{Logf: o.Logf}
		for _, c := range s.awsClusters() {
			s.LB.Clusters = append(s.LB.Clusters, LBCluster{Name: c.Name, Client: s.Clients[c.Name],
				AWS: s.ClusterAWSConfig(c), SubnetIDs: s.Networks[c.Name].SubnetIDs, VPCID: s.Networks[c.Name].VPCID, IPs: c.DNS})
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.LB.Run(bg)
		}()
		return nil
	})

	s.MetalLB, s.NodePorts = &MetalLB{Logf: o.Logf}, &NodePorts{Logf: o.Logf}
	for _, c := range o.Clusters {
		if c.External {
			s.MetalLB.Clusters = append(s.MetalLB.Clusters, MetalLBCluster{Name: c.Name, Client: s.Clients[c.Name], Pool: c.DNS})
			s.NodePorts.Clusters = append(s.NodePorts.Clusters, NodePortCluster{Name: c.Name, Client: s.Clients[c.Name],
				Nodes: c.NodeAddresses(), PodIP: c.DNSAddr()})
		}
	}
	if n := len(s.MetalLB.Clusters); n > 0 {
		s.step(fmt.Sprintf("starting the MetalLB and kube-proxy stand-ins for %d external clusters", n), func() error {
			s.wg.Add(2)
			go func() {
				defer s.wg.Done()
				s.MetalLB.Run(bg)
			}()
			go func() {
				defer s.wg.Done()
				s.NodePorts.Run(bg)
			}()
			return nil
		})
	}

	if err := s.step("starting the probe-Pod kubelet stand-in", func() error {
		s.Pods = &PodListeners{}
		for _, c := range o.Clusters {
			if err := s.Pods.Listen(net.JoinHostPort(c.SampleIP, "80"), c.DNSAddr()); err != nil {
				return err
			}
			r := &ProbeRunner{Cluster: c, Client: s.Clients[c.Name], Pods: s.Pods, Logf: o.Logf}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				r.Run(bg)
			}()
		}
		return nil
	}); err != nil {
		return s, err
	}

	if err := s.step("waiting for each CoreDNS to serve its cluster", func() error {
		for _, c := range o.Clusters {
			if _, err := s.WaitResolve(ctx, c.Name, c.SampleName(), 60*time.Second); err != nil {
				return err
			}
			if addr, ok := s.NodeLocalAddr(c.Name); ok {
				if _, err := WaitResolve(ctx, addr, c.SampleName(), 60*time.Second); err != nil {
					return fmt.Errorf("%s's NodeLocal DNSCache: %w", c.Name, err)
				}
			}
		}
		return nil
	}); err != nil {
		return s, err
	}
	return s, nil
}

// startCoreDNS starts each syncer (one sync, then its watch) and a CoreDNS that reads its file and listens on
// its first bind address, logging to logs/<logPrefix><cluster>.log, and puts the CoreDNS into servers.
func (s *Sandbox) startCoreDNS(ctx, bg context.Context, syncers map[string]*CorefileSyncer, logPrefix string,
	servers map[string]*testenv.DNSServer) error {
	for name, sy := range syncers {
		sy.Client = s.Clients[name]
		if err := sy.SyncOnce(ctx); err != nil {
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			sy.Run(bg)
		}()
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for name, sy := range syncers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := testenv.RunCoreDNS(ctx, sy.Path, sy.Options.Bind[0], filepath.Join(s.Dir, "logs", logPrefix+name+".log"))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				return
			}
			servers[name] = d
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// nodeLocalClusters are the clusters with a NodeLocal DNSCache.
func (s *Sandbox) nodeLocalClusters() []Cluster {
	return slices.DeleteFunc(slices.Clone(s.Clusters), func(c Cluster) bool { return len(c.NodeLocal) == 0 })
}

func (s *Sandbox) step(what string, f func() error) error {
	fmt.Fprintf(s.Progress, "%s... ", what)
	t := time.Now()
	err := f()
	if err != nil {
		fmt.Fprintf(s.Progress, "FAILED (%.1fs)\n", time.Since(t).Seconds())
		return fmt.Errorf("%s: %w", what, err)
	}
	fmt.Fprintf(s.Progress, "ok (%.1fs)\n", time.Since(t).Seconds())
	return nil
}

// awsClusters are the clusters that are not External: those with a VPC in moto.
func (s *Sandbox) awsClusters() []Cluster {
	return slices.DeleteFunc(slices.Clone(s.Clusters), func(c Cluster) bool { return c.External })
}

// Cluster returns the cluster named name.
func (s *Sandbox) Cluster(name string) (Cluster, bool) {
	for _, c := range s.Clusters {
		if c.Name == name {
			return c, true
		}
	}
	return Cluster{}, false
}

// WaitResolve queries cluster's CoreDNS (UDP, then TCP) for name until it answers with addresses or
// timeout passes.
func (s *Sandbox) WaitResolve(ctx context.Context, cluster, name string, timeout time.Duration) ([]netip.Addr, error) {
	c, ok := s.Cluster(cluster)
	if !ok {
		return nil, fmt.Errorf("no cluster %q", cluster)
	}
	return WaitResolve(ctx, c.DNSAddr(), name, timeout)
}

// WaitResolve queries the DNS server at addr for name's A records until it answers with addresses or
// timeout passes; the error is the last answer's.
func WaitResolve(ctx context.Context, addr, name string, timeout time.Duration) ([]netip.Addr, error) {
	deadline := time.Now().Add(timeout)
	for {
		ips, err := testenv.LookupAContext(ctx, addr, name, false)
		if err == nil && len(ips) == 0 {
			err = fmt.Errorf("dns: %s: no A records", name)
		}
		if err == nil {
			return ips, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not resolve %s within %s: %w", addr, name, timeout, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// AWSConfig is an SDK configuration for region that talks to the sandbox's moto.
func (s *Sandbox) AWSConfig(region string) aws.Config {
	return aws.Config{Region: region, BaseEndpoint: aws.String(s.MotoEndpoint),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")}
}

// ClusterAWSConfig is AWSConfig for the cluster's region, with the credentials of its AssumeRole when it has
// one (assumed with the sandbox's own, renewed as they expire): the cluster's account.
func (s *Sandbox) ClusterAWSConfig(c Cluster) aws.Config {
	cfg := s.AWSConfig(c.Region)
	if c.AssumeRole == "" {
		return cfg
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.assumed == nil {
		s.assumed = map[string]aws.CredentialsProvider{}
	}
	p := s.assumed[c.AssumeRole]
	if p == nil {
		p = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(s.AWSConfig("us-east-1")), c.AssumeRole,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "meshd-sandbox" }))
		s.assumed[c.AssumeRole] = p
	}
	cfg.Credentials = p
	return cfg
}

// Env is the environment that points meshctl (AWS SDK and kubeconfig) at the sandbox: moto, and for EKS
// the add-on stand-in in front of it.
func (s *Sandbox) Env() []string {
	env := append(testenv.MotoEnv(s.MotoEndpoint), "KUBECONFIG="+s.Kubeconfig)
	if s.Addons != nil {
		env = append(env, "AWS_ENDPOINT_URL_EKS="+s.Addons.Endpoint)
	}
	return env
}

// EKSConfig is an SDK configuration for region whose EKS calls go to the add-on stand-in.
func (s *Sandbox) EKSConfig(region string) aws.Config {
	cfg := s.AWSConfig(region)
	cfg.BaseEndpoint = aws.String(s.Addons.Endpoint)
	return cfg
}

// Proc is a process of the sandbox.
type Proc struct {
	Name    string `json:"name"`
	PID     int    `json:"pid"`
	LogPath string `json:"log"`
	Addr    string `json:"addr,omitempty"`

	p *testenv.Process
}

// Process returns the running process.
func (p Proc) Process() *testenv.Process { return p.p }

// Processes lists the processes the sandbox started, in start order.
func (s *Sandbox) Processes() []Proc {
	var out []Proc
	add := func(p *testenv.Process, name, addr string) {
		if p != nil {
			out = append(out, Proc{Name: name, PID: p.PID, LogPath: p.LogPath, Addr: addr, p: p})
		}
	}
	add(s.moto, "moto", s.MotoEndpoint)
	if s.etcd != nil {
		add(s.etcd.Process, "etcd", s.etcd.ClientURL)
	}
	names := make([]string, 0, len(s.APIServers))
	for n := range s.APIServers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		add(s.APIServers[n].Process, "kube-apiserver "+n, s.APIServers[n].Host)
	}
	for _, c := range s.Clusters {
		if d := s.DNS[c.Name]; d != nil {
			add(d.Process, "coredns "+c.Name, d.Addr)
		}
	}
	for _, c := range s.Clusters {
		if d := s.NodeLocalDNS[c.Name]; d != nil {
			add(d.Process, "node-local-dns "+c.Name, d.Addr)
		}
	}
	return out
}

// Stop stops the stand-ins, then every process (CoreDNS, API servers, etcd, moto), each by its process
// group. It is idempotent.
func (s *Sandbox) Stop() error {
	var errs []error
	s.stop.Do(func() {
		s.cancel()
		s.wg.Wait()
		if s.Pods != nil {
			s.Pods.Close()
		}
		procs := s.Processes()
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := len(procs) - 1; i >= 0; i-- {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := procs[i].p.Stop(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	})
	return errors.Join(errs...)
}

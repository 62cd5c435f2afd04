package sandbox

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshd-io/meshd/internal/corefile"
)

// Cluster is one simulated cluster of the sandbox.
type Cluster struct {
	ClusterNet
	// Context is the cluster's kubeconfig context, named as eksctl names it.
	Context string
	// Namespace is the namespace the mesh spec gives the cluster; it holds the verification Service.
	Namespace string
	// Domain is the cluster domain its CoreDNS serves (kubelet --cluster-domain); "" is cluster.local, as
	// on EKS. Another domain stands for a self-managed cluster, meshed with forward_by = "cluster_domain".
	Domain string
	// DNS are the loopback addresses the cluster's CoreDNS listens on, port 53. The first is the
	// cluster's "kube-dns" address, the one queries are sent to; the NLB stand-in gives its ENIs these
	// addresses, one per subnet (wrapping around), so that forwarding to the NLB's IPs reaches this CoreDNS.
	DNS []string
	// SampleIP is the address of the verification Pod, which the other clusters' CoreDNS must resolve.
	SampleIP string
	// External marks a self-managed cluster (a mesh block with network = "external"): it stands in its own
	// data centre, on a network meshd does not manage. Start makes nothing for it in moto (no VPC, no EKS
	// cluster; Sandbox.Networks has no entry for it; EKS and PrivateEndpoint are cleared) and runs neither
	// the EKS add-on nor the load-balancer stand-ins for it: its LoadBalancer Services get their addresses
	// from the MetalLB stand-in, and its node ports are served by the kube-proxy stand-in (NodePorts). Its
	// API server, CoreDNS and probe Pods are as any cluster's.
	External bool
	// AssumeRole, a role ARN of another account (SecondAccountRole), puts the cluster's AWS objects in that
	// account, as for a mesh member with assume_role: Start makes its VPC and EKS cluster, and the
	// load-balancer stand-in its NLB, ENIs and frontend group, with credentials from assuming the role
	// (moto puts what an assumed role does in the role's account; ClusterAWSConfig gives them). The
	// aws-iam-authenticator stand-in maps the role's ARN to MeshdIdentity, as an access entry for the role
	// would. (The target-group stand-in, StartTargetGroups, still works in the default account.)
	AssumeRole string
	// Layout is how the cluster's CoreDNS is configured: LayoutEKS (""), LayoutK3s or LayoutRKE2 (see
	// layouts.go).
	Layout string
	// NodeLocal are the loopback addresses of the cluster's NodeLocal DNSCache (none when empty): Seed makes
	// kube-system/node-local-dns and Start runs a second CoreDNS there (see nodelocal.go). WithNodeLocal
	// picks them for StartT and StartNT.
	NodeLocal []string

	spareNodeLocal string // the NodeLocal address reserved with StartNT's address set (see WithNodeLocal)
}

// SecondAccountRole is a role of a second moto account (111111111111), for Cluster.AssumeRole.
const SecondAccountRole = "arn:aws:iam::111111111111:role/meshd"

// NodeAddresses are the addresses of the cluster's nodes, as a user lists them for a NodePort Service:
// the sandbox gives a cluster one node per CoreDNS address (DNS, in order), so a node port of an external
// cluster is served at each of them (see NodePorts).
func (c Cluster) NodeAddresses() []string { return slices.Clone(c.DNS) }

// DNSAddr is the address to query this cluster's CoreDNS at (port 53).
func (c Cluster) DNSAddr() string { return c.DNS[0] }

// SampleName is the verification Pod's name in this cluster.
func (c Cluster) SampleName() string {
	return fmt.Sprintf("%s.%s.%s.svc.%s", SampleHostname, SampleService, c.Namespace, c.ClusterDomain())
}

// ClusterDomain is the cluster domain its CoreDNS serves.
func (c Cluster) ClusterDomain() string {
	if c.Domain == "" {
		return "cluster.local"
	}
	return c.Domain
}

// Corefile is the cluster's Corefile before meshd: EKS's default (k3s's for LayoutK3s), with the kubernetes
// plugin serving the cluster's domain instead of cluster.local when it has another.
func (c Cluster) Corefile() string {
	base := DefaultEKSCorefile
	if c.Layout == LayoutK3s {
		base = K3sCorefile
	}
	return strings.Replace(base, "kubernetes cluster.local ", "kubernetes "+c.ClusterDomain()+" ", 1)
}

// The verification objects: a headless Service and a Pod endpoint whose name every other cluster resolves
// through its Corefile blocks.
const (
	SampleService  = "sample-nginx-peer"
	SampleHostname = "sample-nginx"
)

// DefaultClusters are the demo's three clusters: tidb-1 us-west-1 10.1.0.0/16 (CoreDNS on 127.0.0.11 and
// 127.0.1.11), tidb-2 us-west-2 10.2.0.0/16 (.12), tidb-3 us-east-1 10.3.0.0/16 (.13), all EKS clusters.
func DefaultClusters() []Cluster { return ClustersOn("127.0.0.1%d", "127.0.1.1%d") }

// ClustersOn are DefaultClusters with CoreDNS on other loopback addresses: each pattern has one %d, the
// cluster's number (1..3); the first pattern gives the queried address.
func ClustersOn(patterns ...string) []Cluster { return ClustersN(3, patterns...) }

// ClustersN are n clusters tidb-1..tidb-n spread over three regions (us-west-1, us-west-2, us-east-1 in
// turn), with CIDR 10.<n>.0.0/16 and CoreDNS on the addresses the patterns give for n (benchmarks use more
// than the demo's three).
func ClustersN(n int, patterns ...string) []Cluster {
	regions := []string{"us-west-1", "us-west-2", "us-east-1"}
	var out []Cluster
	for i := 0; i < n; i++ {
		n, region := i+1, regions[i%len(regions)]
		name := fmt.Sprintf("tidb-%d", n)
		c := Cluster{
			ClusterNet: ClusterNet{Name: name, Region: region, CIDR: fmt.Sprintf("10.%d.0.0/16", n), EKS: true},
			Context:    fmt.Sprintf("pingcap@%s.%s.eksctl.io", name, region),
			Namespace:  fmt.Sprintf("pingcap-%d", n),
			SampleIP:   fmt.Sprintf("10.%d.1.5", n),
		}
		for _, p := range patterns {
			c.DNS = append(c.DNS, fmt.Sprintf(p, n))
		}
		out = append(out, c)
	}
	return out
}

// CheckBind reports whether TCP and UDP port 53 can be bound on every address (ports below 1024 need root
// or CAP_NET_BIND_SERVICE; an address in use means another sandbox or DNS server holds it).
func CheckBind(addrs ...string) error {
	for _, a := range addrs {
		hp := net.JoinHostPort(a, "53")
		l, err := net.Listen("tcp", hp)
		if err != nil {
			return fmt.Errorf("cannot listen on %s/tcp: %w (CoreDNS needs port 53 on loopback: run as root, or "+
				"`sudo setcap cap_net_bind_service=+ep` the coredns binary; or stop what holds the port)", hp, err)
		}
		l.Close()
		pc, err := net.ListenPacket("udp", hp)
		if err != nil {
			return fmt.Errorf("cannot listen on %s/udp: %w", hp, err)
		}
		pc.Close()
	}
	return nil
}

// DefaultEKSCorefile is the Corefile of the coredns ConfigMap of a new EKS cluster.
const DefaultEKSCorefile = corefile.EKSDefault

// Seed creates what a new EKS cluster holds that meshd reads (namespace kube-system, the coredns ConfigMap
// with EKS's default Corefile, serving the cluster's domain) plus the cluster's namespace and the verification objects:
// a headless Service sample-nginx-peer and an EndpointSlice with one ready endpoint, hostname sample-nginx.
// Another Layout gets its own CoreDNS ConfigMaps instead (layouts.go), and a cluster with NodeLocal also
// kube-system/node-local-dns (nodelocal.go). Objects that exist are left as they are.
func Seed(ctx context.Context, kc kubernetes.Interface, c Cluster) error {
	for _, ns := range []string{"kube-system", c.Namespace} {
		if err := create(ctx, func() error {
			_, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			return err
		}); err != nil {
			return fmt.Errorf("%s: namespace %s: %w", c.Name, ns, err)
		}
	}
	data, labels, extra := c.coreDNSObjects()
	cms := map[string]*corev1.ConfigMap{c.CoreDNSConfigMap(): {Data: data, ObjectMeta: metav1.ObjectMeta{Labels: labels}}}
	for name, d := range extra {
		cms[name] = &corev1.ConfigMap{Data: d}
	}
	if len(c.NodeLocal) > 0 {
		cms[ConfigMapNodeLocalDNS] = &corev1.ConfigMap{Data: map[string]string{"Corefile": c.NodeLocalCorefile()},
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"addonmanager.kubernetes.io/mode": "Reconcile"}}}
	}
	for name, cm := range cms {
		cm.Name, cm.Namespace = name, "kube-system"
		if err := create(ctx, func() error {
			_, err := kc.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{})
			return err
		}); err != nil {
			return fmt.Errorf("%s: ConfigMap kube-system/%s: %w", c.Name, name, err)
		}
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: SampleService, Namespace: c.Namespace, Labels: map[string]string{"app": "sample-nginx"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  map[string]string{"app": "sample-nginx"},
			Ports:     []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	if err := create(ctx, func() error {
		_, err := kc.CoreV1().Services(c.Namespace).Create(ctx, svc, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("%s: Service %s/%s: %w", c.Name, c.Namespace, SampleService, err)
	}
	ready, port, proto, portName := true, int32(80), corev1.ProtocolTCP, "http"
	hostname := SampleHostname
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: SampleService + "-sandbox", Namespace: c.Namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: SampleService, discoveryv1.LabelManagedBy: "meshd-sandbox"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{c.SampleIP},
			Hostname:   &hostname,
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}},
	}
	if err := create(ctx, func() error {
		_, err := kc.DiscoveryV1().EndpointSlices(c.Namespace).Create(ctx, slice, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("%s: EndpointSlice %s/%s: %w", c.Name, c.Namespace, slice.Name, err)
	}
	return nil
}

// create runs f, ignoring AlreadyExists and retrying briefly while the API server settles (a namespace that
// is still being initialised, a default ServiceAccount admission, ...).
func create(ctx context.Context, f func() error) error {
	var err error
	for range 20 {
		err = f()
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		if !apierrors.IsNotFound(err) && !apierrors.IsServerTimeout(err) && !apierrors.IsTooManyRequests(err) && !apierrors.IsServiceUnavailable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return err
}

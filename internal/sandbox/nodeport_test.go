package sandbox

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestNodePortTargets(t *testing.T) {
	nodes := []string{"127.0.0.14", "127.0.1.14"}
	dns := map[string]string{"k8s-app": "kube-dns"}
	svc := func(typ corev1.ServiceType, selector map[string]string, ports ...corev1.ServicePort) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Type: typ, Selector: selector, Ports: ports}}
	}
	port := func(proto corev1.Protocol, nodePort int32, target intstr.IntOrString) corev1.ServicePort {
		return corev1.ServicePort{Protocol: proto, Port: 53, NodePort: nodePort, TargetPort: target}
	}
	cases := map[string]struct {
		reason string
		svc    *corev1.Service
		want   map[string]string
	}{
		"NodePort": {
			reason: "A TCP node port is opened on every node, to the target port at the Pod address.",
			svc:    svc(corev1.ServiceTypeNodePort, dns, port(corev1.ProtocolTCP, 30053, intstr.FromInt32(53))),
			want:   map[string]string{"127.0.0.14:30053": "127.0.0.14:53", "127.0.1.14:30053": "127.0.0.14:53"},
		},
		"LoadBalancerNamedTarget": {
			reason: "A LoadBalancer Service has node ports too; a target port by name is the CoreDNS container's.",
			svc:    svc(corev1.ServiceTypeLoadBalancer, dns, port("", 31000, intstr.FromString("metrics"))),
			want:   map[string]string{"127.0.0.14:31000": "127.0.0.14:9153", "127.0.1.14:31000": "127.0.0.14:9153"},
		},
		"DefaultTarget": {
			reason: "No target port is the port.",
			svc:    svc(corev1.ServiceTypeNodePort, dns, port(corev1.ProtocolTCP, 30053, intstr.IntOrString{})),
			want:   map[string]string{"127.0.0.14:30053": "127.0.0.14:53", "127.0.1.14:30053": "127.0.0.14:53"},
		},
		"UnknownName": {
			reason: "A target port name CoreDNS has not has no endpoint.",
			svc:    svc(corev1.ServiceTypeNodePort, dns, port(corev1.ProtocolTCP, 30053, intstr.FromString("http"))),
			want:   map[string]string{},
		},
		"UDP": {
			reason: "UDP node ports are not served.",
			svc:    svc(corev1.ServiceTypeNodePort, dns, port(corev1.ProtocolUDP, 30053, intstr.FromInt32(53))),
			want:   map[string]string{},
		},
		"OtherPods": {
			reason: "A Service that does not select CoreDNS has no Pods in the sandbox.",
			svc:    svc(corev1.ServiceTypeNodePort, map[string]string{"app": "nginx"}, port(corev1.ProtocolTCP, 30053, intstr.FromInt32(53))),
			want:   map[string]string{},
		},
		"NoSelector": {
			reason: "A Service without a selector has no endpoints kube-proxy knows of here.",
			svc:    svc(corev1.ServiceTypeNodePort, nil, port(corev1.ProtocolTCP, 30053, intstr.FromInt32(53))),
			want:   map[string]string{},
		},
		"ClusterIP": {
			reason: "A ClusterIP Service has no node ports.",
			svc:    svc(corev1.ServiceTypeClusterIP, dns, port(corev1.ProtocolTCP, 30053, intstr.FromInt32(53))),
			want:   map[string]string{},
		},
		"Deleted": {
			reason: "A deleted Service has none.",
			want:   map[string]string{},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, nodePortTargets(tc.svc, nodes, nodes[0])); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestTCPProxy: a connection through the proxy reaches the target and passes on the client's end of data;
// close ends the connections still open and the listener.
func TestTCPProxy(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	p, err := listenProxy("127.0.0.1:0", echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	addr := p.ln.Addr().String()

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("query\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(c); err != nil || string(got) != "query\n" {
		t.Fatalf("through the proxy, after a half-close: %q, %v; want the echo and EOF", got, err)
	}

	open, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	r := bufio.NewReader(open)
	if _, err := open.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	_ = open.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo %q, %v", line, err)
	}
	p.close() // returns once its goroutines have
	if _, err := r.ReadString('\n'); err == nil {
		t.Error("a connection through the proxy is still open after close")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s accepts connections after close", addr)
	}
}

package sandbox

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAddressPoolAssign(t *testing.T) {
	const a, b = "127.0.0.14", "127.0.1.14"
	lb := func(annotations map[string]string, loadBalancerIP, status string) *corev1.Service {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Annotations: annotations},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: loadBalancerIP}}
		if status != "" {
			svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: status}}
		}
		return svc
	}
	cases := map[string]struct {
		reason  string
		holders map[string]string // address -> Service key, before
		svc     *corev1.Service
		want    string // the address ns/svc holds after, "" none
		wantErr bool
	}{
		"Default": {
			reason: "Without a request the last free address of the pool is taken.",
			svc:    lb(nil, "", ""),
			want:   b,
		},
		"DefaultNextFree": {
			reason:  "An address another Service holds is passed over.",
			holders: map[string]string{b: "ns/other"},
			svc:     lb(nil, "", ""),
			want:    a,
		},
		"Kept": {
			reason:  "A Service keeps the address it holds.",
			holders: map[string]string{a: "ns/svc"},
			svc:     lb(nil, "", a),
			want:    a,
		},
		"FromStatus": {
			reason: "An address in the status, in the pool and free, is kept (a restarted controller).",
			svc:    lb(nil, "", a),
			want:   a,
		},
		"StatusOutsidePool": {
			reason: "An address in the status that the pool lacks is replaced.",
			svc:    lb(nil, "", "10.4.9.9"),
			want:   b,
		},
		"Requested": {
			reason:  "The annotation moves the Service to the address it names.",
			holders: map[string]string{b: "ns/svc"},
			svc:     lb(map[string]string{AnnotationMetalLBIPsDeprecated: a}, "", b),
			want:    a,
		},
		"RequestedNewAnnotationFirst": {
			reason: "metallb.io/loadBalancerIPs is read before metallb.universe.tf/loadBalancerIPs.",
			svc:    lb(map[string]string{AnnotationMetalLBIPs: " " + a + " ", AnnotationMetalLBIPsDeprecated: b}, "", ""),
			want:   a,
		},
		"RequestedBySpec": {
			reason: "spec.loadBalancerIP is a request too.",
			svc:    lb(nil, a, ""),
			want:   a,
		},
		"RequestedOutsidePool": {
			reason:  "An address outside the pool is not assigned, and the Service loses the one it held.",
			holders: map[string]string{b: "ns/svc"},
			svc:     lb(map[string]string{AnnotationMetalLBIPsDeprecated: "10.4.9.9"}, "", b),
			wantErr: true,
		},
		"RequestedInUse": {
			reason:  "No two Services share an address.",
			holders: map[string]string{a: "ns/other"},
			svc:     lb(map[string]string{AnnotationMetalLBIPs: a}, "", ""),
			wantErr: true,
		},
		"RequestedTwo": {
			reason:  "Two IPv4 addresses are two of one family.",
			svc:     lb(map[string]string{AnnotationMetalLBIPs: a + "," + b}, "", ""),
			wantErr: true,
		},
		"RequestedTwice": {
			reason:  "The annotation and spec.loadBalancerIP together are refused.",
			svc:     lb(map[string]string{AnnotationMetalLBIPs: a}, a, ""),
			wantErr: true,
		},
		"RequestedGarbage": {
			reason:  "An annotation that does not parse is refused.",
			svc:     lb(map[string]string{AnnotationMetalLBIPs: "a.b.c.d"}, "", ""),
			wantErr: true,
		},
		"Full": {
			reason:  "A pool with no free address assigns nothing.",
			holders: map[string]string{a: "ns/x", b: "ns/y"},
			svc:     lb(nil, "", ""),
			wantErr: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := newAddressPool([]string{a, b})
			if err != nil {
				t.Fatal(err)
			}
			for addr, key := range tc.holders {
				p.holder[netip.MustParseAddr(addr)] = key
			}
			err = p.assignFor("ns/svc", tc.svc)
			if (err != nil) != tc.wantErr {
				t.Errorf("%s\nassignFor: %v, want error %v", tc.reason, err, tc.wantErr)
			}
			got := ""
			if h := p.held("ns/svc"); h.IsValid() {
				got = h.String()
			}
			if got != tc.want {
				t.Errorf("%s\nholds %q, want %q", tc.reason, got, tc.want)
			}
		})
	}
}

package sandbox

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// DeployNginx creates Service default/nginx (port 80 "http" to the Pods' 8080) in cluster and its
// EndpointSlice with Ready endpoints at ips, as the endpoint-slice controller would for running Pods: of
// type LoadBalancer with the user's annotations when annotations is not nil (a load_balancer block's
// primary), else ClusterIP (a secondary).
func (s *Sandbox) DeployNginx(ctx context.Context, cluster string, annotations map[string]string, ips ...string) error {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "nginx", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: map[string]string{"app": "nginx"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}}}
	if annotations != nil {
		svc.Spec.Type = corev1.ServiceTypeLoadBalancer
		svc.Annotations = maps.Clone(annotations)
	}
	kube := s.Clients[cluster]
	if _, err := kube.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return err
	}
	ready, name, port, tcp := true, "http", int32(8080), corev1.ProtocolTCP
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "nginx-abcde", Namespace: "default",
		Labels: map[string]string{discoveryv1.LabelServiceName: "nginx"}}, AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &tcp}}}
	for i, ip := range ips {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: fmt.Sprintf("nginx-%d", i)}})
	}
	_, err := kube.DiscoveryV1().EndpointSlices("default").Create(ctx, es, metav1.CreateOptions{})
	return err
}

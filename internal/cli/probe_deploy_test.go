package cli

import (
	"context"
	"flag"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/model"
)

// manifestDocs decodes each document of a deploy/ manifest (strictly) into the object its kind names.
func manifestDocs(t *testing.T, path string, objects map[string]any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		obj, ok := objects[head.Kind]
		if !ok || seen[head.Kind] {
			t.Fatalf("%s: unexpected document of kind %q", path, head.Kind)
		}
		seen[head.Kind] = true
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s: %s: %v", path, head.Kind, err)
		}
	}
	for kind := range objects {
		if !seen[kind] {
			t.Fatalf("%s: no %s", path, kind)
		}
	}
}

// TestDeployProbeManifests keeps deploy/probe-target.yaml and deploy/probe-rbac.yaml equal to what
// `meshctl verify --probe` uses with its default flags: the target Pod's hostname and headless Service and
// its port, and the Role's verbs against the calls a probe makes (recorded on a fake API server), in the
// probe namespace.
func TestDeployProbeManifests(t *testing.T) {
	var po probeOptions
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	po.register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	hostname, subdomain, ok := strings.Cut(po.target, ".")
	if !ok {
		t.Fatalf("--probe-target default %q is not <hostname>.<service>", po.target)
	}

	var svc corev1.Service
	var dep appsv1.Deployment
	manifestDocs(t, "../../deploy/probe-target.yaml", map[string]any{"Service": &svc, "Deployment": &dep})
	if svc.Name != subdomain || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %q (clusterIP %q): want the headless Service %q", svc.Name, svc.Spec.ClusterIP, subdomain)
	}
	if svc.Namespace != "" || dep.Namespace != "" {
		t.Errorf("the probe target names a namespace: it is applied in each member's own")
	}
	pod := dep.Spec.Template
	if pod.Spec.Hostname != hostname || pod.Spec.Subdomain != subdomain {
		t.Errorf("the Pod's hostname.subdomain is %s.%s, want %s", pod.Spec.Hostname, pod.Spec.Subdomain, po.target)
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
		t.Errorf("the Service's selector %v does not select the Pod (labels %v)", svc.Spec.Selector, pod.Labels)
	}
	if sel := dep.Spec.Selector; sel == nil || !labels.SelectorFromSet(sel.MatchLabels).Matches(labels.Set(pod.Labels)) {
		t.Errorf("the Deployment's selector does not select its Pods")
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 1 {
		t.Errorf("replicas: want 1 (every replica would take the same hostname)")
	}
	servicePort := slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
		return int(p.Port) == po.port && p.Protocol == corev1.ProtocolTCP
	})
	containerPort := slices.ContainsFunc(pod.Spec.Containers, func(c corev1.Container) bool {
		return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return int(p.ContainerPort) == po.port })
	})
	if !servicePort || !containerPort {
		t.Errorf("port %d/TCP: in the Service %v, in a container %v", po.port, servicePort, containerPort)
	}

	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	manifestDocs(t, "../../deploy/probe-rbac.yaml", map[string]any{"Role": &role, "RoleBinding": &binding})
	if role.Namespace != po.namespace || binding.Namespace != po.namespace {
		t.Errorf("Role in %q, RoleBinding in %q: want the probe namespace %q", role.Namespace, binding.Namespace, po.namespace)
	}
	if binding.RoleRef.Kind != "Role" || binding.RoleRef.Name != role.Name || len(binding.Subjects) == 0 {
		t.Errorf("the RoleBinding does not bind the Role %q to a subject: %+v", role.Name, binding)
	}

	// The calls a probe makes, on a fake API server whose Pods succeed as soon as they are created.
	kc := kubefake.NewSimpleClientset()
	kc.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).Status.Phase = corev1.PodSucceeded
		return false, nil, nil
	})
	po.timeout = 30 * time.Second
	from := model.Member{Name: "tidb-1", KubeContext: "k1", Namespace: "pingcap-1"}
	to := model.Member{Name: "tidb-2", KubeContext: "k2", Namespace: "pingcap-2"}
	res := runProbe(context.Background(), "tidb", from, to, po, func(string) (kubeclient.Interface, error) {
		return kubeclient.Join(kc, nil), nil
	})
	if !res.OK {
		t.Fatalf("probe on the fake API server: %+v", res)
	}
	used := map[string]bool{}
	for _, a := range kc.Actions() {
		if a.GetResource().Group != "" || a.GetResource().Resource != "pods" || a.GetNamespace() != po.namespace {
			t.Errorf("the probe calls %s %s in %q: not what probe-rbac.yaml grants", a.GetVerb(), a.GetResource(), a.GetNamespace())
			continue
		}
		used[a.GetVerb()] = true
	}
	var granted []string
	for _, r := range role.Rules {
		if !slices.Equal(r.APIGroups, []string{""}) || !slices.Equal(r.Resources, []string{"pods"}) || len(r.ResourceNames) > 0 {
			t.Errorf("rule %+v: want Pods of the core group only", r)
		}
		granted = append(granted, r.Verbs...)
	}
	slices.Sort(granted)
	if diff := cmp.Diff(slices.Sorted(maps.Keys(used)), granted); diff != "" {
		t.Errorf("verbs the Role grants, -the probe's calls, +the Role:\n%s", diff)
	}
}

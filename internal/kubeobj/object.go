package kubeobj

import (
	"encoding/base64"
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshd-io/meshd/internal/model"
)

// Object is an owned object of any supported kind: what meshd wants, or what it observed.
type Object struct {
	APIVersion  string
	Kind        string
	Namespace   string // "" for cluster-scoped kinds
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	// Content holds the kind's content fields (Kind.Content) as JSON values: for a Secret, "data" maps key
	// names to base64 strings, as in the API (see SecretData).
	Content map[string]any

	// Observed only: set from the API server's copy, ignored on writes (UID is Delete's precondition).
	UID             string
	ResourceVersion string
	Managers        []string // field managers of managedFields, sorted, e.g. "meshd", "kube-controller-manager"
	Deleting        bool     // deletionTimestamp is set: the object is on its way out (finalizers)
}

// New returns an object of kind with its apiVersion filled in from the table.
func New(kind, namespace, name string, content map[string]any) (Object, error) {
	k, err := Lookup(kind)
	if err != nil {
		return Object{}, err
	}
	return Object{APIVersion: k.APIVersion(), Kind: k.Name, Namespace: namespace, Name: name, Content: content}, nil
}

// Own returns o labelled as meshd's for mesh (model.OwnedBy): the labels every object meshd writes carries.
func Own(o Object, mesh string) Object {
	labels := maps.Clone(o.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[model.LabelManagedBy] = model.ManagedByMeshd
	labels[model.LabelMesh] = mesh
	o.Labels = labels
	return o
}

// SecretData encodes a Secret's data as the API carries it (base64 strings), for Object.Content["data"].
func SecretData(data map[string][]byte) map[string]any {
	out := make(map[string]any, len(data))
	for k, v := range data {
		out[k] = base64.StdEncoding.EncodeToString(v)
	}
	return out
}

// SecretBytes decodes a Secret's data (Content["data"], base64 strings) into bytes, the inverse of
// SecretData; a value that does not decode is left out.
func SecretBytes(o Object) map[string][]byte {
	out := map[string][]byte{}
	data, _ := o.Content["data"].(map[string]any)
	for k, v := range data {
		s, _ := v.(string)
		if b, err := base64.StdEncoding.DecodeString(s); err == nil {
			out[k] = b
		}
	}
	return out
}

// Ref names the object for messages: "Secret kube-system/meshd-ca", "ClusterRole meshd-reader".
func (o Object) Ref() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

func (o Object) kind() (Kind, error) {
	k, err := Lookup(o.Kind)
	if err != nil {
		return Kind{}, err
	}
	if o.APIVersion != k.APIVersion() {
		return Kind{}, fmt.Errorf("%w: %s has apiVersion %q, meshd manages %s as %q", ErrUnsupportedKind, o.Ref(), o.APIVersion, k.Name, k.APIVersion())
	}
	if k.Namespaced != (o.Namespace != "") {
		if k.Namespaced {
			return Kind{}, fmt.Errorf("%s: a %s needs a namespace", o.Ref(), k.Name)
		}
		return Kind{}, fmt.Errorf("%s: a %s is cluster-scoped, but namespace %q is set", o.Ref(), k.Name, o.Namespace)
	}
	return k, nil
}

// FromUnstructured reads an object the API server returned: metadata, the kind's content fields (others,
// status included, are dropped) and the observed-only fields.
func FromUnstructured(u *unstructured.Unstructured) (Object, error) {
	o := Object{
		APIVersion:      u.GetAPIVersion(),
		Kind:            u.GetKind(),
		Namespace:       u.GetNamespace(),
		Name:            u.GetName(),
		Labels:          u.GetLabels(),
		Annotations:     u.GetAnnotations(),
		UID:             string(u.GetUID()),
		ResourceVersion: u.GetResourceVersion(),
		Deleting:        u.GetDeletionTimestamp() != nil,
	}
	k, err := o.kind()
	if err != nil {
		return Object{}, err
	}
	for _, f := range k.Content {
		if v, ok := u.Object[f]; ok {
			if o.Content == nil {
				o.Content = map[string]any{}
			}
			o.Content[f] = v
		}
	}
	for _, m := range u.GetManagedFields() {
		if !slices.Contains(o.Managers, m.Manager) {
			o.Managers = append(o.Managers, m.Manager)
		}
	}
	slices.Sort(o.Managers)
	return o, nil
}

// ToUnstructured is the object as meshd writes it: apiVersion, kind, name, namespace, labels, annotations
// and content. The observed-only fields are left out (the Client sets resourceVersion where it needs one).
func (o Object) ToUnstructured() (*unstructured.Unstructured, error) {
	k, err := o.kind()
	if err != nil {
		return nil, err
	}
	content, err := normalize(o.Content)
	if err != nil {
		return nil, fmt.Errorf("%s: content: %w", o.Ref(), err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{}}
	for f, v := range content.(map[string]any) {
		if !k.isContent(f) {
			return nil, fmt.Errorf("%s: %q is not a content field of a %s (it has %v)", o.Ref(), f, k.Name, k.Content)
		}
		if !isEmpty(v) {
			u.Object[f] = v
		}
	}
	u.SetAPIVersion(o.APIVersion)
	u.SetKind(o.Kind)
	u.SetNamespace(o.Namespace)
	u.SetName(o.Name)
	if len(o.Labels) > 0 {
		u.SetLabels(o.Labels)
	}
	if len(o.Annotations) > 0 {
		u.SetAnnotations(o.Annotations)
	}
	return u, nil
}

package kubeobj

import (
	"context"
	"errors"
	"fmt"
	"maps"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/model"
)

// ErrNotOwned is wrapped by the error for a write to an object that does not carry meshd's owner labels for
// the client's mesh (model.OwnedBy): meshd never modifies or deletes what it did not create.
var ErrNotOwned = errors.New("not owned by meshd")

// ErrReplaced is wrapped by Delete's error when the object was deleted and created again (a new UID) since
// it was observed: the new one is not the object the plan meant.
var ErrReplaced = errors.New("replaced since it was observed")

// Client writes owned objects of one cluster, all as field manager model.FieldManager.
type Client struct {
	kube kubeclient.Interface
	mesh string
}

// NewClient returns a client of one cluster for the objects of mesh.
func NewClient(kube kubeclient.Interface, mesh string) *Client {
	return &Client{kube: kube, mesh: mesh}
}

func (c *Client) resource(k Kind, namespace string) dynamic.ResourceInterface {
	r := c.kube.Resource(k.GVR)
	if k.Namespaced {
		return r.Namespace(namespace)
	}
	return r
}

// Get returns the object, or nil and no error when there is none.
func (c *Client) Get(ctx context.Context, kind, namespace, name string) (*Object, error) {
	ref := Object{Kind: kind, Namespace: namespace, Name: name}
	k, err := Lookup(kind)
	if err != nil {
		return nil, err
	}
	ref.APIVersion = k.APIVersion()
	if _, err := ref.kind(); err != nil {
		return nil, err
	}
	u, err := c.resource(k, namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref.Ref(), err)
	}
	o, err := FromUnstructured(u)
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// Create creates want, labelled as meshd's (Own), and returns the object the API server made of it. An
// object whose content grants permissions (Kind.Grants) is created empty and then given its content by an
// update, so that "escalate" on it by name is enough (see Kind.Grants); if the update is refused, the
// empty object is deleted again.
func (c *Client) Create(ctx context.Context, want Object) (Object, error) {
	want = Own(want, c.mesh)
	k, err := want.kind()
	if err != nil {
		return Object{}, err
	}
	if k.Grants && len(want.Content) > 0 {
		empty := want
		empty.Content = nil
		created, err := c.create(ctx, k, empty)
		if err != nil {
			return Object{}, err
		}
		full, err := c.update(ctx, want, "", true)
		if err != nil {
			if derr := c.delete(ctx, created, true); derr != nil {
				err = fmt.Errorf("%w (and deleting the empty %s again: %v)", err, want.Ref(), derr)
			}
			return Object{}, err
		}
		return full, nil
	}
	return c.create(ctx, k, want)
}

func (c *Client) create(ctx context.Context, k Kind, want Object) (Object, error) {
	u, err := want.ToUnstructured()
	if err != nil {
		return Object{}, redact(err, want)
	}
	created, err := c.resource(k, want.Namespace).Create(ctx, u, metav1.CreateOptions{FieldManager: model.FieldManager})
	if err != nil {
		return Object{}, redact(fmt.Errorf("creating %s: %w", want.Ref(), err), want)
	}
	return FromUnstructured(created)
}

// Update makes the object want: it reads the current object, refuses it unless it is meshd's for the
// client's mesh, sets want's labels and annotations (keeping everyone else's), sets each content field
// want has (an empty one is left as it is, except an Exact field, which becomes empty) and keeps the
// server's fields, then writes it with the resourceVersion it read: a conflict (someone wrote in between)
// reads again and retries. It returns the object as written.
func (c *Client) Update(ctx context.Context, want Object) (Object, error) {
	return c.update(ctx, want, "", false)
}

// Mirror is Update for a copy of another object (see DiffCopy): every content field of the kind becomes
// exactly want's, one want lacks is removed. With adoptUID set it adopts, as Adopt does.
func (c *Client) Mirror(ctx context.Context, want Object, adoptUID string) (Object, error) {
	return c.update(ctx, want, adoptUID, true)
}

// Adopt takes over an object meshd did not create (adopt = true): as Update, but instead of refusing an
// object that is not meshd's it refuses one that is not the object the plan observed (its UID), so that
// only what the user saw in the plan becomes meshd's.
func (c *Client) Adopt(ctx context.Context, want Object, observedUID string) (Object, error) {
	if observedUID == "" {
		return Object{}, fmt.Errorf("adopting %s: no UID: only an observed object can be adopted", want.Ref())
	}
	return c.update(ctx, want, observedUID, false)
}

func (c *Client) update(ctx context.Context, want Object, adoptUID string, exact bool) (Object, error) {
	want = Own(want, c.mesh)
	k, err := want.kind()
	if err != nil {
		return Object{}, err
	}
	desired, err := want.ToUnstructured() // validated and normalised content
	if err != nil {
		return Object{}, redact(err, want)
	}
	r := c.resource(k, want.Namespace)
	var updated *unstructured.Unstructured
	var current Object
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := r.Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if current, err = FromUnstructured(cur); err != nil {
			return err
		}
		switch {
		case adoptUID != "" && string(cur.GetUID()) != adoptUID:
			return fmt.Errorf("%w: UID %s, observed %s", ErrReplaced, cur.GetUID(), adoptUID)
		case adoptUID == "" && !model.OwnedBy(cur.GetLabels(), c.mesh):
			return fmt.Errorf("%w: it lacks the labels %s=%s and %s=%s, so meshd leaves it alone", ErrNotOwned,
				model.LabelManagedBy, model.ManagedByMeshd, model.LabelMesh, c.mesh)
		}
		cur.SetLabels(merged(cur.GetLabels(), want.Labels))
		cur.SetAnnotations(merged(cur.GetAnnotations(), want.Annotations))
		for _, f := range k.Content {
			if _, set := want.Content[f]; !set && !exact {
				continue
			}
			v, has := desired.Object[f] // ToUnstructured dropped it if empty
			switch {
			case has:
				cur.Object[f] = v
			case k.isExact(f) || exact:
				delete(cur.Object, f)
			}
		}
		updated, err = r.Update(ctx, cur, metav1.UpdateOptions{FieldManager: model.FieldManager})
		return err
	})
	if err != nil {
		return Object{}, redact(fmt.Errorf("updating %s: %w", want.Ref(), err), want, current)
	}
	return FromUnstructured(updated)
}

func merged(theirs, ours map[string]string) map[string]string {
	if len(ours) == 0 {
		return theirs
	}
	out := maps.Clone(theirs)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, ours)
	return out
}

// Delete deletes the object observed, if it is still that object (same UID) and still meshd's; it is not
// an error when it is already gone. The delete carries the UID and resourceVersion just read as
// preconditions, so a recreation or relabelling in between is never deleted: it is read again instead.
func (c *Client) Delete(ctx context.Context, observed Object) error {
	return c.delete(ctx, observed, true)
}

// DeleteAdopted deletes an object meshd is adopting (adopt = true) to create it anew, for content the API
// refuses to change in place: it need not be meshd's yet, but it must still be the object observed (UID).
func (c *Client) DeleteAdopted(ctx context.Context, observed Object) error {
	return c.delete(ctx, observed, false)
}

func (c *Client) delete(ctx context.Context, observed Object, mustOwn bool) error {
	k, err := observed.kind()
	if err != nil {
		return err
	}
	if observed.UID == "" {
		return fmt.Errorf("deleting %s: no UID: only an observed object can be deleted", observed.Ref())
	}
	r := c.resource(k, observed.Namespace)
	var current Object
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := r.Get(ctx, observed.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if current, err = FromUnstructured(cur); err != nil {
			return err
		}
		if current.UID != observed.UID {
			return fmt.Errorf("%w: UID %s, observed %s", ErrReplaced, current.UID, observed.UID)
		}
		if mustOwn && !model.OwnedBy(current.Labels, c.mesh) {
			return fmt.Errorf("%w: it lacks the labels %s=%s and %s=%s", ErrNotOwned,
				model.LabelManagedBy, model.ManagedByMeshd, model.LabelMesh, c.mesh)
		}
		uid, rv := types.UID(current.UID), current.ResourceVersion
		return r.Delete(ctx, observed.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return redact(fmt.Errorf("deleting %s: %w", observed.Ref(), err), observed, current)
	}
	return nil
}

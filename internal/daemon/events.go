package daemon

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/plan"
)

// KubeEvents records each correction of a Kubernetes object meshd manages as an Event on that object, so
// `kubectl describe configmap coredns -n kube-system` shows that meshd restored it, and why. Corrections of AWS
// objects are in the log and the metrics (AWS has no events to attach them to).
type KubeEvents struct {
	// Client returns the client of a member cluster, by cluster name.
	Client func(cluster string) (kubeclient.Interface, error)
	Host   string
}

// Corrected creates the Event; failures to record are not failures of the correction and are ignored.
func (k *KubeEvents) Corrected(ctx context.Context, ch plan.Change, err error) {
	cluster, ref, ok := KubeTarget(ch)
	if !ok {
		return
	}
	c, cerr := k.Client(cluster)
	if cerr != nil {
		return
	}
	eventType, reason, msg := corev1.EventTypeNormal, "DriftCorrected", fmt.Sprintf("meshd: %s %s: %s", ch.Action.Verb(), ch.Address, ch.Reason)
	if err != nil {
		eventType, reason, msg = corev1.EventTypeWarning, "CorrectionFailed", fmt.Sprintf("meshd: %s %s failed: %v", ch.Action.Verb(), ch.Address, err)
	}
	// An Event lives in a namespace; one about a cluster-scoped object (a ClusterRole) goes to "default",
	// where kubectl describe looks for it.
	namespace := ref.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: ref.Name + ".meshd-", Namespace: namespace},
		InvolvedObject: ref,
		Reason:         reason,
		Message:        msg,
		Type:           eventType,
		Source:         corev1.EventSource{Component: "meshd", Host: k.Host},
		FirstTimestamp: now,
		LastTimestamp:  now,
		Count:          1,
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = c.CoreV1().Events(namespace).Create(ctx, ev, metav1.CreateOptions{})
}

// KubeTarget names the Kubernetes object a change touched, as its kind's registration says (plan.Touched).
// AWS changes touch no Kubernetes object.
func KubeTarget(ch plan.Change) (cluster string, ref corev1.ObjectReference, ok bool) {
	obj, ok := plan.Touched(ch)
	if !ok {
		return "", corev1.ObjectReference{}, false
	}
	return obj.Cluster, corev1.ObjectReference{Kind: obj.Kind, APIVersion: obj.APIVersion, Namespace: obj.Namespace, Name: obj.Name}, true
}

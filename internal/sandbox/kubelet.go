package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// CorefileSyncer is the kubelet-and-network stand-in of one cluster: it watches the cluster's
// kube-system/coredns ConfigMap and writes its Corefile, rendered by RenderCorefile, to Path, where that
// cluster's CoreDNS (started with `-conf Path`, reload plugin on) picks it up. A Corefile that does not
// render leaves the last good file in place, as a CoreDNS Pod keeps serving its old configuration.
type CorefileSyncer struct {
	Cluster string
	Client  kubernetes.Interface
	Path    string
	Options RenderOptions
	Logf    func(format string, args ...any)

	mu       sync.Mutex
	lastSrc  string // the ConfigMap's Corefile last seen
	lastErr  error
	writes   int
	synced   chan struct{}
	syncOnce sync.Once
}

const corednsConfigMap = "coredns"

// SyncOnce reads the ConfigMap and writes the rendered Corefile if it changed.
func (s *CorefileSyncer) SyncOnce(ctx context.Context) error {
	cm, err := s.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, corednsConfigMap, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("%s: reading kube-system/coredns: %w", s.Cluster, err)
	}
	return s.apply(cm)
}

// Run keeps Path in sync with the ConfigMap until ctx ends. Synced is closed after the first attempt.
func (s *CorefileSyncer) Run(ctx context.Context) {
	lw := cache.NewFilteredListWatchFromClient(s.Client.CoreV1().RESTClient(), "configmaps", "kube-system",
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", corednsConfigMap).String()
		})
	handle := func(obj any) {
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			if err := s.apply(cm); err != nil {
				s.logf("%v", err)
			}
		}
	}
	_, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &corev1.ConfigMap{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    handle,
			UpdateFunc: func(_, obj any) { handle(obj) },
			DeleteFunc: func(any) {
				s.logf("%s: kube-system/coredns was deleted; CoreDNS keeps its last Corefile", s.Cluster)
			},
		},
	})
	ctrl.Run(ctx.Done())
}

// Synced is closed once a Corefile has been written (or failed to render) for the first time.
func (s *CorefileSyncer) Synced() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.synced == nil {
		s.synced = make(chan struct{})
	}
	return s.synced
}

// Writes is how many times the Corefile was (re)written.
func (s *CorefileSyncer) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func (s *CorefileSyncer) apply(cm *corev1.ConfigMap) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.syncOnce.Do(func() {
		if s.synced == nil {
			s.synced = make(chan struct{})
		}
		close(s.synced)
	})
	src, ok := cm.Data["Corefile"]
	if !ok {
		return fmt.Errorf("%s: kube-system/coredns has no Corefile; keeping the last one", s.Cluster)
	}
	if src == s.lastSrc && s.lastErr == nil {
		return nil
	}
	s.lastSrc = src
	out, err := RenderCorefile(src, s.Options)
	s.lastErr = err
	if err != nil {
		return fmt.Errorf("%s: the Corefile in kube-system/coredns (resourceVersion %s) does not parse, CoreDNS keeps the last good one: %w",
			s.Cluster, cm.ResourceVersion, err)
	}
	if old, err := os.ReadFile(s.Path); err == nil && bytes.Equal(old, []byte(out)) {
		return nil
	}
	if err := writeFileAtomic(s.Path, []byte(out)); err != nil {
		return err
	}
	s.writes++
	s.logf("%s: wrote %s from kube-system/coredns resourceVersion %s", s.Cluster, s.Path, cm.ResourceVersion)
	return nil
}

func (s *CorefileSyncer) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

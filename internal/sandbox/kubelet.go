package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// CorefileSyncer is the kubelet-and-network stand-in of one cluster: it watches the cluster's
// kube-system/coredns ConfigMap (or another, ConfigMap) and writes its Corefile, rendered by RenderCorefile,
// to Path, where that cluster's CoreDNS (started with `-conf Path`, reload plugin on) picks it up. A Corefile
// that does not render leaves the last good file in place, as a CoreDNS Pod keeps serving its old
// configuration. Files and Custom stand for the other ConfigMap volumes of a k3s CoreDNS Pod, Pillars for
// NodeLocal DNSCache's node-cache (see nodelocal.go).
type CorefileSyncer struct {
	Cluster string
	Client  kubernetes.Interface
	Path    string
	Options RenderOptions
	Logf    func(format string, args ...any)
	// ConfigMap is the kube-system ConfigMap whose key "Corefile" is synced; "" is coredns.
	ConfigMap string
	// Files are other keys of ConfigMap that the Pod mounts beside its Corefile (k3s: NodeHosts); each is
	// written, as it is, into Path's directory (a key the ConfigMap lacks is removed).
	Files []string
	// Custom names an optional kube-system ConfigMap that the Pod mounts as a directory (k3s: coredns-custom
	// at /etc/coredns/custom); its keys are written into CustomDir, one file each, and an absent ConfigMap
	// leaves the directory empty, as the optional volume does. The Corefile imports those files: CoreDNS
	// reads them itself when it loads the Corefile, and its reload plugin sees them change, because the hash
	// it compares is of the parsed Corefile with the imports expanded (plugin/reload/reload.go, parse), not of
	// the file's bytes. So a change of Custom alone rewrites only the directory, as the kubelet would.
	Custom string
	// Pillars are replaced in the Corefile before it is rendered, as node-cache fills in the
	// __PILLAR__...__ placeholders of NodeLocal DNSCache's Corefile at run time.
	Pillars map[string]string

	mu       sync.Mutex
	main     *corev1.ConfigMap // last seen
	custom   *corev1.ConfigMap // last seen; nil while there is none
	lastSrc  string            // the Corefile last rendered (after Pillars)
	lastErr  error
	writes   int
	synced   chan struct{}
	syncOnce sync.Once
}

const corednsConfigMap = "coredns"

func (s *CorefileSyncer) configMap() string {
	if s.ConfigMap == "" {
		return corednsConfigMap
	}
	return s.ConfigMap
}

// CustomDir is the directory Custom's keys are written to: custom/ beside Path.
func (s *CorefileSyncer) CustomDir() string { return filepath.Join(filepath.Dir(s.Path), "custom") }

// SyncOnce reads the ConfigMaps and writes the rendered Corefile if it changed.
func (s *CorefileSyncer) SyncOnce(ctx context.Context) error {
	cms := s.Client.CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(ctx, s.configMap(), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("%s: reading kube-system/%s: %w", s.Cluster, s.configMap(), err)
	}
	var custom *corev1.ConfigMap
	if s.Custom != "" {
		if custom, err = cms.Get(ctx, s.Custom, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			custom = nil
		} else if err != nil {
			return fmt.Errorf("%s: reading kube-system/%s: %w", s.Cluster, s.Custom, err)
		}
	}
	s.mu.Lock()
	s.custom = custom
	s.mu.Unlock()
	return s.apply(cm)
}

// Run keeps Path (and the mounted files) in sync with the ConfigMaps until ctx ends. Synced is closed after
// the first attempt.
func (s *CorefileSyncer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if s.Custom != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.watch(ctx, s.Custom, func(cm *corev1.ConfigMap) {
				s.mu.Lock()
				s.custom = cm
				main := s.main
				s.mu.Unlock()
				if main == nil {
					return // the first sync of the main ConfigMap writes the directory
				}
				if err := s.apply(main); err != nil {
					s.logf("%v", err)
				}
			})
		}()
	}
	s.watch(ctx, s.configMap(), func(cm *corev1.ConfigMap) {
		if cm == nil {
			s.logf("%s: kube-system/%s was deleted; CoreDNS keeps its last Corefile", s.Cluster, s.configMap())
			return
		}
		if err := s.apply(cm); err != nil {
			s.logf("%v", err)
		}
	})
	wg.Wait()
}

// watch calls f with each version of the kube-system ConfigMap name, and with nil when it is deleted, until
// ctx ends.
func (s *CorefileSyncer) watch(ctx context.Context, name string, f func(*corev1.ConfigMap)) {
	lw := cache.NewFilteredListWatchFromClient(s.Client.CoreV1().RESTClient(), "configmaps", "kube-system",
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		})
	handle := func(obj any) {
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			f(cm)
		}
	}
	_, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &corev1.ConfigMap{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    handle,
			UpdateFunc: func(_, obj any) { handle(obj) },
			DeleteFunc: func(any) { f(nil) },
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
	s.main = cm
	// The mounted files first, as the kubelet updates each volume on its own: CoreDNS reads them when it
	// (re)loads the Corefile.
	if err := s.writeMounts(); err != nil {
		return fmt.Errorf("%s: %w", s.Cluster, err)
	}
	src, ok := cm.Data["Corefile"]
	if !ok {
		return fmt.Errorf("%s: kube-system/%s has no Corefile; keeping the last one", s.Cluster, s.configMap())
	}
	for pillar, v := range s.Pillars {
		src = strings.ReplaceAll(src, pillar, v)
	}
	if src == s.lastSrc && s.lastErr == nil {
		return nil
	}
	s.lastSrc = src
	out, err := RenderCorefile(src, s.Options)
	s.lastErr = err
	if err != nil {
		return fmt.Errorf("%s: the Corefile in kube-system/%s (resourceVersion %s) does not parse, CoreDNS keeps the last good one: %w",
			s.Cluster, s.configMap(), cm.ResourceVersion, err)
	}
	if old, err := os.ReadFile(s.Path); err == nil && bytes.Equal(old, []byte(out)) {
		return nil
	}
	if err := writeFileAtomic(s.Path, []byte(out)); err != nil {
		return err
	}
	s.writes++
	s.logf("%s: wrote %s from kube-system/%s resourceVersion %s", s.Cluster, s.Path, s.configMap(), cm.ResourceVersion)
	return nil
}

// writeMounts writes Files from the main ConfigMap into Path's directory and Custom's keys into CustomDir,
// removing what the ConfigMaps no longer hold. A key ending in .server is a Corefile of server blocks that
// the Corefile imports: it is rendered like the Corefile (bind, kubeconfig, mounts), so that its blocks listen
// where this cluster's CoreDNS does; one that does not render is written as it is, and CoreDNS refuses it as
// it would the ConfigMap's (keeping its running configuration). Other keys (.override: plugin lines imported
// into a server block) are written as they are.
func (s *CorefileSyncer) writeMounts() error {
	dir := filepath.Dir(s.Path)
	for _, name := range s.Files {
		v, ok := s.main.Data[name]
		if err := syncFile(filepath.Join(dir, name), v, ok); err != nil {
			return err
		}
	}
	if s.Custom == "" {
		return nil
	}
	cdir := s.CustomDir()
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return err
	}
	var data map[string]string
	if s.custom != nil {
		data = s.custom.Data
	}
	for key, v := range data {
		if key != filepath.Base(key) || strings.HasPrefix(key, ".") {
			s.logf("%s: kube-system/%s key %q is no file name; not written", s.Cluster, s.Custom, key)
			continue
		}
		if strings.HasSuffix(key, ".server") {
			if out, err := RenderCorefile(v, s.Options); err == nil {
				v = out
			} else {
				s.logf("%s: kube-system/%s key %s does not render (written as it is; CoreDNS will refuse it): %v", s.Cluster, s.Custom, key, err)
			}
		}
		if err := syncFile(filepath.Join(cdir, key), v, true); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(cdir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, keep := data[e.Name()]; !keep && !strings.HasPrefix(e.Name(), ".") {
			if err := os.Remove(filepath.Join(cdir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncFile writes content to path when it differs (want), or removes path (!want).
func syncFile(path, content string, want bool) error {
	if !want {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	if old, err := os.ReadFile(path); err == nil && string(old) == content {
		return nil
	}
	return writeFileAtomic(path, []byte(content))
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

package sandbox

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SeenVersion is the resourceVersion of the ConfigMap the syncer last wrote (or kept) the Corefile from;
// "" before its first sync.
func (s *CorefileSyncer) SeenVersion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.main == nil {
		return ""
	}
	return s.main.ResourceVersion
}

// WaitServed waits until every cluster's CoreDNS serves the Corefile its ConfigMap holds now: the kubelet
// stand-in has synced the ConfigMap's current version and CoreDNS runs the file (WaitLoaded). A ConfigMap
// written a moment ago reaches the queries only after the watch and CoreDNS's reload interval (seconds), so
// a test that asks names in a loop while something runs keeps asking until WaitServed returns: whatever that
// wrote into a Corefile is then answered from, not left for after the loop. Nothing written returns at once.
// (Only the ConfigMap holding the Corefile is waited for: a k3s cluster's coredns-custom is not.)
func (s *Sandbox) WaitServed(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, c := range s.Clusters {
		sy := s.Syncers[c.Name]
		for {
			cm, err := s.Clients[c.Name].CoreV1().ConfigMaps("kube-system").Get(ctx, sy.configMap(), metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
			if sy.SeenVersion() == cm.ResourceVersion {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: the kubelet stand-in has kube-system/%s resourceVersion %s, not %s, after %s",
					c.Name, cm.Name, sy.SeenVersion(), cm.ResourceVersion, timeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		if err := WaitLoaded(ctx, s.DNS[c.Name], time.Until(deadline)); err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	return nil
}

package sandbox

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/meshd-io/meshd/internal/testenv"
)

// StartT starts the three-cluster sandbox in a temporary directory and stops it when the test ends.
// CoreDNS listens on 127.0.0.11-13 (and 127.0.1.11-13) as in `make demo`, or on another set of loopback
// addresses when those are taken (a demo sandbox running on the same machine). Each modify is applied to
// every cluster before the start (another namespace or cluster domain).
func StartT(t testing.TB, modify ...func(*Cluster)) *Sandbox { return StartNT(t, 3, modify...) }

// StartNT is StartT with n clusters, ClustersN(n, ...): tidb-1..tidb-n, CoreDNS on 127.0.0.1<i> and
// 127.0.1.1<i> (or the other sets StartT tries), with 127.0.0.2<i> (...) reserved for a NodeLocal DNSCache.
// A modify can make one of them External, give it another CoreDNS layout or a NodeLocal DNSCache:
//
//	sandbox.StartNT(t, 4, func(c *sandbox.Cluster) { c.External = c.Name == "tidb-4" })
//	sandbox.StartNT(t, 3, sandbox.WithLayout(sandbox.LayoutK3s, "tidb-1"), sandbox.WithNodeLocal("tidb-3"))
func StartNT(t testing.TB, n int, modify ...func(*Cluster)) *Sandbox {
	t.Helper()
	for _, b := range []testenv.Binary{testenv.BinMoto, testenv.BinEtcd, testenv.BinKubeAPIServer, testenv.BinCoreDNS} {
		testenv.Require(t, b)
	}
	var clusters []Cluster
	var bindErr error
	// Each set: the CoreDNS patterns, then the NodeLocal DNSCache's, all covered by the lock on the first.
	for _, set := range [][]string{{"127.0.0.1%d", "127.0.1.1%d", "127.0.0.2%d"}, {"127.0.7.1%d", "127.0.8.1%d", "127.0.7.2%d"},
		{"127.0.9.1%d", "127.0.10.1%d", "127.0.9.2%d"}} {
		release, err := lockAddressSet(set[0])
		if err != nil {
			bindErr = err
			continue
		}
		cs := ClustersN(n, set[:2]...)
		var addrs []string
		for i := range cs {
			cs[i].spareNodeLocal = fmt.Sprintf(set[2], i+1)
			addrs = append(addrs, cs[i].DNS...)
			addrs = append(addrs, cs[i].spareNodeLocal)
		}
		if bindErr = CheckBind(addrs...); bindErr != nil { // a demo sandbox, which takes no lock, has them
			release()
			continue
		}
		t.Cleanup(release) // registered first, so it runs after the sandbox's processes have stopped
		clusters = cs
		break
	}
	if clusters == nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(bindErr)
		}
		t.Skip(bindErr)
	}
	for i := range clusters {
		for _, f := range modify {
			f(&clusters[i])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress strings.Builder
	s, err := Start(ctx, Options{Dir: t.TempDir(), Clusters: clusters, Progress: &progress, Logf: t.Logf})
	t.Logf("sandbox start:\n%s", progress.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		procs := s.Processes()
		if err := s.Stop(); err != nil {
			t.Logf("stop: %v", err)
		}
		for _, p := range procs {
			if exited, _ := p.Process().Exited(); !exited {
				t.Errorf("%s (pid %d) still runs after Stop", p.Name, p.PID)
			}
			if t.Failed() {
				t.Logf("%s log:\n%s", p.Name, p.Process().LogTail(4<<10))
			}
		}
	})
	return s
}

// SetEnv sets Env() in the test's environment, so that meshctl run in this process talks to the sandbox
// (restored when the test ends; not for parallel tests).
func (s *Sandbox) SetEnv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// Package testenv starts the real parts meshd's integration tests and the local sandbox run against: moto
// (AWS), etcd and kube-apiserver (Kubernetes) and CoreDNS, each as a child process on loopback, stopped by PID.
//
// The binaries are installed by scripts/testenv.sh (`make testenv`). Each Start* function takes a testing.TB,
// stops what it started in t.Cleanup and skips the test (fails it when CI=true) when a binary is missing. The
// Run* functions do the same without a testing.TB, for the sandbox command; their caller stops the processes.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Versions installed by scripts/testenv.sh; the cached binaries are keyed by them.
const (
	MotoVersion          = "5.2.5"
	KubeAPIServerVersion = "1.31.4"
	CoreDNSVersion       = "1.11.3"
	HelmVersion          = "4.3.2"
	// Helm3Version is the Helm 3 the chart is also tested with (it supports both major versions).
	Helm3Version = "3.21.4"
	// PrometheusVersion is the Go module version of Prometheus (v0.<minor>.<patch> is Prometheus
	// 3.<minor>.<patch>) that promtool is built from.
	PrometheusVersion = "0.316.0"
)

// Binary names a part the tests run.
type Binary string

// The parts, by the name scripts/testenv.sh takes.
const (
	BinMoto          Binary = "moto"
	BinEtcd          Binary = "etcd"
	BinKubeAPIServer Binary = "kube-apiserver"
	BinCoreDNS       Binary = "coredns"
	// BinKubectl is the client the tests read meshd's control-plane kubeconfig with, as an operator would.
	BinKubectl Binary = "kubectl"
	// BinHelm installs charts/meshd into a test API server.
	BinHelm Binary = "helm"
	// BinHelm3 is Helm 3, which the chart's tests run beside BinHelm (Helm 4) so that the chart stays
	// installable by both.
	BinHelm3 Binary = "helm3"
	// BinPromtool checks and unit-tests the alert rules with Prometheus's own parser and rule engine.
	BinPromtool Binary = "promtool"
	// BinDot is Graphviz's dot (Debian), the DOT parser meshctl graph's output is checked with.
	BinDot Binary = "dot"
)

// Binaries are all the parts, in the order scripts/testenv.sh env prints them.
var Binaries = []Binary{BinMoto, BinEtcd, BinKubeAPIServer, BinCoreDNS, BinKubectl, BinHelm, BinHelm3, BinPromtool, BinDot}

// EnvVar is the environment variable that overrides the binary's location (as printed by
// `scripts/testenv.sh env`).
func (b Binary) EnvVar() string {
	switch b {
	case BinMoto:
		return "MESHD_MOTO"
	case BinEtcd:
		return "MESHD_ETCD"
	case BinKubeAPIServer:
		return "MESHD_KUBE_APISERVER"
	case BinCoreDNS:
		return "MESHD_COREDNS"
	case BinKubectl:
		return "MESHD_KUBECTL"
	case BinHelm:
		return "MESHD_HELM"
	case BinHelm3:
		return "MESHD_HELM3"
	case BinPromtool:
		return "MESHD_PROMTOOL"
	case BinDot:
		return "MESHD_DOT"
	}
	return ""
}

// DefaultPath is where scripts/testenv.sh installs the binary ("" when unknown, e.g. etcd not on PATH).
func (b Binary) DefaultPath() string {
	switch b {
	case BinMoto:
		root, err := RepoRoot()
		if err != nil {
			return ""
		}
		return filepath.Join(root, ".venv", "bin", "moto_server")
	case BinEtcd, BinDot:
		p, err := exec.LookPath(string(b))
		if err != nil {
			return ""
		}
		return p
	case BinKubeAPIServer:
		return filepath.Join(CacheDir(), "kube-apiserver-v"+KubeAPIServerVersion)
	case BinCoreDNS:
		return filepath.Join(CacheDir(), "coredns-v"+CoreDNSVersion)
	case BinKubectl:
		// Built from the same tools module as kube-apiserver, so of the same version.
		return filepath.Join(CacheDir(), "kubectl-v"+KubeAPIServerVersion)
	case BinHelm:
		return filepath.Join(CacheDir(), "helm-v"+HelmVersion)
	case BinHelm3:
		return filepath.Join(CacheDir(), "helm3-v"+Helm3Version)
	case BinPromtool:
		return filepath.Join(CacheDir(), "promtool-v"+PrometheusVersion)
	}
	return ""
}

// CacheDir is where scripts/testenv.sh caches built binaries: $MESHD_TESTENV_CACHE, else
// ~/.cache/meshd-testenv.
func CacheDir() string {
	if d := os.Getenv("MESHD_TESTENV_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "meshd-testenv")
	}
	return filepath.Join(home, ".cache", "meshd-testenv")
}

var repoRoot = sync.OnceValues(func() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("testenv: no go.mod found in %s or any parent", dir)
		}
	}
})

// RepoRoot is the nearest directory at or above the working directory that holds a go.mod.
func RepoRoot() (string, error) { return repoRoot() }

// ErrMissing is wrapped by the error Lookup returns when a binary is not installed.
var ErrMissing = errors.New("testenv: binary not installed")

// Lookup returns the path of an executable for b: $<EnvVar> when set, else DefaultPath. The error wraps
// ErrMissing and says how to install the binary.
func Lookup(b Binary) (string, error) {
	path, from := os.Getenv(b.EnvVar()), "$"+b.EnvVar()
	if path == "" {
		path, from = b.DefaultPath(), "the default location"
	}
	hint := fmt.Sprintf("run `make testenv` (or `scripts/testenv.sh %s`) to install it, or set $%s", b, b.EnvVar())
	if path == "" {
		return "", fmt.Errorf("%w: %s not found; %s", ErrMissing, b, hint)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found at %s (%s); %s", ErrMissing, b, path, from, hint)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%w: %s at %s (%s) is not an executable file; %s", ErrMissing, b, path, from, hint)
	}
	return path, nil
}

// Require returns the path of b's executable. When it is missing the test fails if $CI is "true" (CI
// installs everything, so a missing part is a bug there) and is skipped otherwise. With -short (`make unit`)
// the test is skipped: it is an integration test.
func Require(t testing.TB, b Binary) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: skipping an integration test that runs %s", b)
	}
	path, err := Lookup(b)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v", err)
		} else {
			t.Skipf("%v", err)
		}
	}
	return path
}

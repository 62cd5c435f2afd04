package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// EtcdStartTimeout bounds how long StartEtcd waits for etcd to report healthy.
const EtcdStartTimeout = 30 * time.Second

// EtcdServer is a running single-member etcd.
type EtcdServer struct {
	*Process
	ClientURL string // http://127.0.0.1:<port>, for --etcd-servers
	DataDir   string
}

// RunEtcd starts a single-member etcd with its data in dataDir (created if needed), client and peer URLs on
// free ports of 127.0.0.1, logging to logPath, and waits (bounded by ctx) until /health reports healthy. The
// caller stops the returned process.
func RunEtcd(ctx context.Context, dataDir, logPath string) (*EtcdServer, error) {
	bin, err := Lookup(BinEtcd)
	if err != nil {
		return nil, err
	}
	var clientURL string
	p, err := startReady(ctx, 3, "etcd", bin, nil, logPath, 50*time.Millisecond, func() ([]string, func(context.Context) error, error) {
		cport, err := FreePort("127.0.0.1")
		if err != nil {
			return nil, nil, err
		}
		pport, err := FreePort("127.0.0.1")
		if err != nil {
			return nil, nil, err
		}
		clientURL = "http://127.0.0.1:" + strconv.Itoa(cport)
		peerURL := "http://127.0.0.1:" + strconv.Itoa(pport)
		args := []string{
			"--name", "meshd-testenv",
			"--data-dir", dataDir,
			"--listen-client-urls", clientURL,
			"--advertise-client-urls", clientURL,
			"--listen-peer-urls", peerURL,
			"--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", "meshd-testenv=" + peerURL,
			"--initial-cluster-state", "new",
			"--logger", "zap",
			"--log-outputs", "stderr",
		}
		return args, func(ctx context.Context) error { return etcdHealthy(ctx, clientURL) }, nil
	})
	if err != nil {
		return nil, err
	}
	return &EtcdServer{Process: p, ClientURL: clientURL, DataDir: dataDir}, nil
}

// StartEtcd starts etcd for the test (data in t.TempDir()) and stops it when the test ends.
func StartEtcd(t testing.TB) *EtcdServer {
	t.Helper()
	Require(t, BinEtcd)
	ctx, cancel := context.WithTimeout(context.Background(), EtcdStartTimeout)
	defer cancel()
	dir := t.TempDir()
	e, err := RunEtcd(ctx, filepath.Join(dir, "data"), filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, e.Process)
	return e
}

func etcdHealthy(ctx context.Context, clientURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var h struct {
		Health string `json:"health"`
	}
	if err := json.Unmarshal(body, &h); err != nil || h.Health != "true" {
		return fmt.Errorf("etcd /health: %s %s", resp.Status, body)
	}
	return nil
}

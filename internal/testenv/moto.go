package testenv

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Moto is a running moto server (AWS emulator).
type Moto struct {
	*Process
	endpoint string
}

// MotoStartTimeout bounds how long StartMoto waits for moto to answer.
const MotoStartTimeout = 30 * time.Second

// motoSerial runs moto_server with its writes serialized; the file says why.
//
//go:embed moto_serial.py
var motoSerial string

// RunMoto starts moto_server (one write at a time, see moto_serial.py) on a free port of 127.0.0.1, logging
// to logPath, and waits (bounded by ctx) until it answers. The caller stops the returned process.
func RunMoto(ctx context.Context, logPath string) (*Process, string, error) {
	bin, err := Lookup(BinMoto)
	if err != nil {
		return nil, "", err
	}
	python, err := scriptInterpreter(bin)
	if err != nil {
		return nil, "", err
	}
	var endpoint string
	p, err := startReady(ctx, 3, "moto", python, nil, logPath, 50*time.Millisecond, func() ([]string, func(context.Context) error, error) {
		port, err := FreePort("127.0.0.1")
		if err != nil {
			return nil, nil, err
		}
		endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
		return []string{"-c", motoSerial, "-H", "127.0.0.1", "-p", strconv.Itoa(port)},
			func(ctx context.Context) error {
				return httpOK(ctx, http.DefaultClient, http.MethodGet, endpoint+"/moto-api/", nil)
			},
			nil
	})
	if err != nil {
		return nil, "", err
	}
	return p, endpoint, nil
}

// scriptInterpreter is the Python that runs the moto_server script at bin (its "#!" line), so that the wrapper
// imports the same moto.
func scriptInterpreter(bin string) (string, error) {
	f, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if !strings.HasPrefix(line, "#!") || len(fields) == 0 {
		return "", fmt.Errorf("%s is not a Python script (no #! line); point MESHD_MOTO at the moto_server pip installs", bin)
	}
	if len(fields) > 1 && strings.HasSuffix(fields[0], "/env") { // #!/usr/bin/env python3
		return fields[1], nil
	}
	return fields[0], nil
}

// StartMoto starts moto for the test and stops it when the test ends (skipping the test when moto is not
// installed, failing it under CI=true).
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	Require(t, BinMoto)
	ctx, cancel := context.WithTimeout(context.Background(), MotoStartTimeout)
	defer cancel()
	p, endpoint, err := RunMoto(ctx, filepath.Join(t.TempDir(), "moto.log"))
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, p)
	return &Moto{Process: p, endpoint: endpoint}
}

// Endpoint is moto's URL, e.g. http://127.0.0.1:41234.
func (m *Moto) Endpoint() string { return m.endpoint }

// Reset drops everything moto holds (POST /moto-api/reset).
func (m *Moto) Reset(t testing.TB) {
	t.Helper()
	// Generous: on a loaded 2-core machine moto has been seen to stall for half a minute.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := ResetMoto(ctx, m.endpoint); err != nil {
		t.Fatal(err)
	}
}

// ResetMoto drops everything the moto server at endpoint holds.
func ResetMoto(ctx context.Context, endpoint string) error {
	return httpOK(ctx, http.DefaultClient, http.MethodPost, endpoint+"/moto-api/reset", nil)
}

// Env is the environment that points the AWS SDK (and meshctl run as a child process) at this moto.
func (m *Moto) Env() []string { return MotoEnv(m.endpoint) }

// MotoEnv is the environment that points the AWS SDK at the moto server at endpoint.
func MotoEnv(endpoint string) []string {
	return []string{
		"AWS_ENDPOINT_URL=" + endpoint,
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// SetEnv sets Env() in the test's environment (restored when the test ends; not for parallel tests).
func (m *Moto) SetEnv(t testing.TB) {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL", m.endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	// Profiles on the developer's machine must not leak into the test.
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "aws-credentials"))
}

// AWSConfig is an SDK configuration for region that talks to this moto with static test credentials.
func (m *Moto) AWSConfig(region string) aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(m.endpoint),
	}
}

func httpOK(ctx context.Context, c *http.Client, method, url string, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, body)
	}
	return nil
}

package kube

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/ekstoken"
	"github.com/meshd-io/meshd/internal/model"
)

// fakeEKS answers DescribeCluster with a test server's address and CA, and signs with a static key.
type fakeEKS struct {
	server string
	ca     []byte

	mu        sync.Mutex
	described []string
	signers   []model.Access
}

func (f *fakeEKS) EKSEndpoint(_ context.Context, a model.Access, region, cluster string) (string, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.described = append(f.described, cluster+"@"+a.In(region))
	return f.server, f.ca, nil
}

func (f *fakeEKS) EKSPresigner(a model.Access, region string) ekstoken.Presigner {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signers = append(f.signers, a)
	return ekstoken.NewPresigner(aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")})
}

// TestEKSAuthClient: a member with kube_auth = "eks" is reached at DescribeCluster's endpoint with its CA,
// or at its kube context's server without the context's user, and every request carries an EKS token for
// the cluster's name signed with the member's access.
func TestEKSAuthClient(t *testing.T) {
	var mu sync.Mutex
	var auths []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"kube-system"}}`))
	}))
	defer srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	// The context's user has a token of its own, which must not be sent.
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: private
  cluster: {server: "`+srv.URL+`", certificate-authority: ca.pem}
users:
- name: someone
  user: {token: the-users-own-token}
contexts:
- name: private
  context: {cluster: private, user: someone}
`), 0o600); err != nil {
		t.Fatal(err)
	}

	fake := &fakeEKS{server: srv.URL, ca: caPEM}
	p := New(Options{Kubeconfig: kubeconfig, EKS: fake})
	role := model.Access{AssumeRole: "arn:aws:iam::111111111111:role/meshd"}
	for _, ref := range []model.EKSRef{
		{Cluster: "tidb-1", Region: "us-west-1"},
		{Cluster: "tidb-2", Region: "us-west-2", Access: role, Context: "private"},
	} {
		c, err := p.Client(ref.String())
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if _, err := c.CoreV1().Namespaces().Get(context.Background(), "kube-system", metav1.GetOptions{}); err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
	}
	if want := []string{"tidb-1@us-west-1"}; strings.Join(fake.described, ",") != strings.Join(want, ",") {
		t.Errorf("DescribeCluster calls %v, want %v (the member with a context takes its server from it)", fake.described, want)
	}
	if len(fake.signers) != 2 || fake.signers[0] != (model.Access{}) || fake.signers[1] != role {
		t.Errorf("tokens signed with %v, want the default credentials, then the member's role", fake.signers)
	}
	if len(auths) != 2 {
		t.Fatalf("%d requests, want 2", len(auths))
	}
	for i, a := range auths {
		tok, ok := strings.CutPrefix(a, "Bearer ")
		if !ok || !strings.HasPrefix(tok, ekstoken.Prefix) {
			t.Errorf("request %d: Authorization is not an EKS bearer token (%.20s...)", i, a)
			continue
		}
		if _, err := ekstoken.Decode(tok); err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
}

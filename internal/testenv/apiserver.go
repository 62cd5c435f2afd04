package testenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// APIServerStartTimeout bounds how long StartAPIServer waits for /readyz (it is usually ready in ~15 s).
const APIServerStartTimeout = 60 * time.Second

// APIServerOptions configures RunAPIServer.
type APIServerOptions struct {
	Name    string // the simulated cluster's name: the etcd prefix is /<Name> and the kubeconfig context <Name>
	EtcdURL string // e.g. http://127.0.0.1:2379
	Dir     string // for the serving certificates, the service-account keys and the token file; created if needed
	LogPath string // defaults to <Dir>/kube-apiserver.log
	// ExtraArgs are appended to the flags from docs (testing.md).
	ExtraArgs []string
	// TokenWebhookConfig, when set, is a kubeconfig naming a token webhook (the aws-iam-authenticator
	// stand-in): bearer tokens that are not in the token file are reviewed by it (TokenReview v1). Accepted
	// tokens are cached for 10 s, so a refused one is seen as refused at once and a renewed one soon.
	TokenWebhookConfig string
}

// APIServer is a running kube-apiserver: one simulated cluster. Its admin token is in group system:masters.
type APIServer struct {
	*Process
	Name  string
	Host  string // https://127.0.0.1:<port>
	Token string
	// UnprivilegedToken is a second identity, the user UnprivilegedUser in the group UnprivilegedGroup,
	// which holds no right until a test binds some: least-privilege tests run meshd as it.
	UnprivilegedToken string
}

// The unprivileged identity of every APIServer (meshctl rbac's default subject is Group:meshd).
const (
	UnprivilegedUser  = "meshd"
	UnprivilegedGroup = "meshd"
)

// Unprivileged is the same server reached as the unprivileged identity: its RESTConfig and Kubeconfig
// authenticate with UnprivilegedToken.
func (s *APIServer) Unprivileged() *APIServer {
	u := *s
	u.Token = s.UnprivilegedToken
	return &u
}

// RunAPIServer starts kube-apiserver on a free port of 127.0.0.1 against the etcd at opts.EtcdURL with the
// prefix /<opts.Name>, and waits (bounded by ctx) until /readyz answers ok. The caller stops the process.
func RunAPIServer(ctx context.Context, opts APIServerOptions) (*APIServer, error) {
	if opts.Name == "" || opts.EtcdURL == "" || opts.Dir == "" {
		return nil, errors.New("testenv: RunAPIServer needs Name, EtcdURL and Dir")
	}
	bin, err := Lookup(BinKubeAPIServer)
	if err != nil {
		return nil, err
	}
	if opts.LogPath == "" {
		opts.LogPath = filepath.Join(opts.Dir, "kube-apiserver.log")
	}
	certDir := filepath.Join(opts.Dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	keyPath, pubPath := filepath.Join(opts.Dir, "sa.key"), filepath.Join(opts.Dir, "sa.pub")
	if err := writeServiceAccountKeys(keyPath, pubPath); err != nil {
		return nil, err
	}
	token, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	unprivileged, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(opts.Dir, "tokens.csv")
	tokens := fmt.Sprintf("%s,admin,admin,\"system:masters\"\n%s,%s,%s-uid,%q\n", token, unprivileged, UnprivilegedUser, UnprivilegedUser, UnprivilegedGroup)
	if err := os.WriteFile(tokenFile, []byte(tokens), 0o600); err != nil {
		return nil, err
	}
	s := &APIServer{Name: opts.Name, Token: token, UnprivilegedToken: unprivileged}
	p, err := startReady(ctx, 3, "kube-apiserver "+opts.Name, bin, nil, opts.LogPath, 200*time.Millisecond, func() ([]string, func(context.Context) error, error) {
		port, err := FreePort("127.0.0.1")
		if err != nil {
			return nil, nil, err
		}
		s.Host = "https://127.0.0.1:" + strconv.Itoa(port)
		args := []string{
			"--etcd-servers=" + opts.EtcdURL,
			"--etcd-prefix=/" + opts.Name,
			"--secure-port=" + strconv.Itoa(port),
			"--bind-address=127.0.0.1",
			"--cert-dir=" + certDir,
			"--token-auth-file=" + tokenFile,
			"--authorization-mode=RBAC",
			"--service-account-issuer=https://kubernetes.default.svc",
			"--service-account-key-file=" + pubPath,
			"--service-account-signing-key-file=" + keyPath,
			"--service-cluster-ip-range=10.96.0.0/12",
			"--disable-admission-plugins=ServiceAccount",
		}
		if opts.TokenWebhookConfig != "" {
			args = append(args, "--authentication-token-webhook-config-file="+opts.TokenWebhookConfig,
				"--authentication-token-webhook-version=v1", "--authentication-token-webhook-cache-ttl=10s")
		}
		args = append(args, opts.ExtraArgs...)
		return args, s.ready, nil
	})
	if err != nil {
		return nil, err
	}
	s.Process = p
	return s, nil
}

// StartAPIServer starts a kube-apiserver for the simulated cluster name against the etcd at etcdURL (several
// may share one etcd: the prefix is /<name>) and stops it when the test ends.
func StartAPIServer(t testing.TB, etcdURL, name string) *APIServer {
	t.Helper()
	Require(t, BinKubeAPIServer)
	ctx, cancel := context.WithTimeout(context.Background(), APIServerStartTimeout)
	defer cancel()
	s, err := RunAPIServer(ctx, APIServerOptions{Name: name, EtcdURL: etcdURL, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, s.Process)
	return s
}

// StartAPIServers starts one kube-apiserver per name in parallel against the etcd at etcdURL (prefix /<name>)
// and stops them when the test ends.
func StartAPIServers(t testing.TB, etcdURL string, names ...string) map[string]*APIServer {
	t.Helper()
	Require(t, BinKubeAPIServer)
	ctx, cancel := context.WithTimeout(context.Background(), APIServerStartTimeout)
	defer cancel()
	type result struct {
		s   *APIServer
		err error
	}
	results := make([]result, len(names))
	dirs := make([]string, len(names))
	for i := range names {
		dirs[i] = t.TempDir()
	}
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := RunAPIServer(ctx, APIServerOptions{Name: name, EtcdURL: etcdURL, Dir: dirs[i]})
			results[i] = result{s, err}
		}()
	}
	wg.Wait()
	servers := make(map[string]*APIServer, len(names))
	var errs []error
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		stopOnCleanup(t, r.s.Process)
		servers[names[i]] = r.s
	}
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	return servers
}

var insecureClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// ready waits for /readyz and for the namespaces the API server creates after it starts: /readyz can answer
// ok a moment before kube-system exists, and tests create objects there right away.
func (s *APIServer) ready(ctx context.Context) error {
	auth := http.Header{"Authorization": {"Bearer " + s.Token}}
	if err := httpOK(ctx, insecureClient, http.MethodGet, s.Host+"/readyz", auth); err != nil {
		return err
	}
	for _, ns := range []string{"default", "kube-system"} {
		if err := httpOK(ctx, insecureClient, http.MethodGet, s.Host+"/api/v1/namespaces/"+ns, auth); err != nil {
			return err
		}
	}
	return nil
}

// RESTConfig is a client-go configuration with the admin token (TLS verification off).
func (s *APIServer) RESTConfig() *rest.Config {
	return &rest.Config{
		Host:            s.Host,
		BearerToken:     s.Token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             100,
		Burst:           200,
	}
}

// Kubeconfig is a kubeconfig with one context named after the server.
func (s *APIServer) Kubeconfig() []byte {
	data, err := Kubeconfig(map[string]*APIServer{s.Name: s})
	if err != nil {
		panic(err) // marshalling plain strings does not fail
	}
	return data
}

// WriteKubeconfig writes a kubeconfig with one context, contextName (the server's name when empty).
func (s *APIServer) WriteKubeconfig(path, contextName string) error {
	if contextName == "" {
		contextName = s.Name
	}
	return WriteMultiKubeconfig(path, map[string]*APIServer{contextName: s})
}

// WriteMultiKubeconfig writes one kubeconfig (mode 0600) with a context, cluster and user per entry of servers,
// named by its key; the current context is the first name in sorted order.
func WriteMultiKubeconfig(path string, servers map[string]*APIServer) error {
	data, err := Kubeconfig(servers)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

type namedCluster struct {
	Name    string `json:"name"`
	Cluster struct {
		Server                string `json:"server"`
		InsecureSkipTLSVerify bool   `json:"insecure-skip-tls-verify"`
	} `json:"cluster"`
}

type namedUser struct {
	Name string `json:"name"`
	User struct {
		Token string `json:"token"`
	} `json:"user"`
}

type namedContext struct {
	Name    string `json:"name"`
	Context struct {
		Cluster string `json:"cluster"`
		User    string `json:"user"`
	} `json:"context"`
}

// Kubeconfig renders a kubeconfig (YAML) with a context, cluster and user per entry of servers, named by its
// key; the current context is the first name in sorted order.
func Kubeconfig(servers map[string]*APIServer) ([]byte, error) {
	if len(servers) == 0 {
		return nil, errors.New("testenv: kubeconfig without servers")
	}
	names := make([]string, 0, len(servers))
	for n := range servers {
		names = append(names, n)
	}
	slices.Sort(names)
	cfg := struct {
		APIVersion     string         `json:"apiVersion"`
		Kind           string         `json:"kind"`
		CurrentContext string         `json:"current-context"`
		Clusters       []namedCluster `json:"clusters"`
		Users          []namedUser    `json:"users"`
		Contexts       []namedContext `json:"contexts"`
	}{APIVersion: "v1", Kind: "Config", CurrentContext: names[0]}
	for _, n := range names {
		s := servers[n]
		var c namedCluster
		c.Name = n
		c.Cluster.Server = s.Host
		c.Cluster.InsecureSkipTLSVerify = true
		var u namedUser
		u.Name = n
		u.User.Token = s.Token
		var x namedContext
		x.Name = n
		x.Context.Cluster = n
		x.Context.User = n
		cfg.Clusters = append(cfg.Clusters, c)
		cfg.Users = append(cfg.Users, u)
		cfg.Contexts = append(cfg.Contexts, x)
	}
	return yaml.Marshal(cfg)
}

func writeServiceAccountKeys(keyPath, pubPath string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("testenv: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

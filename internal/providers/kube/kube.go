// Package kube observes and changes the Kubernetes side of a mesh: each member's DNS Service (whose NLB
// exposes the cluster's CoreDNS) and the server blocks meshd owns in its Corefile.
//
// It reaches each cluster through a context of the user's kubeconfig (--kubeconfig, else $KUBECONFIG, else
// ~/.kube/config, as kubectl does), with one client per context. Errors and diagnostics name the cluster,
// the context and the kubeconfig file, never the kubeconfig's contents (tokens, certificates).
package kube

import (
	"context"
	"errors"
	"fmt"
	"github.com/meshd-io/meshd/internal/spec"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/meshd-io/meshd/internal/kubeclient"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshd-io/meshd/internal/model"
)

// LoadBalancerWaiter finds the load balancer behind a Service's hostname once it is active (the AWS
// provider implements it).
type LoadBalancerWaiter interface {
	// WaitLoadBalancerIn waits in the account the access reaches (a cluster's assumed role; the zero Access
	// is the default credentials').
	WaitLoadBalancerIn(ctx context.Context, a model.Access, region, hostname, address string) (model.LoadBalancer, error)
}

// Options configure a Provider.
type Options struct {
	// Mesh is the mesh name: the value of the meshd.io/mesh label on what meshd creates.
	Mesh string
	// Kubeconfig is the kubeconfig file (--kubeconfig). Empty: $KUBECONFIG, else ~/.kube/config.
	Kubeconfig string
	// LoadBalancers waits for a DNS Service's NLB; required to apply dns_service changes.
	LoadBalancers LoadBalancerWaiter
	// TargetGroups describes load_balancer blocks' target groups; required to apply target_group_binding
	// changes whose ARN is known only after apply.
	TargetGroups TargetGroupDescriber
	// PollInterval is how often a wait asks the API server again. Default 2s.
	PollInterval time.Duration
	// WaitTimeout bounds one wait (a load balancer hostname, a Service's deletion). Default 10 minutes.
	WaitTimeout time.Duration
	// ProgressEvery is how often a long wait reports that it is still waiting. Default ProgressEvery.
	ProgressEvery time.Duration
	// RequestTimeout bounds one API request. Default 15s: an unreachable cluster fails the plan quickly.
	RequestTimeout time.Duration
	// Parallelism bounds the clusters observed at once. Default 8.
	Parallelism int
	// Progress receives a line now and then during long waits; nil discards them.
	Progress func(msg string)
	// WrapTransport wraps every client's HTTP transport (the daemon counts API calls with it).
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// Now is the clock a token's issue time falls back to when the token does not say (tests inject
	// one); nil: time.Now.
	Now func() time.Time
	// NewClient replaces the kubeconfig loading (tests). It is called once per context.
	NewClient func(kubeContext string) (kubeclient.Interface, error)
	// EKS signs meshd in to the members with kube_auth = "eks" (their kube context is a model.EKSRef): the AWS
	// provider. Nil: those members cannot be reached.
	EKS EKSSignIn
}

// Provider is the Kubernetes side of meshd.
type Provider struct {
	opts Options

	mu      sync.Mutex
	raw     *clientcmdapi.Config
	rawErr  error
	loaded  bool
	clients map[string]kubeclient.Interface
}

// New returns a Provider. Nothing is read until a cluster is first used.
func New(opts Options) *Provider {
	if opts.PollInterval == 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.WaitTimeout == 0 {
		opts.WaitTimeout = 10 * time.Minute
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 15 * time.Second
	}
	if opts.ProgressEvery == 0 {
		opts.ProgressEvery = ProgressEvery
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = 8
	}
	return &Provider{opts: opts, clients: map[string]kubeclient.Interface{}}
}

// ErrNoContext is wrapped by the error for a context the kubeconfig does not have.
var ErrNoContext = errors.New("kube context not found")

func (p *Provider) loadingRules() *clientcmd.ClientConfigLoadingRules {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if p.opts.Kubeconfig != "" {
		rules.ExplicitPath = p.opts.Kubeconfig
	}
	return rules
}

// Source says where the kubeconfig is read from, for messages.
func (p *Provider) Source() string {
	if p.opts.Kubeconfig != "" {
		return p.opts.Kubeconfig
	}
	if env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		return "$KUBECONFIG (" + env + ")"
	}
	return filepath.Join("~", clientcmd.RecommendedHomeDir, clientcmd.RecommendedFileName)
}

// CurrentContext returns the kubeconfig's current context (meshctl's default management cluster).
func (p *Provider) CurrentContext() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	raw, err := p.rawLocked()
	if err != nil {
		return "", err
	}
	if raw.CurrentContext == "" {
		return "", fmt.Errorf("%w: the kubeconfig %s has no current context", ErrNoContext, p.Source())
	}
	return raw.CurrentContext, nil
}

// rawLocked is the kubeconfig, read on first use. Called with p.mu held.
func (p *Provider) rawLocked() (*clientcmdapi.Config, error) {
	if !p.loaded {
		p.loaded = true
		p.raw, p.rawErr = p.loadingRules().Load()
	}
	if p.rawErr != nil {
		// clientcmd's errors name the file and the problem, not the file's contents.
		return nil, fmt.Errorf("reading the kubeconfig %s: %w", p.Source(), p.rawErr)
	}
	return p.raw, nil
}

// Client returns the client for a kubeconfig context.
func (p *Provider) Client(kubeContext string) (kubeclient.Interface, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[kubeContext]; ok {
		return c, nil
	}
	var c kubeclient.Interface
	var err error
	if p.opts.NewClient != nil {
		c, err = p.opts.NewClient(kubeContext)
	} else if ref, ok := model.ParseEKSRef(kubeContext); ok {
		c, err = p.newEKSClient(ref)
	} else {
		c, err = p.newClient(kubeContext)
	}
	if err != nil {
		return nil, err
	}
	p.clients[kubeContext] = c
	return c, nil
}

// newClient builds a client for a context of the kubeconfig. Called with p.mu held.
func (p *Provider) newClient(kubeContext string) (kubeclient.Interface, error) {
	rules := p.loadingRules()
	if _, err := p.rawLocked(); err != nil {
		return nil, err
	}
	if _, ok := p.raw.Contexts[kubeContext]; !ok {
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range p.raw.Contexts {
				if !yield(n) {
					return
				}
			}
		})
		have := "it has no contexts"
		if len(names) > 0 {
			have = "it has " + strings.Join(quoteAll(names), ", ")
		}
		return nil, fmt.Errorf("%w: the kubeconfig %s has no context %q (%s)", ErrNoContext, p.Source(), kubeContext, have)
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*p.raw, kubeContext, &clientcmd.ConfigOverrides{}, rules).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kube context %q in %s: %w", kubeContext, p.Source(), err)
	}
	return p.finishClient(cfg, cfg.WrapTransport) // the kubeconfig's (an auth provider), if any
}

// finishClient finishes a client's configuration: meshd's rate limits and user agent, and its transport:
// wrap (authentication), then the request timeout, then Options.WrapTransport.
func (p *Provider) finishClient(cfg *rest.Config, wrap func(http.RoundTripper) http.RoundTripper) (kubeclient.Interface, error) {
	cfg.QPS, cfg.Burst = 50, 100
	cfg.WarningHandler = rest.NoWarnings{}
	cfg.UserAgent = "meshd"
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if wrap != nil {
			rt = wrap(rt)
		}
		rt = withRequestTimeout(rt, p.opts.RequestTimeout)
		if p.opts.WrapTransport != nil {
			rt = p.opts.WrapTransport(rt)
		}
		return rt
	}
	return kubeclient.NewForConfig(cfg)
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

func (p *Provider) progress(format string, args ...any) {
	if p.opts.Progress != nil {
		p.opts.Progress(fmt.Sprintf(format, args...))
	}
}

// Target is a cluster to observe.
type Target struct {
	Cluster     string
	KubeContext string
	// Subject is the range of the cluster's kube_context attribute: problems reaching the cluster are
	// errors against it. Nil for a former member (no longer in the spec): its problems are warnings.
	Subject *hcl.Range
	// Mesh and Member say where to look for the cluster's CoreDNS configuration (plan.DetectCorefile)
	// and whether to read the NodeLocal DNSCache's; Member is a stand-in block for a former member.
	Mesh   *spec.Mesh
	Member *spec.Cluster
	// ReadNodeLocal reads the NodeLocal DNSCache's Corefile even where meshd writes nothing to it (verify,
	// to tell how a Pod's query goes); plans read it only where it may need meshd's blocks, which saves a
	// read per cluster and pass.
	ReadNodeLocal bool
}

func (t Target) diag(summary, detail string) *hcl.Diagnostic {
	sev := hcl.DiagError
	if t.Subject == nil {
		sev = hcl.DiagWarning
		detail += " The cluster is no longer in the spec, so its DNS objects are left alone."
	}
	return &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: detail, Subject: t.Subject}
}

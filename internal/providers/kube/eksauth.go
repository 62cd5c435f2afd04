package kube

import (
	"context"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshd-io/meshd/internal/ekstoken"
	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/model"
)

// EKSSignIn is what meshd needs from AWS to sign in to an EKS cluster itself (the AWS provider).
type EKSSignIn interface {
	// EKSEndpoint is the cluster's API server URL and CA (PEM), from DescribeCluster with the access.
	EKSEndpoint(ctx context.Context, a model.Access, region, cluster string) (server string, caPEM []byte, err error)
	// EKSPresigner signs STS GetCallerIdentity requests with the access, for the region's STS endpoint.
	EKSPresigner(a model.Access, region string) ekstoken.Presigner
}

// newEKSClient builds the client of a member with kube_auth = "eks": the server and CA of its kube
// context's cluster entry (the context's user is not used), or EKS DescribeCluster's; as the bearer, a token
// of ekstoken, renewed before it expires, so that long-lived watches keep working. Called with p.mu held.
func (p *Provider) newEKSClient(ref model.EKSRef) (kubeclient.Interface, error) {
	if p.opts.EKS == nil {
		return nil, fmt.Errorf("EKS cluster %s in %s: this meshd has no AWS side to sign in with", ref.Cluster, ref.Access.In(ref.Region))
	}
	var cfg *rest.Config
	if ref.Context != "" {
		var err error
		if cfg, err = p.serverOnly(ref.Context); err != nil {
			return nil, err
		}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), p.opts.RequestTimeout)
		defer cancel()
		server, ca, err := p.opts.EKS.EKSEndpoint(ctx, ref.Access, ref.Region, ref.Cluster)
		if err != nil {
			return nil, err
		}
		cfg = &rest.Config{Host: server, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
	}
	src := ekstoken.NewSource(p.opts.EKS.EKSPresigner(ref.Access, ref.Region), ref.Cluster, nil)
	return p.finishClient(cfg, src.Wrap)
}

// serverOnly is the configuration of a kube context's cluster entry (server, CA, TLS server name, proxy)
// without its user: credentials come from elsewhere. Called with p.mu held.
func (p *Provider) serverOnly(kubeContext string) (*rest.Config, error) {
	raw, err := p.rawLocked()
	if err != nil {
		return nil, err
	}
	kc, ok := raw.Contexts[kubeContext]
	if !ok {
		return nil, fmt.Errorf("%w: the kubeconfig %s has no context %q", ErrNoContext, p.Source(), kubeContext)
	}
	cl, ok := raw.Clusters[kc.Cluster]
	if !ok {
		return nil, fmt.Errorf("kube context %q in %s names cluster %q, which it does not have", kubeContext, p.Source(), kc.Cluster)
	}
	only := clientcmdapi.NewConfig()
	only.Clusters["c"] = cl
	only.AuthInfos["none"] = clientcmdapi.NewAuthInfo()
	only.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "none"}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*only, "c", &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kube context %q in %s: %w", kubeContext, p.Source(), err)
	}
	return cfg, nil
}

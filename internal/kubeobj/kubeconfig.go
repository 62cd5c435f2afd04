package kubeobj

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeconfigEntry is one cluster of a kubeconfig meshd writes for an operator: a cluster, a user and a
// context, all three named Name.
type KubeconfigEntry struct {
	Name   string
	Server string
	// CAData are the PEM certificates the server's is checked against; none: the system's roots.
	CAData                []byte
	InsecureSkipTLSVerify bool
	TLSServerName         string
	// TokenFile is the path of the user's token as the operator sees it (client-go reads it again now and
	// then, so a renewed token is used without a restart); else Token is the token itself.
	TokenFile string
	Token     string
}

// RenderKubeconfig writes the kubeconfig of entries, in a form that is the same for the same entries (so
// that an unchanged kubeconfig key shows no drift). It has no current context: an operator names the
// context it wants.
func RenderKubeconfig(entries []KubeconfigEntry) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	for _, e := range entries {
		cfg.Clusters[e.Name] = &clientcmdapi.Cluster{Server: e.Server, CertificateAuthorityData: e.CAData,
			InsecureSkipTLSVerify: e.InsecureSkipTLSVerify, TLSServerName: e.TLSServerName}
		cfg.AuthInfos[e.Name] = &clientcmdapi.AuthInfo{TokenFile: e.TokenFile, Token: e.Token}
		cfg.Contexts[e.Name] = &clientcmdapi.Context{Cluster: e.Name, AuthInfo: e.Name}
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		// Nothing of the entries is quoted: the encoder fails on types, not values.
		return nil, errors.New("writing a kubeconfig: " + strings.SplitN(err.Error(), ":", 2)[0])
	}
	return out, nil
}

// InlineTokens returns the token of each user of a kubeconfig that carries its tokens inline (by user
// name), for keeping the tokens that are not due for renewal. Errors never quote the kubeconfig.
func InlineTokens(kubeconfig []byte) (map[string]string, error) {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, errors.New("the kubeconfig does not parse")
	}
	out := map[string]string{}
	for name, u := range cfg.AuthInfos {
		if u.Token != "" {
			out[name] = u.Token
		}
	}
	return out, nil
}

// TokenIssuedAt reads the issue time (the "iat" claim) of a ServiceAccount token, a JWT, without checking
// its signature: with the expiry the API server returned, it gives the lifetime the server granted in the
// server's own clock, however far meshd's clock is off.
func TokenIssuedAt(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		IssuedAt json.Number `json:"iat"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return time.Time{}, false
	}
	iat, err := claims.IssuedAt.Int64()
	if err != nil || iat <= 0 {
		return time.Time{}, false
	}
	return time.Unix(iat, 0).UTC(), true
}

package kubeobj

import (
	"context"
	"errors"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/model"
)

// MinTokenTTL is the shortest token the API server issues (TokenRequest refuses less).
const MinTokenTTL = 10 * time.Minute

// CreateToken asks the API server for a token of the ServiceAccount (the serviceaccounts/token
// subresource, TokenRequest) valid for ttl, and returns it with its expiry. The API server may cap the ttl
// (--service-account-max-token-expiration): expiry is what it granted. Errors never contain the token.
func (c *Client) CreateToken(ctx context.Context, namespace, serviceAccount string, ttl time.Duration) (token string, expiry time.Time, err error) {
	ref := "ServiceAccount " + namespace + "/" + serviceAccount
	if ttl < MinTokenTTL {
		return "", time.Time{}, fmt.Errorf("token for %s: ttl %s is below the API server's minimum of %s", ref, ttl, MinTokenTTL)
	}
	seconds := int64(ttl / time.Second)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}
	resp, err := c.kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, req,
		metav1.CreateOptions{FieldManager: model.FieldManager})
	if err != nil {
		// The request carries no token, so the API server's answer to it cannot quote one.
		return "", time.Time{}, fmt.Errorf("requesting a token for %s: %w", ref, err)
	}
	if resp.Status.Token == "" {
		return "", time.Time{}, errors.New("requesting a token for " + ref + ": the API server returned none")
	}
	return resp.Status.Token, resp.Status.ExpirationTimestamp.Time, nil
}

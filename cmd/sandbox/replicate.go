package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/kubeobj"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
)

// The TiDB CA that specs/sandbox/replicate.hcl replicates: cert-manager's CA Secret of a TiDB cluster.
const (
	caNamespace = "pingcap"
	caName      = "cluster1-ca-secret"
)

// SeedCA creates namespace pingcap in every cluster and, in the first cluster, the Secret
// pingcap/cluster1-ca-secret as cert-manager leaves a self-signed CA (kubernetes.io/tls with ca.crt, tls.crt
// and tls.key, cert-manager's annotations): the source of the demo's replicate block. What exists already
// is left as it is, so a second run changes nothing.
func (d *Dir) SeedCA(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return errors.New("usage: sandbox seed-ca")
	}
	st, err := d.readStatus()
	if err != nil {
		return err
	}
	for i, c := range st.Clusters {
		kc, err := d.kubeClient(st, c)
		if err != nil {
			return err
		}
		_, err = kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: caNamespace}}, metav1.CreateOptions{})
		switch {
		case err == nil:
			fmt.Printf("%s: namespace %s created\n", c.Name, caNamespace)
		case apierrors.IsAlreadyExists(err):
			fmt.Printf("%s: namespace %s exists\n", c.Name, caNamespace)
		default:
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		if i != 0 {
			continue
		}
		secrets := kc.CoreV1().Secrets(caNamespace)
		if _, err := secrets.Get(ctx, caName, metav1.GetOptions{}); err == nil {
			fmt.Printf("%s: Secret %s/%s exists\n", c.Name, caNamespace, caName)
			continue
		} else if !apierrors.IsNotFound(err) {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		crt, key, err := selfSignedCA("tidb-ca")
		if err != nil {
			return err
		}
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: caName, Namespace: caNamespace,
				Labels: map[string]string{"app.kubernetes.io/component": "tidb-ca"},
				Annotations: map[string]string{
					"cert-manager.io/certificate-name": "cluster1-ca",
					"cert-manager.io/common-name":      "tidb-ca",
					"cert-manager.io/issuer-kind":      "Issuer",
					"cert-manager.io/issuer-name":      "selfsigned-issuer",
				}},
			Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{"ca.crt": crt, "tls.crt": crt, "tls.key": key},
		}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: "cert-manager"}); err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		fmt.Printf("%s: Secret %s/%s created (kubernetes.io/tls, a self-signed CA)\n", c.Name, caNamespace, caName)
	}
	return nil
}

// selfSignedCA returns a fresh self-signed CA certificate and its key, PEM-encoded.
func selfSignedCA(cn string) (crt, key []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(90 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// Secret prints what is safe to show of a Secret: its type, key names, content hash (the SHA-256 meshd
// compares and shows in plans), meshd's labels and annotations if it is a copy; never a value.
func (d *Dir) Secret(ctx context.Context, args []string) error {
	if len(args) != 3 {
		return errors.New("usage: sandbox secret CLUSTER NAMESPACE NAME")
	}
	st, c, err := d.statusOf(args[0])
	if err != nil {
		return err
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: st.Kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: c.Context}).ClientConfig()
	if err != nil {
		return err
	}
	kc, err := kubeclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	o, err := kubeobj.NewClient(kc, "").Get(ctx, "Secret", args[1], args[2])
	if err != nil {
		return fmt.Errorf("%s: %w", c.Name, err)
	}
	if o == nil {
		fmt.Printf("%s: no Secret %s/%s\n", c.Name, args[1], args[2])
		return quiet{fmt.Errorf("no Secret %s/%s in %s", args[1], args[2], c.Name)}
	}
	var keys []string
	if data, ok := o.Content["data"].(map[string]any); ok {
		keys = slices.Sorted(maps.Keys(data))
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: Secret %s/%s type=%v keys=[%s] content_hash=sha256:%s", c.Name, o.Namespace, o.Name,
		o.Content["type"], strings.Join(keys, ","), kubeobj.ContentHash(*o))
	if from, ok := o.Annotations[plan.AnnotationReplicatedFrom]; ok {
		fmt.Fprintf(&b, " %s=%s %s=%s %s=%s", model.LabelManagedBy, o.Labels[model.LabelManagedBy],
			model.LabelMesh, o.Labels[model.LabelMesh], plan.AnnotationReplicatedFrom, from)
	}
	fmt.Println(b.String())
	return nil
}

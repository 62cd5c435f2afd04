package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshd-io/meshd/internal/corefile"
)

// Versions of the CoreDNS add-on the stand-in knows: the default one's configuration schema has a
// corefile property (as the add-on's have since v1.9), the old one's does not.
const (
	AddonVersion           = "v1.11.3-eksbuild.2"
	AddonVersionNoCorefile = "v1.8.7-eksbuild.3"
	addonName              = "coredns"
)

// EKSAddons stands in for the EKS add-on API, which moto does not implement. It answers DescribeAddon,
// DescribeAddonConfiguration, UpdateAddon and DescribeUpdate for the coredns add-on of the sandbox's EKS
// clusters and passes every other request on to moto (the SDK's EKS endpoint points here, see
// Sandbox.Env). On an update with resolveConflicts OVERWRITE it writes the configured corefile, or the
// add-on's default Corefile, into the cluster's kube-system/coredns ConfigMap as field manager "eks", as
// EKS does; NONE does the same unless the ConfigMap's Corefile was changed since the add-on last wrote it
// (then the update fails with ConfigurationConflict); PRESERVE leaves the ConfigMap alone.
type EKSAddons struct {
	Endpoint string
	// Clients are the clusters' Kubernetes clients, by EKS cluster name.
	Clients map[string]kubernetes.Interface
	Logf    func(format string, args ...any)

	mu      sync.Mutex
	addons  map[string]*addon      // by EKS cluster name
	updates map[string]*addonWrite // by update ID
	tokens  map[string]string      // clientRequestToken -> update ID
	nextID  int
	srv     *http.Server
}

type addon struct {
	version, values, status string
	lastWritten             string // the Corefile the add-on last wrote into the ConfigMap
}

type addonWrite struct {
	cluster, status, errorCode string
	created                    time.Time
}

// StartEKSAddons listens on a free port of 127.0.0.1 and serves until ctx ends, with a coredns add-on of
// AddonVersion and no configuration in each cluster of clients.
func StartEKSAddons(ctx context.Context, motoEndpoint string, clients map[string]kubernetes.Interface, logf func(string, ...any)) (*EKSAddons, error) {
	target, err := url.Parse(motoEndpoint)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &EKSAddons{Endpoint: "http://" + ln.Addr().String(), Clients: clients, Logf: logf,
		addons: map[string]*addon{}, updates: map[string]*addonWrite{}, tokens: map[string]string{}}
	for name := range clients {
		e.addons[name] = &addon{version: AddonVersion, status: "ACTIVE", lastWritten: DefaultEKSCorefile}
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	director := proxy.Director
	proxy.Director = func(r *http.Request) { director(r); r.Host = target.Host }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /clusters/{name}/addons/{addon}", e.describeAddon)
	mux.HandleFunc("POST /clusters/{name}/addons/{addon}/update", e.updateAddon)
	mux.HandleFunc("GET /clusters/{name}/updates/{id}", e.describeUpdate)
	mux.HandleFunc("GET /addons/configuration-schemas", e.describeConfiguration)
	mux.Handle("/", proxy)
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = e.srv.Close()
	}()
	return e, nil
}

// SetAddon sets an add-on's version and configurationValues, as its owner would (Terraform's
// configuration_values, say), without writing the ConfigMap.
func (e *EKSAddons) SetAddon(cluster, version, values string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a := e.addons[cluster]; a != nil {
		a.version, a.values = version, values
	}
}

// Addon returns an add-on's version and configurationValues.
func (e *EKSAddons) Addon(cluster string) (version, values string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a := e.addons[cluster]; a != nil {
		return a.version, a.values
	}
	return "", ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError answers as EKS's REST-JSON protocol does: the code in X-Amzn-Errortype.
func apiError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("X-Amzn-Errortype", code)
	writeJSON(w, status, map[string]string{"message": message})
}

func (e *EKSAddons) lookup(w http.ResponseWriter, r *http.Request) (string, *addon) {
	name := r.PathValue("name")
	a := e.addons[name]
	if a == nil || r.PathValue("addon") != addonName {
		apiError(w, http.StatusNotFound, "ResourceNotFoundException",
			fmt.Sprintf("No addon: %s found in cluster: %s", r.PathValue("addon"), name))
		return name, nil
	}
	return name, a
}

func (e *EKSAddons) describeAddon(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	name, a := e.lookup(w, r)
	if a == nil {
		return
	}
	out := map[string]any{"addonName": addonName, "clusterName": name, "addonVersion": a.version, "status": a.status,
		"addonArn": fmt.Sprintf("arn:aws:eks:us-west-2:123456789012:addon/%s/%s/sandbox", name, addonName)}
	if a.values != "" {
		out["configurationValues"] = a.values
	}
	writeJSON(w, http.StatusOK, map[string]any{"addon": out})
}

// addonSchema is the add-on's configuration schema for a version, shortened to what meshd and the stand-in use.
func addonSchema(version string) (string, bool) {
	props := map[string]any{"replicaCount": map[string]any{"type": "integer"}, "resources": map[string]any{"type": "object"}}
	switch version {
	case AddonVersion:
		props["corefile"] = map[string]any{"description": "Entire corefile contents to use with installation", "type": "string"}
	case AddonVersionNoCorefile:
	default:
		return "", false
	}
	b, _ := json.Marshal(map[string]any{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
		"additionalProperties": false, "properties": props})
	return string(b), true
}

func (e *EKSAddons) describeConfiguration(w http.ResponseWriter, r *http.Request) {
	name, version := r.URL.Query().Get("addonName"), r.URL.Query().Get("addonVersion")
	s, ok := addonSchema(version)
	if name != addonName || !ok {
		apiError(w, http.StatusBadRequest, "InvalidParameterException", fmt.Sprintf("Addon %s version %s not found", name, version))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"addonName": name, "addonVersion": version, "configurationSchema": s})
}

func (e *EKSAddons) updateAddon(w http.ResponseWriter, r *http.Request) {
	var in struct {
		AddonVersion        *string `json:"addonVersion"`
		ConfigurationValues *string `json:"configurationValues"`
		ResolveConflicts    string  `json:"resolveConflicts"`
		ClientRequestToken  string  `json:"clientRequestToken"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "InvalidParameterException", "malformed request")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	name, a := e.lookup(w, r)
	if a == nil {
		return
	}
	if id, ok := e.tokens[in.ClientRequestToken]; ok && in.ClientRequestToken != "" {
		writeJSON(w, http.StatusOK, map[string]any{"update": e.updateJSON(id)})
		return
	}
	if a.status == "UPDATING" {
		apiError(w, http.StatusConflict, "ResourceInUseException", "Addon is being updated")
		return
	}
	version, values := a.version, a.values
	if in.AddonVersion != nil {
		version = *in.AddonVersion
	}
	if in.ConfigurationValues != nil {
		values = *in.ConfigurationValues
	}
	if _, ok := addonSchema(version); !ok {
		apiError(w, http.StatusBadRequest, "InvalidParameterException", "unknown addon version")
		return
	}
	text, hasCorefile, err := addonCorefile(values)
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidParameterException", "ConfigurationValue provided in request is not supported: "+err.Error())
		return
	}
	if s, _ := addonSchema(version); hasCorefile && !corefile.SchemaHasCorefile(s) {
		apiError(w, http.StatusBadRequest, "InvalidParameterException", "ConfigurationValue provided in request is not supported: corefile is not allowed")
		return
	}
	if !hasCorefile {
		text = DefaultEKSCorefile
	}
	e.nextID++
	id := fmt.Sprintf("sandbox-%04d", e.nextID)
	e.updates[id] = &addonWrite{cluster: name, status: "InProgress", created: time.Now()}
	if in.ClientRequestToken != "" {
		e.tokens[in.ClientRequestToken] = id
	}
	a.version, a.values, a.status = version, values, "UPDATING"
	go e.finish(id, name, text, in.ResolveConflicts)
	writeJSON(w, http.StatusOK, map[string]any{"update": e.updateJSON(id)})
}

// addonCorefile reads the corefile of configurationValues, as EKS validates them.
func addonCorefile(values string) (string, bool, error) {
	c, err := corefile.ParseAddonConfig(values)
	if err != nil {
		return "", false, errors.New("not a JSON or YAML object")
	}
	return c.Corefile()
}

// finish carries out an update as EKS does: the ConfigMap first, then the update's status.
func (e *EKSAddons) finish(id, cluster, text, resolve string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, code := "Successful", ""
	e.mu.Lock()
	last := e.addons[cluster].lastWritten
	e.mu.Unlock()
	if resolve != "PRESERVE" {
		written, err := e.writeCorefile(ctx, cluster, text, resolve, last)
		switch {
		case errors.Is(err, errConfigurationConflict):
			status, code = "Failed", "ConfigurationConflict"
		case err != nil:
			status, code = "Failed", "ClusterUnreachable"
		case written:
			e.mu.Lock()
			e.addons[cluster].lastWritten = text
			e.mu.Unlock()
		}
		if err != nil && e.Logf != nil {
			e.Logf("eks add-on stand-in: update %s of %s: %v", id, cluster, err)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.updates[id].status, e.updates[id].errorCode = status, code
	e.addons[cluster].status = "ACTIVE"
	if e.Logf != nil {
		e.Logf("eks add-on stand-in: update %s of %s (resolveConflicts %q): %s", id, cluster, resolve, status)
	}
}

var errConfigurationConflict = errors.New("the Corefile was changed outside the add-on")

func (e *EKSAddons) writeCorefile(ctx context.Context, cluster, text, resolve, last string) (bool, error) {
	kc := e.Clients[cluster]
	cms := kc.CoreV1().ConfigMaps("kube-system")
	for range 5 {
		cm, err := cms.Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if resolve != "OVERWRITE" && cm.Data["Corefile"] != last {
			return false, errConfigurationConflict
		}
		if cm.Data["Corefile"] == text {
			return true, nil
		}
		cm.Data["Corefile"] = text
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: "eks"})
		if err == nil {
			return true, nil
		}
		if !apierrors.IsConflict(err) {
			return false, err
		}
	}
	return false, errors.New("the ConfigMap kept changing")
}

func (e *EKSAddons) updateJSON(id string) map[string]any {
	u := e.updates[id]
	out := map[string]any{"id": id, "status": u.status, "type": "AddonUpdate",
		"createdAt": u.created.Unix()}
	if u.errorCode != "" {
		out["errors"] = []map[string]any{{"errorCode": u.errorCode, "errorMessage": "see the stand-in's log"}}
	}
	return out
}

func (e *EKSAddons) describeUpdate(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	u := e.updates[r.PathValue("id")]
	if u == nil || u.cluster != r.PathValue("name") {
		apiError(w, http.StatusNotFound, "ResourceNotFoundException", "No update found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"update": e.updateJSON(r.PathValue("id"))})
}

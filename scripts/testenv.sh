#!/usr/bin/env bash
# Installs the real parts the integration tests and the sandbox run against:
# moto (AWS emulator, PyPI), etcd and Graphviz's dot (Debian), kube-apiserver, kubectl, CoreDNS, helm 4 and 3
# and promtool (built from the Go module proxy). Binaries are cached outside the repo, keyed by version, so only
# the first run on a machine is slow. kubectl is the client the control-plane kubeconfig tests read meshd's
# Secret with, as an operator would; helm installs charts/meshd into a test API server, under both major
# versions the chart supports (helm3 is helm 3, cached under its own name); promtool checks and unit-tests the
# alert rules; dot parses meshctl graph's output.
#
#   scripts/testenv.sh moto|etcd|kube-apiserver|kubectl|coredns|helm|helm3|promtool|dot|all
#   scripts/testenv.sh env        # prints the variables the tests read (MESHD_MOTO, MESHD_ETCD, ...)
set -euo pipefail

MOTO_VERSION=5.2.5
K8S_VERSION=1.31.4
COREDNS_VERSION=1.11.3
HELM_VERSION=4.3.2
# The chart supports Helm 3 too; 3.22.0 is served by the proxy but not approved here.
HELM3_VERSION=3.21.4
# Prometheus's Go module versions are v0.<minor>.<patch> for Prometheus 3.<minor>.<patch>.
PROMETHEUS_VERSION=0.316.0

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${MESHD_TESTENV_CACHE:-$HOME/.cache/meshd-testenv}
venv=$root/.venv
mkdir -p "$cache"

log() { printf '[testenv] %s\n' "$*" >&2; }

install_moto() {
  if [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c "import moto,sys; sys.exit(moto.__version__!='$MOTO_VERSION')" 2>/dev/null; then
    return
  fi
  log "installing moto[server]==$MOTO_VERSION into .venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "moto[server]==$MOTO_VERSION"
}

install_etcd() {
  if command -v etcd >/dev/null 2>&1; then return; fi
  log "installing etcd-server from Debian"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-server >/dev/null
}

# kube_tools_module writes the tools module kube-apiserver and kubectl are built from (k8s.io/kubernetes
# with its staging modules pinned), and prints its directory.
kube_tools_module() {
  local mod=$cache/kube-tools-v$K8S_VERSION
  mkdir -p "$mod"
  local staging="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
    cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api cri-client
    csi-translation-lib dynamic-resource-allocation endpointslice kms kube-aggregator kube-controller-manager
    kube-proxy kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission sample-apiserver"
  {
    echo "module meshd.local/kubetools"
    echo "go 1.22"
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    for m in $staging; do echo "replace k8s.io/$m => k8s.io/$m v0.${K8S_VERSION#1.}"; done
  } >"$mod/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' >"$mod/tools.go"
  (cd "$mod" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true)
  echo "$mod"
}

install_kube_apiserver() {
  local bin=$cache/kube-apiserver-v$K8S_VERSION
  if [ -x "$bin" ]; then return; fi
  log "building kube-apiserver v$K8S_VERSION from the Go module proxy (about 5 minutes the first time)"
  local mod
  mod=$(kube_tools_module)
  (cd "$mod" && GOFLAGS=-mod=mod go build -o "$bin.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$bin.tmp" "$bin"
}

install_kubectl() {
  local bin=$cache/kubectl-v$K8S_VERSION
  if [ -x "$bin" ]; then return; fi
  log "building kubectl v$K8S_VERSION from the Go module proxy (a few minutes the first time)"
  local mod
  mod=$(kube_tools_module)
  (cd "$mod" && GOFLAGS=-mod=mod go build -o "$bin.tmp" k8s.io/kubernetes/cmd/kubectl)
  mv "$bin.tmp" "$bin"
}

install_coredns() {
  local bin=$cache/coredns-v$COREDNS_VERSION
  if [ -x "$bin" ]; then return; fi
  log "building coredns v$COREDNS_VERSION from the Go module proxy (about 2 minutes the first time)"
  local gobin=$cache/coredns-build
  mkdir -p "$gobin"
  GOBIN=$gobin GOFLAGS=-mod=mod go install "github.com/coredns/coredns@v$COREDNS_VERSION"
  mv "$gobin/coredns" "$bin"
}

# apt_install installs Debian packages (as root, else with sudo).
apt_install() {
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

install_dot() {
  if command -v dot >/dev/null 2>&1; then return; fi
  log "installing graphviz (dot) from Debian"
  apt_install graphviz
}

# go_install_cached builds a Go command from the module proxy into the cache as <name>-v<version>. The
# command's own name is the package's last element, which <name> may differ from (helm3 is helm 3's helm).
go_install_cached() {
  local name=$1 pkg=$2 version=$3
  local bin=$cache/$name-v$version
  if [ -x "$bin" ]; then return; fi
  log "building $name v$version from the Go module proxy (a few minutes the first time)"
  local gobin=$cache/$name-build
  mkdir -p "$gobin"
  GOBIN=$gobin GOFLAGS=-mod=mod CGO_ENABLED=0 go install "$pkg@v$version"
  mv "$gobin/${pkg##*/}" "$bin"
}

install_helm() { go_install_cached helm helm.sh/helm/v4/cmd/helm "$HELM_VERSION"; }

install_helm3() { go_install_cached helm3 helm.sh/helm/v3/cmd/helm "$HELM3_VERSION"; }

install_promtool() { go_install_cached promtool github.com/prometheus/prometheus/cmd/promtool "$PROMETHEUS_VERSION"; }

print_env() {
  echo "MESHD_MOTO=$venv/bin/moto_server"
  echo "MESHD_ETCD=$(command -v etcd || true)"
  echo "MESHD_KUBE_APISERVER=$cache/kube-apiserver-v$K8S_VERSION"
  echo "MESHD_COREDNS=$cache/coredns-v$COREDNS_VERSION"
  echo "MESHD_KUBECTL=$cache/kubectl-v$K8S_VERSION"
  echo "MESHD_HELM=$cache/helm-v$HELM_VERSION"
  echo "MESHD_HELM3=$cache/helm3-v$HELM3_VERSION"
  echo "MESHD_PROMTOOL=$cache/promtool-v$PROMETHEUS_VERSION"
  echo "MESHD_DOT=$(command -v dot || true)"
}

case "${1:-all}" in
  moto) install_moto ;;
  etcd) install_etcd ;;
  kube-apiserver) install_kube_apiserver ;;
  kubectl) install_kubectl ;;
  coredns) install_coredns ;;
  helm) install_helm ;;
  helm3) install_helm3 ;;
  promtool) install_promtool ;;
  dot) install_dot ;;
  aws) install_moto ;;
  all) install_moto; install_etcd; install_coredns; install_kube_apiserver; install_kubectl
    install_dot; install_helm; install_helm3; install_promtool ;;
  env) print_env ;;
  *) echo "usage: $0 moto|etcd|kube-apiserver|kubectl|coredns|helm|helm3|promtool|dot|all|env" >&2; exit 2 ;;
esac

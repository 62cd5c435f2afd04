#!/usr/bin/env bash
# make demo: meshd's main job on a local sandbox of three simulated EKS clusters (moto for AWS, a real
# kube-apiserver and a real CoreDNS per cluster; see cmd/sandbox). It starts the sandbox (or reuses a
# healthy one), runs `meshctl plan` and `meshctl apply` on specs/sandbox, then asks each cluster's CoreDNS
# for the other clusters' Pods.
#
#   scripts/demo.sh          # = make demo (idempotent: a second run reuses the sandbox and converges)
#   scripts/demo.sh down     # = make demo-down: stops everything the sandbox started, removes .sandbox/
#   MESHCTL=path scripts/demo.sh   # use that meshctl instead of building ./cmd/meshctl
#
# The first run on a machine builds kube-apiserver and CoreDNS (minutes); later runs take seconds.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=$root/bin
spec=specs/sandbox
state=.sandbox/meshd.state.json
meshctl=${MESHCTL:-$bin/meshctl}

if [ -t 1 ]; then bold=$'\e[1m'; red=$'\e[31m'; green=$'\e[32m'; off=$'\e[0m'; else bold=; red=; green=; off=; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
ok() { printf '%s%s%s\n' "$green" "$*" "$off"; }
fail() { printf '%s%s%s\n' "$red" "$*" "$off"; }
timed() { # timed LABEL CMD...: runs CMD and prints how long it took
  local label=$1 t0=$SECONDS; shift
  "$@"
  printf '(%s: %ss)\n' "$label" "$((SECONDS - t0))"
}

build() {
  step "building meshctl and sandbox"
  mkdir -p "$bin"
  go build -o "$bin/sandbox" ./cmd/sandbox
  if [ -z "${MESHCTL:-}" ]; then go build -o "$meshctl" ./cmd/meshctl; fi
}

case "${1:-up}" in
  down)
    if [ ! -x "$bin/sandbox" ]; then go build -o "$bin/sandbox" ./cmd/sandbox; fi
    "$bin/sandbox" down
    exit 0
    ;;
  up) ;;
  *) echo "usage: $0 [down]" >&2; exit 2 ;;
esac

start=$SECONDS
build

step "installing the test environment (moto, etcd, kube-apiserver, CoreDNS; cached after the first run)"
scripts/testenv.sh all
eval "$(scripts/testenv.sh env | sed 's/^/export /')"

step "starting the sandbox: 3 clusters (tidb-1 us-west-1, tidb-2 us-west-2, tidb-3 us-east-1)"
"$bin/sandbox" up
# shellcheck disable=SC1091
source .sandbox/env
"$bin/sandbox" status

step "meshctl plan --spec $spec"
code=0
"$meshctl" plan --spec "$spec" --state "$state" --detailed-exitcode || code=$?
case $code in
  0) ok "no changes: the mesh already matches the spec (a sandbox from an earlier run)" ;;
  2) ;;
  *) fail "meshctl plan failed (exit $code)"; exit 1 ;;
esac

step "meshctl apply --spec $spec --auto-approve"
timed apply "$meshctl" apply --spec "$spec" --state "$state" --auto-approve

step "meshctl plan again: nothing left to do"
code=0
"$meshctl" plan --spec "$spec" --state "$state" --detailed-exitcode >/dev/null || code=$?
if [ "$code" = 0 ]; then ok "converged: peerings, routes and security-group rules (and whatever else meshctl manages) match the spec"
else fail "a second plan still has changes (exit $code)"; "$meshctl" plan --spec "$spec" --state "$state" || true; exit 1; fi

step "DNS: tidb-1's CoreDNS (127.0.0.11) asked for the Pods of tidb-2 and tidb-3"
for n in 2 3; do
  "$bin/sandbox" lookup tidb-1 "sample-nginx.sample-nginx-peer.pingcap-$n.svc.cluster.local" --tcp || true
done

step "verify: every cluster's CoreDNS resolves every cluster's Pod"
if "$bin/sandbox" verify --wait 15s; then
  ok "the three clusters resolve each other's names ($((SECONDS - start))s in all)"
else
  fail "cross-cluster DNS does not resolve yet."
  echo "The AWS part (peerings, routes, security-group rules) was applied above; the failing pairs are listed"
  echo "with the reason. The sandbox keeps running for inspection: bin/sandbox status, bin/sandbox lookup ...;"
  echo "'make demo-down' stops it."
  exit 1
fi
echo
echo "The sandbox keeps running: bin/sandbox status | lookup CLUSTER NAME | verify; 'make demo-down' stops it."

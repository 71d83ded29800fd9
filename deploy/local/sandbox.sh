#!/usr/bin/env bash
# The whole thing, locally, in one command (README's first command):
# a real kube-apiserver (+ etcd, + garbage collector), the Confluent mock, the CRD, the operator,
# and the example Invitations from deploy/examples/ reconciled; then `kubectl get invitations -A`.
# It stays up for you to play with (the commands are printed) and tears down on Ctrl-C.
#
# env: SANDBOX_DIR (state, default /tmp/cio-sandbox), MOCK_PORT (8090), OPERATOR_PORT (8080),
#      API_PORT (16443), ETCD_PORT (23790), SANDBOX_ONESHOT=1 (exit after showing the result:
#      what CI does to check this script), K8S_VERSION (the current release by default; 1.20 for
#      the oldest supported one, see env.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_DIR"
SANDBOX_DIR=${SANDBOX_DIR:-/tmp/cio-sandbox}
MOCK_PORT=${MOCK_PORT:-8090}
OPERATOR_PORT=${OPERATOR_PORT:-8080}
export API_PORT=${API_PORT:-16443} ETCD_PORT=${ETCD_PORT:-23790}
# The example Secret's placeholder key is what the mock accepts, so the example works unchanged.
EXAMPLE_KEY=$(sed -n 's/^ *apiKey: *\([^ #]*\).*/\1/p' deploy/examples/10-credentials-secret.yaml)
EXAMPLE_SECRET=$(sed -n 's/^ *apiSecret: *\([^ #]*\).*/\1/p' deploy/examples/10-credentials-secret.yaml)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "installing what is missing (first run on a fresh machine: ~5 minutes, cached afterwards)"
"$LOCAL_DIR/setup.sh"
say "building the operator and the Confluent mock"
cargo build --locked -p confluent-invitation-operator --bin confluent-invitation-operator -p confluent-mock --bin confluent-mock

rm -rf "$SANDBOX_DIR"; mkdir -p "$SANDBOX_DIR"
pids=()
cleanup() {
  say "tearing down"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$LOCAL_DIR/stop-control-plane.sh" "$SANDBOX_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting etcd + kube-apiserver $("$K8S_BIN/kube-apiserver" --version | cut -d' ' -f2) on 127.0.0.1:$API_PORT"
"$LOCAL_DIR/start-control-plane.sh" "$K8S_BIN" "$SANDBOX_DIR" >/dev/null
export KUBECONFIG="$SANDBOX_DIR/kubeconfig"

say "starting the Confluent mock on 127.0.0.1:$MOCK_PORT"
target/debug/confluent-mock --listen "127.0.0.1:$MOCK_PORT" \
  --api-key sandbox-key --api-secret sandbox-secret \
  --api-key "$EXAMPLE_KEY" --api-secret "$EXAMPLE_SECRET" >"$SANDBOX_DIR/mock.log" 2>&1 &
pids+=($!)

say "applying the CRDs"
if [ "$(kubectl version -o json | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["serverVersion"]["minor"].rstrip("+")))')" -ge 25 ]; then
  # as shipped: server-side apply, the CEL rules (x-kubernetes-validations) enforced
  kubectl apply --server-side -f crds/invitations.iam.ccloud.dev.yaml \
    -f crds/invitationpolicies.iam.ccloud.dev.yaml -f crds/invitationgroups.iam.ccloud.dev.yaml >/dev/null
else
  # K8S_VERSION=1.20: kubectl's client-side schema check on a pre-1.25 server does not know the
  # CEL rules; the server drops them and validates the rest
  kubectl apply --validate=false -f crds/invitations.iam.ccloud.dev.yaml \
    -f crds/invitationpolicies.iam.ccloud.dev.yaml -f crds/invitationgroups.iam.ccloud.dev.yaml >/dev/null
fi
kubectl wait --for condition=Established crd/invitations.iam.ccloud.dev \
  crd/invitationpolicies.iam.ccloud.dev crd/invitationgroups.iam.ccloud.dev --timeout=30s >/dev/null

say "starting the operator (log: $SANDBOX_DIR/operator.log, metrics: http://127.0.0.1:$OPERATOR_PORT/metrics)"
CONFLUENT_CLOUD_ENDPOINT="http://127.0.0.1:$MOCK_PORT" \
CONFLUENT_CLOUD_API_KEY=sandbox-key CONFLUENT_CLOUD_API_SECRET=sandbox-secret \
RESYNC_INTERVAL=10s HTTP_ADDR="127.0.0.1:$OPERATOR_PORT" LOG_FORMAT=text \
  target/debug/confluent-invitation-operator run >"$SANDBOX_DIR/operator.log" 2>&1 &
pids+=($!)

say "applying deploy/examples/"
kubectl apply -f deploy/examples/ >/dev/null
names=$(kubectl -n invitations-demo get invitations -o name)
for n in $names; do
  kubectl -n invitations-demo wait --for condition=Ready "$n" --timeout=60s >/dev/null
done
say "kubectl get invitations -A"
kubectl get invitations -A -o wide
echo
say "the mock's view: curl -s http://127.0.0.1:$MOCK_PORT/_mock/invitations"
curl -s "http://127.0.0.1:$MOCK_PORT/_mock/invitations" | python3 -c '
import json, sys
for i in json.load(sys.stdin):
    print("  %-8s %-32s %-26s user %s" % (i["id"], i["email"], i["status"], i["user"]["id"]))'

if [ "${SANDBOX_ONESHOT:-0}" = 1 ]; then exit 0; fi
id=$(kubectl -n invitations-demo get inv jane -o jsonpath='{.status.invitationId}')
cat <<MSG

The sandbox is up. In another shell:
  export KUBECONFIG=$KUBECONFIG PATH=$TOOLS_BIN:\$PATH
  kubectl get invitations -A -w                                     # watch status
  curl -X POST http://127.0.0.1:$MOCK_PORT/_mock/invitations/$id/accept   # jane accepts (phase Accepted within 10s)
  curl -X POST http://127.0.0.1:$MOCK_PORT/_mock/invitations/$id/expire   # or let it expire
  kubectl -n invitations-demo delete inv local-lee                  # Orphan: the remote invitation stays
  kubectl -n invitations-demo describe inv jane                     # Events
  curl -s http://127.0.0.1:$OPERATOR_PORT/metrics | grep ^confluent_invitation_operator
Press Ctrl-C to tear everything down.
MSG
while true; do sleep 3600; done

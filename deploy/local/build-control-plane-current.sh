#!/usr/bin/env bash
# Build the current control plane: kube-apiserver and kube-controller-manager of the release
# pinned in deploy/local/control-plane/go.mod, and the etcd server that release pins, from the Go
# module proxy with the machine's own Go (>= the go line of go.mod). Modules and build cache live
# under CACHE, so a second build is offline; skips everything when OUT already has the three.
# usage: build-control-plane-current.sh OUT_DIR CACHE_DIR
set -euo pipefail
OUT=${1:?out dir}; CACHE=${2:?cache dir}
MODULE=$(cd "$(dirname "${BASH_SOURCE[0]}")/control-plane" && pwd)
if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/kube-controller-manager" ] && [ -x "$OUT/etcd" ]; then
  echo "control-plane binaries present in $OUT"; exit 0
fi

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
GO=$(current_go)   # the machine's own Go, never Debian's 1.19 (env.sh)
export GOTOOLCHAIN=local    # the pinned toolchain or an error, never a download
want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$MODULE/go.mod")
have=$("$GO" env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" != "$want" ]; then
  echo "$GO is Go $have; deploy/local/control-plane needs Go >= $want" >&2; exit 1
fi

# The release is the one go.mod pins; its version is stamped into the binaries as a release
# build does (otherwise they report v0.0.0, which clients and the CRD machinery read).
K8S=$(cd "$MODULE" && GOFLAGS=-mod=readonly GOMODCACHE="$CACHE/mod" "$GO" list -m -f '{{.Version}}' k8s.io/kubernetes)
major=${K8S#v}; minor=${major#*.}; major=${major%%.*}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

export CGO_ENABLED=0 GOFLAGS=-mod=readonly GOMODCACHE="$CACHE/mod" GOCACHE="$CACHE/build"
TMP="$OUT.partial"; rm -rf "$TMP"; mkdir -p "$TMP"
cd "$MODULE"
echo "building kube-apiserver, kube-controller-manager $K8S and etcd with $GO ($have)"
"$GO" build -trimpath -ldflags "$ldflags" -o "$TMP/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
"$GO" build -trimpath -ldflags "-s -w" -o "$TMP/etcd" go.etcd.io/etcd/server/v3
"$TMP/kube-apiserver" --version
"$TMP/etcd" --version | sed -n 1p   # (not head: etcd would die of SIGPIPE under pipefail)
rm -rf "$OUT"; mv "$TMP" "$OUT"

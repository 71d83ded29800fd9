# Shared settings of the local scripts (sourced, not run).
# Big downloads and builds are cached outside the repository, once per machine.
CIO_CACHE=${CIO_CACHE:-/var/cache/cio}
LOCAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LOCAL_DIR/../.." && pwd)
# Which control plane: the current release pinned in control-plane/go.mod (built from Go
# modules, with the etcd it pins), or K8S_VERSION=1.20 for the oldest supported server
# (v1.20.2 built from Debian's source package, with Debian's etcd).
K8S_CURRENT=$(sed -n 's/^[[:space:]]*k8s.io\/kubernetes \(v[0-9.]*\).*/\1/p' "$LOCAL_DIR/control-plane/go.mod")
K8S_VERSION=${K8S_VERSION:-current}
case "$K8S_VERSION" in
  current | "${K8S_CURRENT#v}") K8S_VERSION=current; K8S_DEFAULT_BIN=$CIO_CACHE/k8s-${K8S_CURRENT#v} ;;
  1.20 | 1.20.2) K8S_VERSION=1.20; K8S_DEFAULT_BIN=$CIO_CACHE/k8s-1.20.2 ;;
  *) echo "K8S_VERSION=$K8S_VERSION: either current (${K8S_CURRENT#v}) or 1.20" >&2; return 1 ;;
esac
K8S_BIN=${K8S_BIN:-$K8S_DEFAULT_BIN}          # kube-apiserver + kube-controller-manager (+ etcd for current)
TOOLS_BIN=${TOOLS_BIN:-$CIO_CACHE/bin}         # helm + kubectl from PyPI
export PATH="$TOOLS_BIN:$PATH"
export KUBECTL="$TOOLS_BIN/kubectl"
# The machine's own Go, by path (the current release and the test tools need >= 1.26): not
# Debian's 1.19, which the 1.20 build installs as /usr/bin/go and may come first on PATH.
current_go() {
  local candidate
  while read -r candidate; do
    case "$(readlink -f "$candidate")" in /usr/lib/go-1.19/*) continue ;; esac
    echo "$candidate"; return 0
  done < <(type -ap go)
  [ -x /usr/local/go/bin/go ] && { echo /usr/local/go/bin/go; return 0; }
  echo "no Go besides Debian's 1.19 on this machine (Go >= 1.26 needed)" >&2; return 1
}

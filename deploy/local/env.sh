# Shared settings of the local scripts (sourced, not run).
# Big downloads and builds are cached outside the repository, once per machine.
CIO_CACHE=${CIO_CACHE:-/var/cache/cio}
K8S_BIN=${K8S_BIN:-$CIO_CACHE/k8s-1.20.2}      # kube-apiserver + kube-controller-manager, built from Debian's source
TOOLS_BIN=${TOOLS_BIN:-$CIO_CACHE/bin}         # helm + kubectl from PyPI
LOCAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LOCAL_DIR/../.." && pwd)
export PATH="$TOOLS_BIN:$PATH"
export KUBECTL="$TOOLS_BIN/kubectl"

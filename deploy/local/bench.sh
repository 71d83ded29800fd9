#!/usr/bin/env bash
# The scale benchmark (benches/scale/) in one command: installs what is missing, builds the
# operator in release mode, starts a throwaway etcd + kube-apiserver (+ kube-controller-manager),
# runs `cargo bench --bench scale` against it and writes the report to BENCHMARKS.md at the
# repository root. The control plane is stopped and its state removed afterwards, also on failure.
#
# usage: deploy/local/bench.sh [BENCHMARK ARGS]
#   default: --sizes 100,1000,10000 --rate 20 --burst 20 --latency-ms 50 --resync 30s
#            --steady-windows 2 --runs default,configured,peers --after-halving 100 (about an
#            hour on 2 cores with N = 10 000); e.g. `--sizes 100` for a quick look,
#            `--rate-for 10000=100` for another rate limit at one size, `--secrets 20` for the
#            Invitations spread over 20 Secrets holding one key, `--groups` for them as the
#            members of InvitationGroups; `--help` lists them all.
#   Without --out, the report goes to BENCHMARKS.md (and stdout); progress goes to stderr.
# env: API_PORT (16743), ETCD_PORT (24090), BENCH_DIR (state; default a fresh /tmp/cio-bench.*)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_DIR"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

args=("$@")
has_out=0
for a in "${args[@]}"; do
  case "$a" in --out|--out=*) has_out=1 ;; -h|--help) has_out=1 ;; esac
done
[ "$has_out" = 1 ] || args+=(--out "$REPO_DIR/BENCHMARKS.md")

export API_PORT=${API_PORT:-16743} ETCD_PORT=${ETCD_PORT:-24090}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/cio-bench.XXXXXX)}
mkdir -p "$BENCH_DIR"
cleanup() {
  "$LOCAL_DIR/stop-control-plane.sh" "$BENCH_DIR" || true
  rm -rf "$BENCH_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "installing what is missing"
"$LOCAL_DIR/setup.sh" >&2
say "building the operator (release, exactly as shipped) and the benchmark"
# What the operator is built from: the commit, plus a digest of uncommitted changes to its sources
# (its own and its Confluent client's).
source_state() {
  local diff
  diff=$(git diff HEAD -- src confluent-client/src confluent-client/Cargo.toml Cargo.toml Cargo.lock | sha256sum | cut -c1-12)
  if git diff --quiet HEAD -- src confluent-client/src confluent-client/Cargo.toml Cargo.toml Cargo.lock; then
    echo "commit $(git rev-parse --short HEAD)"
  else
    echo "commit $(git rev-parse --short HEAD) + uncommitted changes to src/ or confluent-client/ (diff digest $diff)"
  fi
}
# Others may edit the tree meanwhile: a build during which a source file changed is done again,
# so the binary matches the state recorded in the report.
for attempt in 1 2 3 4; do
  stamp="$BENCH_DIR/build.stamp"; : > "$stamp"; sleep 1
  before=$(source_state)
  cargo build --release --locked -p confluent-invitation-operator --bin confluent-invitation-operator
  changed=$(find src confluent-client/src confluent-client/Cargo.toml Cargo.toml Cargo.lock -newer "$stamp" -type f | head -3)
  [ -z "$changed" ] && [ "$(source_state)" = "$before" ] && break
  [ "$attempt" = 4 ] && { echo "the sources keep changing during the build ($changed); try later" >&2; exit 1; }
  say "sources changed during the build ($changed): building again"
done
export BENCH_SOURCE="$before"
# `cargo bench` rebuilds target/release/confluent-invitation-operator with the dev-dependencies'
# features: measure a copy of the shipped build instead.
cp target/release/confluent-invitation-operator "$BENCH_DIR/confluent-invitation-operator"
cargo bench --locked --bench scale --no-run

say "starting etcd + kube-apiserver $("$K8S_BIN/kube-apiserver" --version | cut -d' ' -f2) on 127.0.0.1:$API_PORT"
"$LOCAL_DIR/start-control-plane.sh" "$K8S_BIN" "$BENCH_DIR" >&2
export KUBECONFIG="$BENCH_DIR/kubeconfig"

say "running the benchmark: cargo bench --bench scale -- ${args[*]}"
# The control plane is thrown away afterwards: no need to clean up between sizes.
BENCH_COMMAND="deploy/local/bench.sh $*" \
  cargo bench --locked --bench scale -- --no-cleanup \
  --operator "$BENCH_DIR/confluent-invitation-operator" "${args[@]}"

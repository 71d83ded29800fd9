#!/usr/bin/env bash
# Fails when a secret value shows up where the operator writes: its logs, Kubernetes Events (core
# and events.k8s.io), Invitations (status included) and, optionally, a /metrics scrape.
#
# usage: tests/secret-grep.sh [LOG_DIR] [METRICS_URL]
#   LOG_DIR       operator logs, searched recursively (default: target/tmp/e2e-logs, where the
#                 e2e harness writes one log per test namespace)
#   METRICS_URL   e.g. http://127.0.0.1:8080/metrics of a running operator (optional)
# env:
#   KUBECONFIG     the cluster the e2e suite ran against (required)
#   KUBECTL        kubectl to use (default: kubectl on PATH)
#   SECRET_VALUES  the values to look for, one per line (unset: the e2e suite's secrets)
#
# Keyless credentials' tokens are not known in advance, so two values are prefixes that find any
# of them: `cio-mock-sts-`, which starts every STS token the mock issues, and `eyJhbGciOi`, the
# base64url of `{"alg":`, which starts every JWT (the subject tokens the API server mints). The
# operator never has a reason to print either.
#
# Each value is looked for as is and base64-encoded (the form a Secret's `data` and a Basic
# `Authorization` header carry). A hit names the source (file:line, Event, Invitation, metrics)
# and the value's first characters only, and makes the script exit 1.
set -euo pipefail

LOG_DIR=${1:-target/tmp/e2e-logs}
METRICS_URL=${2:-}
KUBECTL=${KUBECTL:-kubectl}
: "${KUBECONFIG:?set KUBECONFIG to the cluster the e2e suite ran against}"
export KUBECONFIG

DEFAULT_SECRETS='e2e-secret-5f1c0d8a-never-log-me
not-the-secret-9c2e
foreign-secret-71d4-must-stay-there
e2e-token-of-org-a-3e9f-never-log-me
e2e-token-of-org-b-81c2-never-log-me
e2e-second-secret-6d0a-never-log-me
cio-mock-sts-
eyJhbGciOi'
SECRET_VALUES=${SECRET_VALUES-$DEFAULT_SECRETS}

# the needles: every non-empty value, and its base64 form
NEEDLES=$(mktemp)
WORK=$(mktemp -d)
trap 'rm -rf "$NEEDLES" "$WORK"' EXIT
values=0
while IFS= read -r value; do
  [ -n "$value" ] || continue
  values=$((values + 1))
  {
    printf '%s\n' "$value"
    printf '%s' "$value" | base64 -w0
    printf '\n'
  } >> "$NEEDLES"
done <<< "$SECRET_VALUES"
[ "$values" -gt 0 ] || { echo "secret-grep: SECRET_VALUES holds no value"; exit 2; }

found=0
# hit SOURCE NEEDLE: report without printing the value
hit() {
  echo "SECRET FOUND in $1: ${2:0:6}… (a secret value or its base64)"
  found=1
}

# 1. operator logs, line by line (one pass over every file)
[ -d "$LOG_DIR" ] || { echo "secret-grep: no log directory $LOG_DIR"; exit 2; }
log_files=$(find "$LOG_DIR" -type f | wc -l)
log_lines=$(find "$LOG_DIR" -type f -exec cat {} + | wc -l)
while IFS= read -r match; do
  # FILE:LINE:NEEDLE (the harness's log names hold no colon)
  hit "${match%%:*}:$(cut -d: -f2 <<< "$match")" "${match#*:*:}"
done < <(grep -rnoF -f "$NEEDLES" "$LOG_DIR" | head -50 || true)
[ "$log_files" -gt 0 ] || { echo "secret-grep: $LOG_DIR holds no log"; exit 2; }

# 2. JSON sources from the API server; each object that holds a needle is named
search_json() { # NAME FILE
  python3 - "$1" "$2" "$NEEDLES" <<'PY'
import json, sys
name, path, needles = sys.argv[1], sys.argv[2], [n for n in open(sys.argv[3]).read().split("\n") if n]
items = json.load(open(path)).get("items", [])
hits = 0
for item in items:
    text = json.dumps(item, ensure_ascii=False)
    for n in needles:
        if n in text:
            meta = item.get("metadata", {})
            print(f"SECRET FOUND in {name} {meta.get('namespace', '')}/{meta.get('name', '')}: {n[:6]}… (a secret value or its base64)")
            hits += 1
print(f"checked {len(items)} {name}", file=sys.stderr)
sys.exit(1 if hits else 0)
PY
}
for source in "events:core Events" "events.events.k8s.io:events.k8s.io Events" "invitations.iam.ccloud.dev:Invitations"; do
  resource=${source%%:*}
  name=${source#*:}
  if ! "$KUBECTL" get "$resource" -A -o json > "$WORK/objects.json" 2> "$WORK/err"; then
    echo "secret-grep: cannot list $name: $(cat "$WORK/err")"
    exit 2
  fi
  search_json "$name" "$WORK/objects.json" 2> "$WORK/checked" || found=1
  checked=$(cat "$WORK/checked")
  echo "secret-grep: $checked"
done

# 3. a /metrics scrape
if [ -n "$METRICS_URL" ]; then
  if ! curl -fsS --max-time 10 "$METRICS_URL" > "$WORK/metrics"; then
    echo "secret-grep: cannot scrape $METRICS_URL"
    exit 2
  fi
  while IFS= read -r needle; do
    if grep -qF -- "$needle" "$WORK/metrics"; then hit "metrics $METRICS_URL" "$needle"; fi
  done < "$NEEDLES"
  echo "secret-grep: checked $(wc -l < "$WORK/metrics") metrics lines from $METRICS_URL"
fi

echo "secret-grep: checked $log_lines log lines in $log_files files under $LOG_DIR, for $values secret values (and their base64)"
if [ "$found" -ne 0 ]; then
  echo "secret-grep: FAILED: a secret value was found (see above)"
  exit 1
fi
echo "secret-grep: no secret value found"

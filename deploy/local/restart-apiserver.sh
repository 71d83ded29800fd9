#!/usr/bin/env bash
# Restart the kube-apiserver of a control plane started by start-control-plane.sh, with exactly
# the flags it was started with (WORKDIR/apiserver.cmd). etcd keeps running, so every object
# survives; clients see the API server go away and come back on the same address and certificate.
# usage: restart-apiserver.sh WORKDIR [SIGNAL]   (SIGNAL: TERM by default, KILL after 5 s; or KILL)
set -euo pipefail
W=${1:?workdir}; SIG=${2:-TERM}
W=$(cd "$W" && pwd)
[ -f "$W/apiserver.cmd" ] || { echo "no $W/apiserver.cmd: start the control plane with start-control-plane.sh" >&2; exit 1; }
eval "CMD=($(cat "$W/apiserver.cmd"))"
PORT=""; for ((i = 0; i < ${#CMD[@]} - 1; i++)); do
  [ "${CMD[i]}" = "--secure-port" ] && PORT=${CMD[i+1]}
done
[ -n "$PORT" ] || { echo "no --secure-port in $W/apiserver.cmd" >&2; exit 1; }
TOKEN=$(cut -d, -f1 "$W/tokens.csv" | head -1)
ready() { curl -sk -m 2 -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$PORT/readyz" 2>/dev/null | grep -q '^ok$'; }

if [ -f "$W/apiserver.pid" ]; then
  PID=$(cat "$W/apiserver.pid")
  if kill -0 "$PID" 2>/dev/null; then
    kill -"$SIG" "$PID"
    # not our child: poll until it is gone; a 1.20 apiserver can linger ~20 s draining watches
    for _ in $(seq 1 25); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$PID" 2>/dev/null; then
      kill -KILL "$PID" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
    fi
  fi
fi
echo "---- restarted $(date -u +%FT%TZ) ----" >> "$W/apiserver.log"
# its own session, like the original (started by a script that has since exited): a Ctrl-C aimed
# at whoever called this script must not take the API server down
setsid "${CMD[@]}" >> "$W/apiserver.log" 2>&1 < /dev/null & echo $! > "$W/apiserver.pid"
for _ in $(seq 1 120); do ready && break; sleep 0.5; done
ready || { echo "apiserver not ready after restart"; tail -20 "$W/apiserver.log"; exit 1; }
echo "apiserver restarted: pid $(cat "$W/apiserver.pid"), https://127.0.0.1:$PORT"

#!/usr/bin/env bash
# Re-embeds health.lua into argocd-cm-patch.yaml after an edit of health.lua (the ConfigMap is what
# users apply; health.lua is what tests/manifests/argocd_health_test.lua runs). Keeps the header.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python3 - "$here/health.lua" "$here/argocd-cm-patch.yaml" <<'PY'
import sys
lua_path, cm_path = sys.argv[1], sys.argv[2]
lua = open(lua_path).read()
key = "  resource.customizations.health.iam.ccloud.dev_Invitation: |\n"
cm = open(cm_path).read()
head = cm[: cm.index(key) + len(key)]
# Blank lines stay empty (no trailing spaces); every other line is indented into the block scalar.
body = "".join(("    " + line) if line.strip() else line for line in lua.splitlines(True))
open(cm_path, "w").write(head + body)
PY

#!/usr/bin/env bash
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# One command on a fresh machine: set up, start the bundled Defender/Entra emulator over HTTPS,
# and run the main job (demo/missing_kbs.yml: a missing-KB query) against it.
# Extra arguments go to ansible-playbook (e.g. -v). The emulator stops when the script ends.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${DEFENDER_TVM_VENV:-$ROOT/.venv}"

"$ROOT/scripts/setup.sh"
COLLECTIONS="$ROOT/.work/collections"
"$VENV/bin/python" "$ROOT/scripts/layout.py" "$COLLECTIONS" >/dev/null

STATE="$ROOT/.work/emulator"
mkdir -p "$STATE"
rm -f "$STATE/emulator.json"
PYTHONPATH="$ROOT/tests/emulator" "$VENV/bin/python" -m mde_emulator --state-dir "$STATE" --latency-ms 80 \
    > "$STATE/stdout.log" 2> "$STATE/stderr.log" &
EMULATOR_PID=$!
trap 'kill "$EMULATOR_PID" 2>/dev/null || true' EXIT
# The emulator prints one JSON line once it listens; wait for it (bounded).
for _ in $(seq 1 300); do
    [ -s "$STATE/stdout.log" ] && break
    kill -0 "$EMULATOR_PID" 2>/dev/null || { cat "$STATE/stderr.log" >&2; exit 1; }
    sleep 0.1
done

# The emulator's "secret" app, as a real tenant's app would be configured (see README).
eval "$("$VENV/bin/python" - "$STATE/stdout.log" <<'PY'
import json, shlex, sys
info = json.loads(open(sys.argv[1]).readline())
app = info['clients']['secret']
for name, value in (('MDE_TENANT_ID', info['tenant_id']), ('MDE_CLIENT_ID', app['client_id']),
                    ('MDE_CLIENT_SECRET', app['client_secret']), ('MDE_API_URL', info['url']),
                    ('MDE_AUTHORITY_URL', info['url']), ('MDE_CA_PATH', info['ca_path'])):
    print('export %s=%s' % (name, shlex.quote(value)))
PY
)"
echo "Defender/Entra emulator at $MDE_API_URL (emulated data, not a real tenant)"
ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS" ANSIBLE_PYTHON_INTERPRETER="$VENV/bin/python" \
ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0 \
    "$VENV/bin/ansible-playbook" -i localhost, -c local "$ROOT/demo/missing_kbs.yml" "$@"

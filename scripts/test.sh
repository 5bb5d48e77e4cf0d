#!/usr/bin/env bash
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The whole test suite, as CI runs it: set up, then ansible-test sanity, ansible-lint, then pytest over the
# unit tests, the emulator's own tests and the integration tests (real ansible-playbook runs
# against the emulator). Extra arguments go to pytest, e.g. scripts/test.sh -k lookup.
# SKIP_SANITY=1 / SKIP_LINT=1 skip those steps for a quicker local loop.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${DEFENDER_TVM_VENV:-$ROOT/.venv}"

"$ROOT/scripts/setup.sh"
export PATH="$VENV/bin:$PATH"

# ansible-test and the collection loader need .../ansible_collections/defender/tvm.
COLLECTIONS="$ROOT/.work/collections"
LAYOUT="$("$VENV/bin/python" "$ROOT/scripts/layout.py" "$COLLECTIONS")"
cd "$LAYOUT"

if [ "${SKIP_SANITY:-0}" != "1" ]; then
    echo "== ansible-test sanity"
    ansible-test sanity --venv --python 3.11 --color no
fi

if [ "${SKIP_LINT:-0}" != "1" ]; then
    echo "== ansible-lint (production profile, offline) on the role, the playbooks and the demo"
    ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS:$ROOT/.work/ansible_windows" ansible-lint --nocolor roles playbooks demo
fi

echo "== pytest: unit, emulator and integration tests"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS"
# the real ansible.windows (extracted by setup.sh), for checking what the role passes to win_updates
export DEFENDER_TVM_WINDOWS_COLLECTION="$ROOT/.work/ansible_windows"
export ANSIBLE_CONTROLLER_MIN_PYTHON_VERSION=3.10
exec "$VENV/bin/python" -m pytest -p ansible_test._util.target.pytest.plugins.ansible_pytest_collections \
    -p no:cacheprovider --timeout 900 -ra tests/unit tests/emulator tests/integration "$@"

#!/usr/bin/env bash
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The whole test suite, as CI runs it. First the version matrix: ansible-test sanity, the unit
# and the integration tests on ansible-core 2.16 (the oldest supported, Python 3.11) and 2.21
# (Python 3.12, where such an interpreter exists). Then the default ansible-core (2.19 on
# Python 3.11): sanity, ansible-lint, the docs site, and pytest over the unit tests, the emulator's own tests,
# the integration tests (real ansible-playbook runs against the emulator) and the packaging
# tests (tarball, execution environment, changelog).
#
# Extra arguments go to the last pytest run, e.g. scripts/test.sh -k lookup.
# Quicker local loops: SKIP_SANITY=1, SKIP_LINT=1, SKIP_DOCS=1, DEFENDER_TVM_MATRIX="" (no extra versions).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${DEFENDER_TVM_VENV:-$ROOT/.venv}"
MATRIX="${DEFENDER_TVM_MATRIX-2.16 2.21}"

# ansible-test and the collection loader need .../ansible_collections/defender/tvm. The mirror must
# live outside this repository: inside it (in the git-ignored .work/), ansible-test asks git which
# files to test, gets none, and skips every sanity test.
COLLECTIONS="${DEFENDER_TVM_LAYOUT:-${TMPDIR:-/tmp}/defender-tvm-$(id -u)-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)}"
export ANSIBLE_CONTROLLER_MIN_PYTHON_VERSION=3.10
# the real ansible.windows (extracted by setup.sh), for checking what the role passes to win_updates
export DEFENDER_TVM_WINDOWS_COLLECTION="$ROOT/.work/ansible_windows"

python_for() {
    # The interpreter for a matrix entry, or nothing when this machine has none. (pyenv puts shims
    # such as python3.12 on PATH that fail unless that version is selected: try them first.)
    local found=""
    case "$1" in
        2.16) command -v python3 ;;
        2.21) if python3.12 -c '' >/dev/null 2>&1; then
                  command -v python3.12
                  return
              fi
              for candidate in "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12*/bin/python3.12; do
                  if [ -x "$candidate" ]; then found="$candidate"; fi
              done
              echo "$found" ;;
    esac
}

sanity() {  # venv, python version
    echo "== ansible-test sanity (ansible-core $("$1/bin/python" -c 'import ansible; print(ansible.__version__)'), Python $2)"
    (cd "$LAYOUT" && "$1/bin/ansible-test" sanity --venv --python "$2" --color no)
}

pytest_run() {  # venv, then pytest arguments
    local venv="$1"
    shift
    (cd "$LAYOUT" && ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS" PATH="$venv/bin:$PATH" \
        "$venv/bin/python" -m pytest -p ansible_test._util.target.pytest.plugins.ansible_pytest_collections \
        -p no:cacheprovider --timeout 900 -ra "$@")
}

"$ROOT/scripts/setup.sh"
LAYOUT="$("$VENV/bin/python" "$ROOT/scripts/layout.py" "$COLLECTIONS")"

for version in $MATRIX; do
    case "$version" in
        2.16) spec="==2.16.*" ;;
        2.21) spec="==2.21.*" ;;
        *) echo "unknown matrix entry $version" >&2; exit 2 ;;
    esac
    interpreter="$(python_for "$version")"
    if [ -z "$interpreter" ]; then
        echo "== ansible-core $version: SKIPPED, no suitable Python interpreter on this machine"
        continue
    fi
    pyversion="$("$interpreter" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    matrix_venv="$ROOT/.work/venv-$version"
    echo "== ansible-core $version on Python $pyversion ($interpreter)"
    DEFENDER_TVM_VENV="$matrix_venv" PYTHON="$interpreter" DEFENDER_TVM_ANSIBLE_CORE="$spec" "$ROOT/scripts/setup.sh"
    if [ "${SKIP_SANITY:-0}" != "1" ]; then
        sanity "$matrix_venv" "$pyversion"
    fi
    pytest_run "$matrix_venv" tests/unit tests/integration
done
if [ -z "$MATRIX" ]; then
    echo "== version matrix: SKIPPED (DEFENDER_TVM_MATRIX is empty)"
fi

if [ "${SKIP_SANITY:-0}" != "1" ]; then
    sanity "$VENV" 3.11
fi

if [ "${SKIP_LINT:-0}" != "1" ]; then
    # The collection root, as galaxy-importer and users lint it (plugin docs sidecars included).
    echo "== ansible-lint (production profile, offline) on the collection root"
    (cd "$LAYOUT" && ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS:$ROOT/.work/ansible_windows" \
        "$VENV/bin/ansible-lint" --nocolor)
fi

if [ "${SKIP_DOCS:-0}" != "1" ]; then
    echo "== docs: antsibull-docs lint-collection-docs --plugin-docs, and the site built offline"
    DEFENDER_TVM_VENV="$VENV" "$ROOT/scripts/build-docs.sh"
fi

echo "== pytest (ansible-core $("$VENV/bin/python" -c 'import ansible; print(ansible.__version__)')): unit, emulator, integration and packaging tests"
pytest_run "$VENV" tests/unit tests/emulator tests/integration tests/packaging "$@"

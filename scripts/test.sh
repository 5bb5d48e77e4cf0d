#!/usr/bin/env bash
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The whole test suite, as CI runs it. First the version matrix, ansible-core 2.16 (the oldest
# supported, Python 3.11) and 2.21 (Python 3.12, where such an interpreter exists): ansible-test
# sanity, the unit tests and the representative integration tests (the modules marked
# `representative`, see tests/conftest.py: each plugin type end to end). Then the default
# ansible-core (2.19 on Python 3.11): sanity, ansible-lint, the docs site, the growth check (no step
# of the data path grows faster than n log n: tests/growth/README.md), and pytest over the unit
# tests, the emulator's own tests, all the integration tests (real ansible-playbook runs against the
# emulator; the soak and the browser test, marked `once`, run only here) and the packaging tests
# (tarball, execution environment, changelog).
# The integration tests run on pytest-xdist workers, each with its own emulator. The run ends with
# the time of each stage and names the stage that failed; a failed stage ends and fails the run.
# (The stages run one after the other: on 2 cores the tests keep both busy, and running the static
# checks beside them measured no faster.)
#
# Extra arguments go to the last pytest run, e.g. scripts/test.sh -k lookup.
# Quicker local loops: SKIP_SANITY=1, SKIP_LINT=1, SKIP_DOCS=1, SKIP_GROWTH=1, DEFENDER_TVM_MATRIX="" (no extra versions).
# DEFENDER_TVM_JOBS: pytest-xdist workers for the matrix versions' integration tests (default: one per
# CPU; 0: no xdist, one process). The default version's run gets one more: its soak and pacing tests
# mostly wait (on 2 cores, 3 workers take 2m40 there, 2 take 4m).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${DEFENDER_TVM_VENV:-$ROOT/.venv}"
MATRIX="${DEFENDER_TVM_MATRIX-2.16 2.21}"
JOBS="${DEFENDER_TVM_JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}"

# ansible-test and the collection loader need .../ansible_collections/defender/tvm. The mirror must
# live outside this repository: inside it (in the git-ignored .work/), ansible-test asks git which
# files to test, gets none, and skips every sanity test.
COLLECTIONS="${DEFENDER_TVM_LAYOUT:-${TMPDIR:-/tmp}/defender-tvm-$(id -u)-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)}"
export ANSIBLE_CONTROLLER_MIN_PYTHON_VERSION=3.10
# the real ansible.windows (extracted by setup.sh), for checking what the role passes to win_updates
export DEFENDER_TVM_WINDOWS_COLLECTION="$ROOT/.work/ansible_windows"

# Stage bookkeeping: each stage appends "name<TAB>seconds<TAB>status" here; the summary prints it
# when the script exits, however it exits.
STAGES="$(mktemp "${TMPDIR:-/tmp}/defender-tvm-stages.XXXXXX")"
RUN_STARTED=$SECONDS

summary() {
    local rc=$? name seconds status failed=""
    trap - EXIT
    echo
    echo "== stage times"
    while IFS=$'\t' read -r name seconds status; do
        printf '%5d s  %-6s  %s\n' "$seconds" "$status" "$name"
        if [ "$status" = "FAILED" ]; then
            failed="$name"
        fi
    done < "$STAGES"
    printf '%5d s  %-6s  %s\n' "$((SECONDS - RUN_STARTED))" "" "total"
    rm -f "$STAGES"
    if [ "$rc" != "0" ]; then
        echo "== FAILED${failed:+ in stage \"$failed\"} (exit status $rc)"
    fi
    exit "$rc"
}
trap summary EXIT

stage() {  # name, then the command (a function or a program) to time
    local name="$1" started=$SECONDS rc=0
    shift
    echo "== $name"
    # In the background and waited for: a `cmd || rc=$?` would switch off errexit inside the
    # command's functions, so a failing step would not end its stage.
    "$@" &
    wait "$!" || rc=$?
    if [ "$rc" = "0" ]; then
        printf '%s\t%s\t%s\n' "$name" "$((SECONDS - started))" "ok" >> "$STAGES"
    else
        printf '%s\t%s\t%s\n' "$name" "$((SECONDS - started))" "FAILED" >> "$STAGES"
    fi
    return "$rc"
}

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

core_version() {  # venv
    "$1/bin/python" -c 'import ansible; print(ansible.__version__)'
}

sanity() {  # venv, python version
    (cd "$LAYOUT" && "$1/bin/ansible-test" sanity --venv --python "$2" --color no)
}

lint() {
    # The collection root, as galaxy-importer and users lint it (plugin docs sidecars included).
    (cd "$LAYOUT" && ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS:$ROOT/.work/ansible_windows" \
        "$VENV/bin/ansible-lint" --nocolor)
}

pytest_run() {  # venv, then pytest arguments
    local venv="$1"
    shift
    (cd "$LAYOUT" && ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS" PATH="$venv/bin:$PATH" \
        "$venv/bin/python" -m pytest -p ansible_test._util.target.pytest.plugins.ansible_pytest_collections \
        -p no:cacheprovider --strict-markers --timeout 900 -ra "$@")
}

# (--strict-markers: a misspelt marker is an error, not a module silently left out of the matrix.)
# pytest-xdist arguments: JOBS workers (one more for the default version), each test handed to
# whichever worker is free.
xdist=()
xdist_default=()
if [ "$JOBS" != "0" ]; then
    xdist=(-n "$JOBS" --dist worksteal)
    xdist_default=(-n "$((JOBS + 1))" --dist worksteal)
fi

stage "setup (default venv)" "$ROOT/scripts/setup.sh"
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
    stage "$version: setup (Python $pyversion, $interpreter)" env DEFENDER_TVM_VENV="$matrix_venv" \
        PYTHON="$interpreter" DEFENDER_TVM_ANSIBLE_CORE="$spec" "$ROOT/scripts/setup.sh"
    core="$(core_version "$matrix_venv")"
    if [ "${SKIP_SANITY:-0}" != "1" ]; then
        stage "$version: ansible-test sanity (ansible-core $core, Python $pyversion)" sanity "$matrix_venv" "$pyversion"
    fi
    stage "$version: pytest unit tests" pytest_run "$matrix_venv" tests/unit
    stage "$version: pytest representative integration tests" pytest_run "$matrix_venv" "${xdist[@]}" \
        -m "representative and not once" tests/integration
done
if [ -z "$MATRIX" ]; then
    echo "== version matrix: SKIPPED (DEFENDER_TVM_MATRIX is empty)"
fi

core="$(core_version "$VENV")"
if [ "${SKIP_SANITY:-0}" != "1" ]; then
    stage "default: ansible-test sanity (ansible-core $core, Python 3.11)" sanity "$VENV" 3.11
fi

if [ "${SKIP_LINT:-0}" != "1" ]; then
    stage "default: ansible-lint (production profile, offline) on the collection root" lint
fi

if [ "${SKIP_DOCS:-0}" != "1" ]; then
    stage "default: docs (antsibull-docs lint-collection-docs --plugin-docs, the site built offline)" \
        env DEFENDER_TVM_VENV="$VENV" "$ROOT/scripts/build-docs.sh"
fi

if [ "${SKIP_GROWTH:-0}" != "1" ]; then
    # One pytest run of its own, without xdist: the fixture counts every target in one go.
    stage "default: growth check (callgrind instruction counts at n and 4n, tests/growth)" \
        pytest_run "$VENV" tests/growth
fi

stage "default: pytest unit, emulator, integration and packaging tests (ansible-core $core)" \
    pytest_run "$VENV" "${xdist_default[@]}" tests/unit tests/emulator tests/integration tests/packaging "$@"

#!/usr/bin/env bash
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Set up everything the demo and the tests need, from the package registries only:
# a virtualenv in .venv with ansible-core, msal, requests and the test tools (ansible-rulebook among
# them, and the Java runtime it needs; valgrind and a C compiler for the growth check), and the
# offline get-pip stand-in that ansible-test needs for its sanity venvs.
# DEFENDER_TVM_VENV picks the venv, PYTHON its interpreter, and DEFENDER_TVM_ANSIBLE_CORE (a pip
# version spec such as "==2.16.*") makes a test-only venv with that ansible-core.
# Does nothing when everything is already there: pip runs only when the venv's stamp file
# (.defender-tvm-setup) does not hold the hash of the requirements files, the ansible-core spec and
# the venv's Python; DEFENDER_TVM_SETUP_FORCE=1 runs it anyway.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${DEFENDER_TVM_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.defender-tvm-setup"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
wanted="$( { cat "$ROOT/requirements.txt" "$ROOT/requirements-test.txt" "$ROOT/requirements-dev.txt"
             echo "ansible-core spec: ${DEFENDER_TVM_ANSIBLE_CORE:-from requirements-dev.txt}"
             "$VENV/bin/python" -c 'import sys; print(sys.version)'; } | cksum)"
if [ "${DEFENDER_TVM_SETUP_FORCE:-0}" != "1" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ]; then
    fresh=0
else
    fresh=1
    rm -f "$STAMP"   # stamped again only once pip has succeeded
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    if [ -n "${DEFENDER_TVM_ANSIBLE_CORE:-}" ]; then
        # a version-matrix venv: the test requirements and the ansible-core asked for
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements-test.txt" \
            "ansible-core$DEFENDER_TVM_ANSIBLE_CORE"
    else
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements-dev.txt"
    fi
    echo "$wanted" > "$STAMP"
fi

# ansible-test sanity lints the shell scripts with shellcheck when it is installed; install it
# where we can (CI runs as root on Debian), else the sanity run only warns.
if ! command -v shellcheck >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q shellcheck >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q shellcheck >/dev/null 2>&1; } \
        || echo "note: could not install shellcheck; sanity will skip it"
fi

# The growth check (tests/growth) counts instructions under valgrind's callgrind, with a marker
# library it compiles from C (valgrind's headers come with Debian's valgrind package). Install
# them where we can, as for shellcheck.
if { ! command -v valgrind >/dev/null 2>&1 || ! command -v cc >/dev/null 2>&1; } \
        && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q valgrind gcc >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q valgrind gcc >/dev/null 2>&1; } \
        || echo "note: could not install valgrind and gcc; the growth check will fail and say why"
fi

# ansible-rulebook (requirements-test.txt, for the EDA integration test) runs Drools in a JVM that it
# loads through jpy, and wants Java 17+. Debian's headless JRE is enough (no JDK), and JAVA_HOME need
# not be set: ansible-rulebook asks the `java` on PATH for its java.home (a JAVA_HOME that is set
# wins, so it must then name a Java 17+). Install it where we can, as for shellcheck.
if ! command -v java >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q openjdk-17-jre-headless >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q openjdk-17-jre-headless >/dev/null 2>&1; } \
        || echo "note: could not install openjdk-17-jre-headless; ansible-rulebook (the EDA test) will fail"
fi

# The report test renders the HTML report in headless Chromium (Debian's chromium + chromedriver);
# only the default venv runs it (install-browser.sh does nothing when the browser is there).
if [ -z "${DEFENDER_TVM_ANSIBLE_CORE:-}" ]; then
    "$ROOT/scripts/install-browser.sh" || echo "note: no headless Chromium; the browser test will fail and say why"
fi

mkdir -p "$HOME/.ansible/test/cache"
for version in 23_1_2 24_2 25_2; do  # ansible-core 2.16, 2.17-2.19, 2.20+
    if ! cmp -s "$ROOT/scripts/get_pip_offline.py" "$HOME/.ansible/test/cache/get_pip_$version.py"; then
        cp "$ROOT/scripts/get_pip_offline.py" "$HOME/.ansible/test/cache/get_pip_$version.py"
    fi
done
# ansible.windows (for win_updates' argument spec, ansible-doc and lint): Galaxy is out of reach,
# but the `ansible` package on PyPI bundles it. Extract just that collection, from a pinned release.
ANSIBLE_PACKAGE="ansible==12.3.0"   # bundles ansible.windows 3.3.0
WINDOWS_COLLECTIONS="$ROOT/.work/ansible_windows"
if [ ! -f "$WINDOWS_COLLECTIONS/ansible_collections/ansible/windows/MANIFEST.json" ]; then
    rm -rf "$ROOT/.work/wheel" "$WINDOWS_COLLECTIONS"
    "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps -d "$ROOT/.work/wheel" "$ANSIBLE_PACKAGE"
    "$VENV/bin/python" - "$ROOT/.work/wheel" "$WINDOWS_COLLECTIONS" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + '/ansible-*.whl')[0]
with zipfile.ZipFile(wheel) as archive:
    archive.extractall(sys.argv[2], [n for n in archive.namelist() if n.startswith('ansible_collections/ansible/windows/')])
PY
    rm -rf "$ROOT/.work/wheel"
fi

if [ "$fresh" = "1" ]; then
    "$VENV/bin/python" -c "import ansible, msal, requests; from importlib.metadata import version; print('ready: ansible-core', ansible.__version__, '- msal', msal.__version__, '- requests', requests.__version__, '- ansible-rulebook', version('ansible-rulebook'))"
else
    echo "ready: $VENV is complete (requirements unchanged since its last setup), nothing installed"
fi

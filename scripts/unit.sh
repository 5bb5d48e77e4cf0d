#!/usr/bin/env bash
# quick dev loop for unit tests (the real entry point is scripts/test.sh)
set -e
cd "$(dirname "$0")/.."
L=$(/work/venv/bin/python scripts/layout.py /tmp/lay)
export DEFENDER_TVM_WINDOWS_COLLECTION="$PWD/.work/ansible_windows"
cd "$L"
exec timeout "${UNIT_TIMEOUT:-300}" env ANSIBLE_COLLECTIONS_PATH=/tmp/lay ANSIBLE_CONTROLLER_MIN_PYTHON_VERSION=3.10 /work/venv/bin/python -m pytest -p ansible_test._util.target.pytest.plugins.ansible_pytest_collections -p no:cacheprovider "$@"

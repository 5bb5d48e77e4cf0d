#!/usr/bin/env bash
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The benchmark, in one command on a fresh machine: set up (scripts/setup.sh), then run the
# harness (benchmarks/run.py) with the virtualenv. It starts the Defender/Entra emulator on
# 127.0.0.1 and runs everything against it; nothing else is contacted. Extra arguments go to the
# harness, e.g. benchmarks/run.sh --quick (a few minutes) or --scenarios main --sizes 100.
# Results: printed tables, and JSON under benchmarks/results/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${DEFENDER_TVM_VENV:-$ROOT/.venv}"

"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "$VENV/bin/python" "$ROOT/benchmarks/run.py" "$@"

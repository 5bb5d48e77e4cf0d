/*
 * Copyright (c) defender.tvm contributors
 * GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Callgrind's client requests for run_targets.py (loaded with ctypes): Python cannot issue them
 * itself. Valgrind runs with --instr-atstart=no, so the interpreter's start and the imports run
 * uninstrumented (several times faster); each measured step is counted alone, and its count is
 * dumped under the step's label.
 */
#include <valgrind/callgrind.h>

void growth_start(void)
{
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_ZERO_STATS;
}

void growth_stop(const char *label)
{
    CALLGRIND_DUMP_STATS_AT(label);
    CALLGRIND_STOP_INSTRUMENTATION;
}

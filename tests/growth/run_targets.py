# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the growth targets under callgrind, each step counted alone (test_growth.py starts it).

``python run_targets.py MARKERS_LIBRARY [TARGET NAME ...]`` (default: every target and canary).
For each target and each of its sizes: build the inputs, then count only the step: the markers
library (callgrind_markers.c) switches callgrind's instrumentation on before the call and dumps
the count, labelled ``<target name>|<n>``, after it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import gc
import sys

from ansible_collections.defender.tvm.tests.growth.targets import CANARIES, TARGETS

# Each step runs once on a few items first, uncounted: what a first call does once (a regular
# expression compiled, a cache filled) must not count as work per item.
WARM_UP = 20


def label(target, n):
    return '%s|%d' % (target.name, n)


def main(argv):
    markers = ctypes.CDLL(argv[1])
    markers.growth_stop.argtypes = [ctypes.c_char_p]
    wanted = set(argv[2:])
    # The cyclic garbage collector runs when the whole process has allocated enough, so its work
    # depends on everything alive, not on the step counted: off for the whole run (the inputs and
    # results are freed by their reference counts).
    gc.disable()
    for target in CANARIES + TARGETS:
        if wanted and target.name not in wanted:
            continue
        target.step(*target.inputs(WARM_UP))
        for n in target.sizes:
            inputs = target.inputs(n)
            markers.growth_start()
            result = target.step(*inputs)
            markers.growth_stop(label(target, n).encode('utf-8'))
            del result, inputs  # freed outside the count (a result can be as large as the step's work)


if __name__ == '__main__':
    main(sys.argv)

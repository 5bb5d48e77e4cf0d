# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""No step of the data path grows faster than n log n in its names, hosts, KBs or records.

Numbers of hosts, device names, IDs and KBs reach the 100,000s, where a quadratic step (an ``in``
on a list per item) takes minutes. The check counts work instead of timing it: the CPU
instructions of each step of targets.py under valgrind's callgrind, at n and 4n items (README.md). Instruction counts do not depend on the machine's load,
and C-level work (the scan of ``x in list``) counts too, which a Python tracer would not see.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import math
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.defender.tvm.tests.growth.targets import CANARIES, TARGETS

HERE = os.path.dirname(os.path.abspath(__file__))
# The directory that holds ansible_collections/defender/tvm: the runner imports the collection from it.
COLLECTIONS = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..', '..'))
# A ratio of counts at n and k*n is k**exponent: 1 for linear, about 1.15 for n log n (k = 4 from
# 400), 2 for quadratic. Above 1.3 (k = 4: 6.1 times the count for 4 times the items), the step is
# clearly super-linear: its quadratic part is at least a fifth of its linear part at n.
MAX_EXPONENT = 1.3


def _need(program, package):
    if shutil.which(program) is None:
        pytest.fail('the growth check needs %s (Debian: apt-get install %s; scripts/setup.sh installs it when run as root)'
                    % (program, package))


def _run_callgrind(workdir):
    """{(target name, n): instructions} of every target and canary: the targets shared out over one
    valgrind run per CPU (each run counts its own steps; the runs only share the wall time)."""
    _need('valgrind', 'valgrind')
    _need('cc', 'gcc')
    markers = os.path.join(workdir, 'libcallgrind_markers.so')
    subprocess.run(['cc', '-O2', '-shared', '-fPIC', '-o', markers, os.path.join(HERE, 'callgrind_markers.c')], check=True)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, PYTHONHASHSEED='0', PYTHONDONTWRITEBYTECODE='1')
    names = [target.name for target in CANARIES + TARGETS]
    jobs = max(1, min(len(os.sched_getaffinity(0)), 4))
    runs = []
    for job in range(jobs):
        log = os.path.join(workdir, 'valgrind-%d.log' % job)
        command = ['valgrind', '--tool=callgrind', '--instr-atstart=no', '--dump-instr=no', '--dump-line=no',
                   '--callgrind-out-file=%s' % os.path.join(workdir, 'callgrind.out.%p'), '--log-file=%s' % log,
                   sys.executable, os.path.join(HERE, 'run_targets.py'), markers] + names[job::jobs]
        runs.append((command, log, subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                    universal_newlines=True)))
    outputs = [run.communicate()[0] for dummy, dummy2, run in runs]  # every run ended before any failure is told
    for (command, log, run), output in zip(runs, outputs):
        if run.returncode != 0:
            with open(log) as handle:
                pytest.fail('valgrind failed (%d): %s\n%s\n%s' % (run.returncode, ' '.join(command), output, handle.read()[-4000:]))
    return _read_dumps(os.path.join(workdir, 'callgrind.out.*'))


def _read_dumps(pattern):
    """Each dump's label (``desc: Trigger: Client Request: <name>|<n>``) and its instruction total."""
    counts = {}
    for path in glob.glob(pattern):
        label = total = None
        with open(path) as handle:
            for line in handle:
                if line.startswith('desc: Trigger: Client Request: '):
                    label = line[len('desc: Trigger: Client Request: '):].rstrip('\n')
                elif line.startswith('summary: '):
                    total = int(line.split()[1])
        if label is not None:  # the dump at exit has no label
            name, n = label.rsplit('|', 1)
            counts[(name, int(n))] = total
    return counts


@pytest.fixture(scope='module')
def counts(tmp_path_factory):
    return _run_callgrind(str(tmp_path_factory.mktemp('growth')))


def growth(counts, target):
    """(exponent, message) of the target's counts at its two sizes."""
    small, large = target.sizes
    at_small, at_large = counts[(target.name, small)], counts[(target.name, large)]
    factor = float(large) / small
    ratio = float(at_large) / at_small
    exponent = math.log(ratio) / math.log(factor)
    message = ('%s: %s instructions at n=%s, %s at n=%s: %.1f times for %g times the items (n^%.2f; linear ~%g, '
               'n log n ~%.1f, quadratic ~%g; the limit is n^%s)'
               % (target.name, '{:,}'.format(at_small), '{:,}'.format(small), '{:,}'.format(at_large), '{:,}'.format(large),
                  ratio, factor, exponent, factor, factor * math.log(large) / math.log(small), factor ** 2, MAX_EXPONENT))
    return exponent, message


def _param(target):
    marks = [pytest.mark.xfail(strict=True, reason='KNOWN QUADRATIC, to be fixed: ' + target.known_quadratic)] if target.known_quadratic else []
    return pytest.param(target, id=target.name, marks=marks)


@pytest.mark.parametrize('target', [_param(target) for target in TARGETS])
def test_step_grows_at_most_n_log_n(counts, target):
    exponent, message = growth(counts, target)
    print(message)
    assert exponent <= MAX_EXPONENT, 'super-linear growth: ' + message


def test_the_check_flags_a_quadratic_step_and_passes_a_linear_one(counts):
    """The canaries: the old clean_ids (a list scanned per ID, work done in C) and the same with a set."""
    quadratic, linear = CANARIES
    exponent, message = growth(counts, quadratic)
    assert exponent > 1.8, 'a list scanned per item should count as quadratic: ' + message
    exponent, message = growth(counts, linear)
    assert exponent <= 1.1, 'a set per item should count as linear: ' + message


def test_every_step_was_counted(counts):
    """Each target and canary once at each of its sizes, each count above zero (instrumentation was on)."""
    expected = set((target.name, n) for target in CANARIES + TARGETS for n in target.sizes)
    assert set(counts) == expected
    assert all(count > 0 for count in counts.values())
    assert len(set(target.name for target in CANARIES + TARGETS)) == len(CANARIES + TARGETS), 'target names must differ'

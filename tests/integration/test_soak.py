# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Soak: 1,000 software IDs in one module run, through every transient fault at once.

Random latency, 10% 429 with Retry-After, 5% 503, paged answers and one token revocation in the
middle of the run: every KB of every ID must come back exactly once, as the emulator's own data
has it, with no error, within the time bound. The faults are drawn from a seeded RNG, so a
failure reproduces (up to the order in which concurrent requests arrive).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import time

import pytest

from ansible_collections.defender.tvm.tests.integration.harness import Ansible
from ansible_collections.defender.tvm.tests.integration.helpers import expected_records, synthetic_software

from mde_emulator import Emulator  # on sys.path through harness.py

pytestmark = pytest.mark.once

SEED = 20240213
IDS = 1000
FAULTS = dict(
    latency_ms=20, latency_jitter_ms=20,             # 0-40 ms per call
    error_rate_429=0.10, retry_after_s=1,            # 10% throttled, Retry-After: 1
    error_rate_5xx=0.05, error_statuses_5xx=[503],   # 5% unavailable
    page_size=2,                                     # 1-5 KBs per ID: answers of 3 or more KBs are paged
    revoke_after_api_requests=600,                   # every token revoked mid-run (about 1,500 calls in all)
)
# Unpaced: the emulator has no call budget here. 16 workers keep the run short although every 429
# holds all of them for its Retry-After. 10 retries: the chance that one call fails 11 times in a
# row (15% each) is about 1e-9.
OPTIONS = {'mde_requests_per_minute': 0, 'mde_max_retries': 10, 'mde_max_concurrency': 16}


@pytest.fixture(scope='module')
def soak_emulator(tmp_path_factory):
    with Emulator(str(tmp_path_factory.mktemp('soak-emulator')), seed=SEED, extra_software=IDS, **FAULTS) as emu:
        yield emu


@pytest.mark.timeout(240)  # the bound of the whole run: about 60-120 s on a 2-core machine
def test_a_thousand_ids_through_every_fault_come_back_exactly_once(soak_emulator, tmp_path):
    emu = soak_emulator
    emu.reset()
    ids = synthetic_software(emu)
    assert len(ids) >= 1000
    started = time.monotonic()
    run = Ansible(emu, tmp_path).run('module', extra_vars=dict(OPTIONS, software_ids=ids))
    elapsed = time.monotonic() - started
    assert run.rc == 0, run
    assert run.result and not run.result.get('failed'), run
    assert 'Traceback' not in run.output, run

    # Every ID answered once, in order, with exactly its KBs: none lost to a fault, none twice
    # (a retried or paged request counted twice would show here).
    results = run.result['results']
    assert [r['software_id'] for r in results] == ids
    for entry in results:
        assert entry['missing_kbs'] == expected_records(emu.data['software'][entry['software_id']]['missing_kbs']), entry
    pairs = collections.Counter((r['software_id'], kb['id']) for r in results for kb in r['missing_kbs'])
    assert set(pairs.values()) == {1}
    assert sum(pairs.values()) == sum(len(emu.data['software'][i]['missing_kbs']) for i in ids)
    assert run.result['not_found'] == []
    # Each KB once across all IDs too.
    aggregated = [kb['id'] for kb in run.result['missing_kbs']]
    assert len(aggregated) == len(set(aggregated)) == len(set(kb for dummy, kb in pairs))

    # The faults did happen, and were survived.
    stats = emu.stats()
    injected = stats['faults_injected']
    assert stats['status_counts'].get('429', 0) >= 50 and injected.get('error_rate_429', 0) >= 50, stats['status_counts']
    assert stats['status_counts'].get('503', 0) >= 20 and injected.get('error_rate_5xx', 0) >= 20, stats['status_counts']
    assert injected.get('revocation') == 1
    assert stats['status_counts'].get('401', 0) >= 1
    assert stats['token_requests'] == 2, 'one token, and one more after the revocation'
    paged = sum(1 for i in ids if len(emu.data['software'][i]['missing_kbs']) > FAULTS['page_size'])
    assert paged > 100
    assert stats['api_by_route']['software_missing_kbs'] >= IDS + paged
    print('soak: %d IDs, %d KB records, %d API calls (%s), %.1f s'
          % (len(ids), sum(pairs.values()), stats['api_requests'], stats['status_counts'], elapsed))

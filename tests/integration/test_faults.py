# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Each fault the emulator injects, survived (or reported clearly) by a real playbook run."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.defender.tvm.tests.integration.helpers import expected_records, synthetic_software

IDS = ('microsoft-_-windows_11', 'microsoft-_-windows_10', 'microsoft-_-office', 'microsoft-_-sql_server')
MISSING_KBS = r'/getmissingkbs'


def assert_complete(run, emulator, ids=IDS):
    assert run.rc == 0, run
    assert not run.result.get('failed'), run.result
    assert [r['software_id'] for r in run.result['results']] == list(ids)
    for entry in run.result['results']:
        assert entry['missing_kbs'] == expected_records(emulator.data['software'][entry['software_id']]['missing_kbs'])


def fail_next(status, count, **extra):
    entry = dict(path_regex=MISSING_KBS, status=status, count=count)
    entry.update(extra)
    return [entry]


def test_429_is_retried_after_retry_after(ansible, emulator):
    emulator.configure(fail_next=fail_next(429, 2, retry_after=1))
    assert_complete(ansible.run('module', extra_vars={'software_ids': list(IDS)}), emulator)
    assert emulator.stats()['status_counts']['429'] == 2


@pytest.mark.parametrize('status', [500, 502, 503, 504])
def test_transient_server_errors_are_retried(ansible, emulator, status):
    emulator.configure(fail_next=fail_next(status, 2))
    assert_complete(ansible.run('module', extra_vars={'software_ids': list(IDS)}), emulator)
    assert emulator.stats()['status_counts'][str(status)] == 2


def test_dropped_connections_are_retried(ansible, emulator):
    emulator.configure(drop_next=2)
    assert_complete(ansible.run('module', extra_vars={'software_ids': list(IDS)}), emulator)
    assert emulator.stats()['dropped'] == 2


def test_malformed_bodies_are_retried(ansible, emulator):
    emulator.configure(malformed_next=2)
    assert_complete(ansible.run('module', extra_vars={'software_ids': list(IDS)}), emulator)
    assert emulator.stats()['malformed'] == 2


@pytest.mark.parametrize('playbook', ['module', 'lookup'])
def test_retries_run_out_with_a_clear_message(ansible, emulator, playbook):
    emulator.configure(fail_next=fail_next(503, 50))
    run = ansible.run(playbook, extra_vars={'software_ids': list(IDS)[:1], 'terms': IDS[:1],
                                            'mde_max_retries': 2, 'lookup_kwargs': {'max_retries': 2}})
    assert run.result['failed'] is True
    assert 'HTTP 503' in run.result['msg'] and 'after 3 attempts' in run.result['msg']
    assert emulator.stats()['api_requests'] == 3


def test_paged_answers_are_followed_to_the_end(ansible, emulator):
    emulator.configure(page_size=1)
    assert_complete(ansible.run('module', extra_vars={'software_ids': list(IDS)}), emulator)
    total_kbs = sum(len(emulator.data['software'][i]['missing_kbs']) for i in IDS)
    assert emulator.stats()['api_by_route']['software_missing_kbs'] >= total_kbs


def test_paged_device_answers_too(ansible, emulator):
    machine = next(m for m in emulator.data['machines'].values() if len(m['missing_kbs']) > 2)
    emulator.configure(page_size=2)
    run = ansible.run('module', extra_vars={'machine_ids': [machine['computerDnsName']]})
    assert run.rc == 0, run
    assert run.result['results'][0]['missing_kbs'] == expected_records(machine['missing_kbs'])


def test_a_next_link_to_another_host_is_refused(ansible, emulator):
    emulator.configure(page_size=1, nextlink_base='https://attacker.example.invalid')
    run = ansible.run('module', extra_vars={'software_ids': list(IDS)[:1]})
    assert run.result['failed'] is True
    assert 'another host (attacker.example.invalid)' in run.result['msg']


def test_token_revoked_mid_run_is_replaced_once(ansible, emulator):
    emulator.configure(revoke_after_api_requests=3)
    assert_complete(ansible.run('module', extra_vars={'software_ids': list(IDS), 'mde_max_concurrency': 1}), emulator)
    stats = emulator.stats()
    assert stats['token_requests'] == 2
    assert stats['status_counts']['401'] == 1


def test_pacing_keeps_every_minute_under_the_servers_limit(ansible, emulator):
    """7 calls against a server limit of 6 per 60 s: the client waits instead of drawing 429s."""
    ids = synthetic_software(emulator)[:7]
    emulator.configure(rate_limit_per_minute=6)
    run = ansible.run('lookup', extra_vars={'terms': ids, 'lookup_kwargs': {'requests_per_minute': 6}})
    assert run.rc == 0, run
    assert [r['software_id'] for r in run.result['records']] == [
        sid for sid in ids for dummy in emulator.data['software'][sid]['missing_kbs']]
    stats = emulator.stats()
    assert stats.get('status_counts', {}).get('429', 0) == 0
    assert stats['max_in_any_60s'] <= 6
    assert stats['api_requests'] == 7


def test_a_slow_server_hits_the_timeout_with_a_clear_message(ansible, emulator):
    emulator.configure(latency_ms=3000)
    run = ansible.run('module', extra_vars={'software_ids': list(IDS)[:1], 'mde_timeout': 0.5, 'mde_max_retries': 1})
    assert run.result['failed'] is True
    assert 'did not answer within the timeout' in run.result['msg'] and 'after 2 attempts' in run.result['msg']
    assert emulator.stats()['api_requests'] == 2


@pytest.mark.parametrize('playbook', ['module', 'lookup'])
def test_a_throttled_run_says_so_once(ansible, emulator, playbook):
    emulator.configure(fail_next=fail_next(429, 2, retry_after=1))
    run = ansible.run(playbook, extra_vars={'software_ids': list(IDS), 'terms': list(IDS)})
    assert run.rc == 0 and not run.result.get('failed'), run
    warning = 'The Defender API throttled 2 requests (HTTP 429), waited 2.0 s in all and retried 2 times.'
    assert run.output.count(warning) == 1, run


def test_a_run_without_retries_says_nothing(ansible, emulator):
    run = ansible.run('module', extra_vars={'software_ids': list(IDS)})
    assert run.rc == 0 and 'throttled' not in run.output and 'retried' not in run.output, run

# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""defender.tvm.missing_kbs_info end to end: shapes, aggregation, devices, unknown IDs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

import pytest

from ansible_collections.defender.tvm.tests.integration.helpers import expected_records, kb_ids, synthetic_software

pytestmark = pytest.mark.representative

SOFTWARE = ['microsoft-_-windows_11', 'microsoft-_-.net_framework', 'notepad_plus_plus-_-notepad++',
            'microsoft-_-edge_chromium-based']


def test_software_query_returns_every_kb_once_with_its_sources(ansible, emulator):
    run = ansible.run('module', extra_vars={'software_ids': SOFTWARE})
    assert run.rc == 0, run
    answer = run.result
    assert answer['changed'] is False and not answer.get('failed')
    data = emulator.data['software']

    # results: one per ID, in input order, exactly the emulator's KBs
    assert [r['software_id'] for r in answer['results']] == SOFTWARE
    for entry in answer['results']:
        assert entry['missing_kbs'] == expected_records(data[entry['software_id']]['missing_kbs'])

    # missing_kbs: each KB once, with the software that reported it
    reported = {}
    for sid in SOFTWARE:
        for kb in data[sid]['missing_kbs']:
            reported.setdefault(kb['id'], []).append(sid)
    assert kb_ids(answer['missing_kbs']) == sorted(reported)
    assert any(len(owners) > 1 for owners in reported.values()), 'the data set must share a KB between software'
    for kb in answer['missing_kbs']:
        assert kb['software_ids'] == reported[kb['id']]
        assert kb['kb'] == 'KB' + kb['id'] and kb['id'].isdigit()
        assert set(kb) == {'id', 'kb', 'name', 'products_names', 'url', 'machine_missed_on', 'cve_addressed',
                           'software_ids'}
    cves = [kb['cve_addressed'] for kb in answer['missing_kbs']]
    assert cves == sorted(cves, reverse=True)

    # accept_list: one pattern per KB, same order, selecting exactly that KB in win_updates' match string
    assert answer['accept_list'] == [r'KB%s(?:\s+KB\d+)*$' % kb['id'] for kb in answer['missing_kbs']]
    for pattern, kb in zip(answer['accept_list'], answer['missing_kbs']):
        assert re.search(pattern, 'Update (%s)%s' % (kb['kb'], kb['kb']), re.IGNORECASE)
        assert not re.search(pattern, 'Update (%s1)%s1' % (kb['kb'], kb['kb']), re.IGNORECASE)
    assert answer['not_found'] == []

    stats = emulator.stats()
    assert stats['token_requests'] == 1
    assert stats['api_by_route']['software_missing_kbs'] == len(SOFTWARE)


def test_many_ids_share_one_token_run_concurrently_and_reuse_connections(ansible, emulator):
    ids = synthetic_software(emulator)[:40]
    assert len(ids) == 40
    emulator.configure(latency_ms=50)
    run = ansible.run('module', extra_vars={'software_ids': ids, 'mde_max_concurrency': 6})
    assert run.rc == 0, run
    assert [r['software_id'] for r in run.result['results']] == ids
    stats = emulator.stats()
    assert stats['token_requests'] == 1
    assert stats['api_requests'] == 40
    assert 1 < stats['max_concurrent'] <= 6
    # one pool: at most one connection per worker (plus the token endpoint's), not one per call
    assert stats['client_connections'] <= 6 + 1


def test_devices_by_id_and_by_name(ansible, emulator):
    machines = emulator.data['machines']
    with_kbs = [m for m in machines.values() if m['missing_kbs']]
    by_id, by_name = with_kbs[0], with_kbs[1]
    requested = [by_id['id'], by_name['computerDnsName'].upper()]
    run = ansible.run('module', extra_vars={'machine_ids': requested})
    assert run.rc == 0, run
    results = run.result['results']
    assert [r['machine_id'] for r in results] == [by_id['id'], by_name['id']]
    assert [r['requested'] for r in results] == requested
    assert results[0]['computer_dns_name'] is None
    assert results[1]['computer_dns_name'] == by_name['computerDnsName']
    for entry, machine in zip(results, (by_id, by_name)):
        assert entry['missing_kbs'] == expected_records(machine['missing_kbs'])
    for kb in run.result['missing_kbs']:
        owners = [m['id'] for m in (by_id, by_name) if kb['id'] in kb_ids(expected_records(m['missing_kbs']))]
        assert kb['machine_ids'] == owners
        assert kb['machine_missed_on'] == len(owners)
    stats = emulator.stats()
    # only the name needed resolving: one filtered listing, never GET /api/machines/{name} (which picks one
    # of the devices that share a name)
    assert stats['api_by_route']['machine_list'] == 1 and stats['api_by_route'].get('machine', 0) == 0
    assert stats['api_by_route']['machine_missing_kbs'] == 2


def test_unknown_ids_fail_the_task_naming_every_one(ansible, emulator):
    run = ansible.run('module', extra_vars={'software_ids': ['microsoft-_-windows_11', 'nobody-_-nothing',
                                                             'acme-_-ghost']})
    assert run.rc == 0, run  # the playbook rescues and saves the failure
    assert run.result['failed'] is True
    assert 'nobody-_-nothing' in run.result['msg'] and 'acme-_-ghost' in run.result['msg']
    assert 'ignore_unknown' in run.result['msg']


def test_ignore_unknown_lists_them_and_returns_the_rest(ansible, emulator):
    run = ansible.run('module', extra_vars={'machine_ids': ['no-such-host.contoso.local', 'f' * 40,
                                                            'ws-0001.contoso.local'],
                                            'ignore_unknown': True})
    assert run.rc == 0, run
    assert run.result['not_found'] == ['no-such-host.contoso.local', 'f' * 40]
    assert [r['requested'] for r in run.result['results']] == ['ws-0001.contoso.local']


def test_check_mode_reads_the_same(ansible):
    run = ansible.run('module', extra_vars={'software_ids': SOFTWARE[:1]}, check=True)
    assert run.rc == 0, run
    assert run.result['changed'] is False and run.result['results'][0]['software_id'] == SOFTWARE[0]


def test_module_defaults_group_sets_the_shared_options(ansible, emulator):
    app = emulator.clients['secret']
    run = ansible.run('module_defaults', env={}, extra_vars={
        'software_ids': SOFTWARE[:2], 'emu_tenant_id': emulator.tenant_id, 'emu_client_id': app['client_id'],
        'emu_client_secret': app['client_secret'], 'emu_url': emulator.url, 'emu_ca_path': emulator.ca_path})
    assert run.rc == 0, run
    assert [r['software_id'] for r in run.result['results']] == SOFTWARE[:2]


def test_ids_are_one_encoded_path_segment(ansible, emulator):
    traversal = 'x/../../machines/' + next(iter(emulator.data['machines']))
    run = ansible.run('module', extra_vars={'software_ids': ['notepad_plus_plus-_-notepad++',
                                                             'microsoft-_-.net_framework', traversal],
                                            'ignore_unknown': True})
    assert run.rc == 0, run
    assert run.result['not_found'] == [traversal]
    paths = sorted(r['raw_path'] for r in emulator.stats()['requests'] if r['route'] != 'token'
                   and r['raw_path'].startswith('/api/'))
    assert paths == sorted([
        '/api/Software/notepad_plus_plus-_-notepad%2B%2B/getmissingkbs',
        '/api/Software/microsoft-_-.net_framework/getmissingkbs',
        '/api/Software/x%2F..%2F..%2Fmachines%2F' + traversal.rsplit('/', 1)[1] + '/getmissingkbs'])
    assert emulator.stats()['api_by_route']['machine_missing_kbs'] == 0


def test_blank_ids_are_refused_before_any_network_call(ansible, emulator):
    run = ansible.run('module', extra_vars={'software_ids': ['microsoft-_-windows_11', '  ']})
    assert run.result['failed'] is True
    assert 'must not be empty or blank' in run.result['msg']
    run = ansible.run('module', extra_vars={'software_ids': ['..']})
    assert 'is not a valid ID' in run.result['msg']
    stats = emulator.stats()
    assert stats['token_requests'] == 0 and stats['api_requests'] == 0 and stats['oidc_requests'] == 0


def test_both_or_neither_id_list_is_an_argument_error(ansible, emulator):
    run = ansible.run('module', extra_vars={'software_ids': ['a-_-b'], 'machine_ids': ['c']})
    assert 'mutually exclusive' in run.result['msg']
    run = ansible.run('module', extra_vars={})
    assert 'one of the following is required: software_ids, machine_ids' in run.result['msg']
    assert emulator.stats()['api_requests'] == 0

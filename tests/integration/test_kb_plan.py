# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""defender.tvm.kb_plan on its own: one token, calls per software or per host, the plan's key."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.defender.tvm.tests.integration.harness import UNREACHABLE_WINDOWS

pytestmark = pytest.mark.representative

SOFTWARE = ['microsoft-_-windows_11', 'microsoft-_-.net_framework']


def run_plan(ansible, emulator, hosts, plan_args, env=None, **extra):
    return ansible.run('kb_plan', env=env, hosts=hosts, extra_vars=dict(plan_args=plan_args, **extra))


def fleet(emulator, count):
    names = sorted(m['computerDnsName'] for m in emulator.data['machines'].values()
                   if (m['computerDnsName'] or '').endswith('.contoso.local'))[:count]
    hosts = dict((n.split('.')[0], dict(UNREACHABLE_WINDOWS)) for n in names)
    hosts['brand-new-host'] = dict(UNREACHABLE_WINDOWS)
    return hosts


def test_software_strategy_with_one_token_and_calls_per_software(ansible, emulator):
    hosts = fleet(emulator, 6)
    run = run_plan(ansible, emulator, hosts, {'software_ids': SOFTWARE})
    assert run.rc == 0 and not run.result['first'].get('failed'), run
    plan = run.result['first']['plan']
    assert sorted(plan['hosts']) == sorted(hosts) and plan['strategy'] == 'software'
    machines = dict((m['computerDnsName'], m) for m in emulator.data['machines'].values())
    software = emulator.data['software']
    for host, entry in plan['hosts'].items():
        if host == 'brand-new-host':
            assert not entry['in_defender']
            continue
        machine = machines[host + '.contoso.local']
        assert entry['device_id'] == machine['id'] and entry['in_defender']
        expected = set('KB' + kb['id'] for sid in SOFTWARE if sid in machine['software'] for kb in software[sid]['missing_kbs'])
        assert set(entry['kbs']) == expected
    stats = emulator.stats()
    assert stats['token_requests'] == 1
    # the Windows products' devices (for brand-new-host), but Windows 11's, already read, once
    windows = [i for i, s in software.items() if s['vendor'] == 'microsoft' and s['name'].startswith('windows')]
    assert stats['api_by_route']['software_missing_kbs'] == stats['api_by_route']['software_machine_references'] - len(
        set(windows) - set(SOFTWARE)) == len(SOFTWARE)
    assert run.result['first']['reused'] is False and len(plan['key']) == 64


def test_the_same_inputs_reuse_the_previous_plan_without_asking(ansible, emulator):
    run = run_plan(ansible, emulator, fleet(emulator, 3), {'strategy': 'device'}, plan_twice=True)
    assert run.rc == 0, run
    assert run.result['second']['reused'] is True and run.result['second']['plan'] == run.result['first']['plan']
    assert emulator.stats()['token_requests'] == 1
    assert emulator.stats()['api_by_route']['machine_missing_kbs'] == 3


def test_other_inputs_ask_again(ansible, emulator):
    hosts = fleet(emulator, 2)
    first = run_plan(ansible, emulator, hosts, {'strategy': 'device'}).result['first']['plan']
    second = run_plan(ansible, emulator, hosts, {'strategy': 'device', 'exclude_kbs': ['KB5034763'],
                                                 'previous': first}).result['first']
    assert second['reused'] is False and second['plan']['key'] != first['key']


def test_connection_options_from_ansible_mde_variables(ansible, emulator):
    app = emulator.clients['secret']
    hosts = fleet(emulator, 1)
    run = run_plan(ansible, emulator, hosts, {'strategy': 'device'}, env=ansible.credentials('cert'),
                   ansible_mde_tenant_id=emulator.tenant_id, ansible_mde_client_id=app['client_id'],
                   ansible_mde_client_secret=app['client_secret'], ansible_mde_api_url=emulator.url,
                   ansible_mde_authority_url=emulator.url, ansible_mde_ca_path=emulator.ca_path)
    # the environment holds the cert app's credential; the variables are explicit and win
    assert run.rc == 0 and not run.result['first'].get('failed'), run
    assert emulator.stats()['token_requests_by_client'] == {'secret': 1}


def test_bad_input_is_refused_before_any_call(ansible, emulator):
    run = run_plan(ansible, emulator, fleet(emulator, 1), {'strategy': 'software'})
    assert run.result['failed'] is True and 'needs software_ids or discover' in run.result['msg']
    run = run_plan(ansible, emulator, fleet(emulator, 1), {'strategy': 'guess'})
    assert run.result['failed'] is True and 'strategy' in run.result['msg']
    assert emulator.stats()['api_requests'] == 0 and emulator.stats()['token_requests'] == 0

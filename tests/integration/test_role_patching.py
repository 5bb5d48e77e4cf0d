# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""defender.tvm.patch (check and install modes) on simulated Windows hosts, Defender emulated.

The hosts' Windows Update agents are the test-only win_updates stand-in in tests/integration/collections
(a simulation driven by each host's inventory variables); Defender is the emulator. Every argument
the role passes to win_updates is checked against the real module's argument spec.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

import pytest

from ansible_collections.defender.tvm.tests.integration.harness import run_collection_playbook
from ansible_collections.defender.tvm.tests.integration.win_updates_sim import calls, devices, host_vars, kb_names
from ansible_collections.defender.tvm.tests.integration.win_updates_spec import validate_win_updates_args

pytestmark = pytest.mark.representative

SOFTWARE = ['microsoft-_-windows_11', 'microsoft-_-windows_10', 'microsoft-_-windows_server_2019',
            'microsoft-_-windows_server_2022', 'microsoft-_-.net_framework', 'microsoft-_-office']


def assert_real_arguments(state_dir, hosts):
    for host in hosts:
        for call in calls(state_dir, host):
            args = call.get('args', call)
            assert validate_win_updates_args(args) == [], (host, args)


def test_check_mode_searches_each_agent_and_installs_nothing(ansible, emulator, tmp_path):
    state_dir = str(tmp_path / 'agents')
    found = devices(emulator, 2)
    (first, m1), (second, m2) = sorted(found.items())
    superseded = m1['missing_kbs'][0]['id']
    hosts = {first: host_vars(state_dir, m1, not_offered=[superseded]), second: host_vars(state_dir, m2)}
    run = run_collection_playbook(ansible, 'patch', hosts, simulation=True,
                                  extra_vars={'kb_patching_mode': 'check', 'kb_patching_strategy': 'device',
                                              'kb_patching_serial': '100%'})
    report = run.report
    assert report is not None and report['mode'] == 'check', run
    assert report['hosts'][first]['kbs']['KB' + superseded] == 'not_offered'
    assert set(v for k, v in report['hosts'][first]['kbs'].items() if k != 'KB' + superseded) == {'missing'}
    assert set(report['hosts'][second]['kbs'].values()) == {'missing'}
    assert sorted(report['hosts'][second]['kbs']) == kb_names(m2)
    assert run.rc != 0 and 'is not compliant' in run.output
    for host in hosts:
        states = [c['args'].get('state') for c in calls(state_dir, host)]
        assert states == ['searched'], states
    assert_real_arguments(state_dir, hosts)


def test_install_mode_installs_reboots_recovers_and_verifies(ansible, emulator, tmp_path):
    state_dir = str(tmp_path / 'agents')
    found = devices(emulator, 2)
    (good, m_good), (bad, m_bad) = sorted(found.items())
    failing = m_bad['missing_kbs'][0]['id']
    superseded = m_bad['missing_kbs'][1]['id']
    hosts = {
        good: host_vars(state_dir, m_good, reboot=[m_good['missing_kbs'][0]['id']], lose_connection=True),
        bad: host_vars(state_dir, m_bad, failing=[failing], not_offered=[superseded]),
    }
    run = run_collection_playbook(ansible, 'patch', hosts, simulation=True,
                                  extra_vars={'kb_patching_strategy': 'device', 'kb_patching_serial': 2,
                                              'kb_patching_max_fail_percentage': 100})
    report = run.report
    assert report is not None and report['mode'] == 'install', run
    assert report['hosts'][good]['status'] == 'compliant'
    assert set(report['hosts'][good]['kbs'].values()) == {'installed'}
    assert sorted(report['hosts'][good]['kbs']) == kb_names(m_good)
    bad_kbs = report['hosts'][bad]['kbs']
    assert bad_kbs['KB' + failing] == 'failed' and bad_kbs['KB' + superseded] == 'not_offered'
    # with reboot on, win_updates reboots and retries a failed update, then reports an update loop
    # with the HRESULT -1; the agent's error is kept as it says it
    assert report['hosts'][bad]['errors']['KB' + failing].startswith('0x')
    assert report['hosts'][bad]['status'] == 'noncompliant'
    assert set(v for k, v in bad_kbs.items() if k not in ('KB' + failing, 'KB' + superseded)) == {'installed'}
    # the lost connection was recovered from once, and each host was searched again to verify
    good_states = [c['args'].get('state') for c in calls(state_dir, good)]
    assert good_states == ['searched', 'installed', 'installed', 'searched'], good_states
    bad_states = [c['args'].get('state') for c in calls(state_dir, bad)]
    assert bad_states == ['searched', 'installed', 'searched'], bad_states
    installs = [c['args'] for c in calls(state_dir, good) if c['args'].get('state') == 'installed']
    assert sorted(installs[0]['accept_list']) == sorted(r'%s(?:\s+KB\d+)*$' % kb for kb in kb_names(m_good))
    assert installs[0]['category_names'] == ['*'] and installs[0]['reboot'] is True
    assert_real_arguments(state_dir, hosts)
    # the gate failed only the host with a failed KB, after writing the reports
    assert run.rc != 0 and '%s is not compliant' % bad in run.output and '%s is not compliant' % good not in run.output
    assert '<failure' in run.read('kb_patching.junit.xml')


def test_without_reboot_installed_kbs_wait_for_one(ansible, emulator, tmp_path):
    state_dir = str(tmp_path / 'agents')
    (name, machine), = devices(emulator, 1).items()
    needs_reboot = machine['missing_kbs'][0]['id']
    hosts = {name: host_vars(state_dir, machine, reboot=[needs_reboot])}
    run = run_collection_playbook(ansible, 'patch', hosts, simulation=True,
                                  extra_vars={'kb_patching_strategy': 'device', 'kb_patching_reboot': False})
    assert run.report['hosts'][name]['kbs']['KB' + needs_reboot] == 'pending_reboot', run
    assert run.report['hosts'][name]['status'] == 'noncompliant'
    assert all(c['args'].get('reboot') in (None, False) for c in calls(state_dir, name))


def test_batches_hooks_and_failure_budget(ansible, emulator, tmp_path):
    state_dir = str(tmp_path / 'agents')
    found = sorted(devices(emulator, 4).items())
    hosts = dict((name, host_vars(state_dir, m)) for name, m in found)
    first_batch = [name for name, dummy in found[:2]]
    # the first batch has a host whose KB fails: with no failure budget, the second batch never starts
    failing_host, failing_machine = found[0]
    hosts[failing_host] = host_vars(state_dir, failing_machine, failing=[failing_machine['missing_kbs'][0]['id']])
    log = str(tmp_path / 'hooks.log')
    hooks = {}
    for name in ('pre', 'post'):
        hooks[name] = str(tmp_path / ('%s.yml' % name))
        with open(hooks[name], 'w') as handle:
            handle.write('- name: Record the batch\n  ansible.builtin.lineinfile:\n    path: "{{ hook_log }}"\n'
                         '    line: "%s {{ ansible_play_batch | sort | join(\',\') }}"\n    create: true\n'
                         '    mode: "0644"\n  delegate_to: localhost\n  run_once: true\n' % name)
    run = run_collection_playbook(ansible, 'patch', hosts, simulation=True, extra_vars={
        'kb_patching_strategy': 'software', 'kb_patching_software_ids': SOFTWARE, 'kb_patching_serial': 2,
        'kb_patching_pre_batch_tasks': hooks['pre'], 'kb_patching_post_batch_tasks': hooks['post'], 'hook_log': log})
    assert run.rc != 0, run
    with open(log) as handle:
        lines = [line for line in handle.read().split('\n') if line]
    batch = ','.join(sorted(first_batch))
    assert lines == ['pre ' + batch, 'post ' + batch]  # one batch only: the failure budget stopped the play
    assert sorted(run.report['hosts']) == sorted(first_batch)
    for name, dummy in found[2:]:
        assert calls(state_dir, name) == []
    # Defender was asked once for the whole play, not per batch
    assert emulator.stats()['api_by_route']['software_missing_kbs'] == len(SOFTWARE)
    assert_real_arguments(state_dir, hosts)


def test_all_batches_run_within_the_budget_and_the_last_report_is_complete(ansible, emulator, tmp_path):
    state_dir = str(tmp_path / 'agents')
    found = sorted(devices(emulator, 4).items())
    hosts = dict((name, host_vars(state_dir, m)) for name, m in found)
    run = run_collection_playbook(ansible, 'patch', hosts, simulation=True, extra_vars={
        'kb_patching_strategy': 'software', 'kb_patching_software_ids': SOFTWARE, 'kb_patching_serial': 1})
    assert run.rc == 0, run
    assert sorted(run.report['hosts']) == sorted(hosts)
    assert run.report['summary']['compliant'] == 4
    assert emulator.stats()['api_by_route']['software_missing_kbs'] == len(SOFTWARE)


def test_check_mode_with_the_software_strategy_lets_windows_update_decide(ansible, emulator, tmp_path):
    """Defender's per-software lists are fleet-wide: a host is planned KBs it may not need, and the
    agent's search tells them apart (offered: missing; not offered: not_offered)."""
    state_dir = str(tmp_path / 'agents')
    found = sorted(devices(emulator, 3).items())
    hosts = dict((name, host_vars(state_dir, m)) for name, m in found)
    run = run_collection_playbook(ansible, 'patch', hosts, simulation=True, extra_vars={
        'kb_patching_mode': 'check', 'kb_patching_strategy': 'software', 'kb_patching_software_ids': SOFTWARE,
        'kb_patching_serial': '100%', 'kb_patching_fail_on_noncompliance': False})
    assert run.rc == 0, run
    for name, machine in found:
        outcomes = run.report['hosts'][name]['kbs']
        own = set(kb_names(machine)) & set(outcomes)  # the device's own KBs among those planned
        assert own, name
        assert dict((k, v) for k, v in outcomes.items() if k in own) == dict((k, 'missing') for k in own)
        assert set(v for k, v in outcomes.items() if k not in own) <= {'not_offered'}
    assert any(set(run.report['hosts'][n]['kbs']) - set(kb_names(m)) for n, m in found), 'software lists over-report'
    assert_real_arguments(state_dir, hosts)


def test_check_is_a_dry_run_of_every_batch(ansible, emulator, tmp_path):
    """--check of install: every batch, each host searched, nothing installed, one report of what
    would be installed, no failure for it; a host that cannot be searched still fails."""
    state_dir = str(tmp_path / 'agents')
    found = sorted(devices(emulator, 4).items())
    hosts = dict((name, host_vars(state_dir, m)) for name, m in found)
    run = run_collection_playbook(ansible, 'patch', hosts, simulation=True, check=True, extra_vars={
        'kb_patching_strategy': 'device', 'kb_patching_serial': 1})
    assert run.rc == 0, run
    report = run.report
    assert report['mode'] == 'install' and report['check_mode'] is True
    assert sorted(report['hosts']) == sorted(hosts)  # every batch ran and the last report has them all
    for name, machine in found:
        assert report['hosts'][name]['kbs'] == dict((kb, 'missing') for kb in kb_names(machine))
        assert [c['args'].get('state') for c in calls(state_dir, name)] == ['searched']  # nothing installed
    assert 'dry run (--check)' in run.read('kb_patching.md')
    assert_real_arguments(state_dir, hosts)
    # a host whose search fails (win_updates refuses an empty category list, as the real module does)
    # fails the dry run's gate, its KBs failed, not "not offered"; the others do not fail
    broken = found[1][0]
    hosts[broken] = dict(hosts[broken], kb_patching_category_names=[])
    run = run_collection_playbook(ansible, 'patch', hosts, simulation=True, check=True, tag='broken', extra_vars={
        'kb_patching_strategy': 'device', 'kb_patching_serial': '100%', 'kb_patching_max_fail_percentage': 100})
    assert run.rc != 0 and '%s could not be searched (install mode (dry run)' % broken in run.output, run
    assert set(run.report['hosts'][broken]['kbs'].values()) == {'failed'}
    assert "Cannot bind argument to parameter 'Category'" in run.report['hosts'][broken]['errors'][kb_names(found[1][1])[0]]
    assert set(run.report['hosts'][found[0][0]]['kbs'].values()) == {'missing'}
    assert len(re.findall(r'^fatal: .*could not be searched', run.output, re.M)) == 1, run


def test_a_patch_run_with_no_host_to_patch_fails(ansible, emulator, tmp_path):
    state_dir = str(tmp_path / 'agents')
    found = sorted(devices(emulator, 2).items())
    hosts = dict((name, host_vars(state_dir, m)) for name, m in found)
    # as with the inventory plugin's groups: the hosts are in a KB group, not in windows
    run = run_collection_playbook(ansible, 'patch', hosts, simulation=True, group='missing_kb5034122',
                                  args=['-l', 'missing_kb5034122'])
    assert run.rc != 0, run
    assert ('the host pattern windows matches no host in the inventory within --limit missing_kb5034122, so nothing '
            'would be patched') in run.output
    assert 'kb_patching_hosts=missing_kb5034122' in run.output and run.report is None
    # the same without --limit
    run = run_collection_playbook(ansible, 'patch', hosts, simulation=True, group='missing_kb5034122', tag='nolimit')
    assert run.rc != 0 and 'the host pattern windows matches no host in the inventory, so' in run.output, run
    # and with the hosts named by kb_patching_hosts, the same limit patches them
    run = run_collection_playbook(ansible, 'patch', hosts, simulation=True, group='missing_kb5034122', tag='named',
                                  args=['-l', 'missing_kb5034122'],
                                  extra_vars={'kb_patching_hosts': 'missing_kb5034122', 'kb_patching_strategy': 'device'})
    assert run.rc == 0 and sorted(run.report['hosts']) == sorted(hosts), run
    for name in hosts:
        assert 'installed' in [c['args'].get('state') for c in calls(state_dir, name)]

# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One rule for a name that several devices answer to (issue 17, section 1), end to end.

The emulator has two such names: ``ws-dup01.contoso.local``, the FQDN of two devices (one onboarded
again: the old one Inactive, seen 21 days before the other), and ``web01``, the short name of
``web01.contoso.local`` and ``web01.fabrikam.local``. Wherever a name is matched to a device (the
role in each strategy, both modules, the event source), such a name is never dropped, passed or
guessed: the run fails naming every device and the way out that works for that case (the device
ID when the FQDN is shared, else the FQDN), and the device ID (or the FQDN) then gets exactly that
device. The inventory plugin gives each device its own host, and the event source names the host
of an event as the plugin does, so that the shipped rulebook patches the device that gained the KB.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import os
import re
import sys

import pytest
import yaml

from ansible_collections.defender.tvm.tests.integration.harness import (
    SIMULATION, UNREACHABLE_WINDOWS, run_collection_playbook, start_rulebook, terminate, wait_for)
from ansible_collections.defender.tvm.tests.integration.helpers import expected_records
from ansible_collections.defender.tvm.tests.integration.win_updates_sim import calls, host_vars, kb_names

DUP = 'ws-dup01.contoso.local'  # the FQDN of two devices
SHORT = 'web01'  # the short name of devices in two domains
DEVICE_ID = re.compile(r'\b[0-9a-f]{40}\b')
SOFTWARE = ['microsoft-_-windows_11', 'microsoft-_-windows_server_2022']  # the devices of both names have one
STRATEGIES = {
    'software': {'kb_patching_strategy': 'software', 'kb_patching_software_ids': SOFTWARE},
    'device': {'kb_patching_strategy': 'device'},
    'export': {'kb_patching_strategy': 'export'},
}


def sharing(emulator, name):
    """The devices that answer to ``name`` (an FQDN, or a short name: its first label), seen last first."""
    found = [m for m in emulator.data['machines'].values() if m['computerDnsName']
             and (m['computerDnsName'] == name if '.' in name else m['computerDnsName'].split('.')[0] == name)]
    if len(found) < 2:
        pytest.fail('the emulator must have several devices that answer to %s: %s' % (name, found))
    return sorted(found, key=lambda m: m['lastSeen'], reverse=True)


def conflict(output, name):
    """What the failure says about ``name``: the device IDs it names, and its way out."""
    match = re.search(r'(\d+) devices answer to the name %s: ([^;]*); (give [^.;]*)' % re.escape(name), output)
    assert match, 'no shared-name error for %s in:\n%s' % (name, output[-6000:])
    return int(match.group(1)), set(DEVICE_ID.findall(match.group(2))), match.group(3)


def assert_names_the_devices_and_the_way_out(output, name, devices, id_hint='the device ID'):
    """The failure names every device of ``name`` and the way out that works: the device ID for
    devices that share the FQDN (and not the FQDN, which does not help), else the FQDN."""
    count, named, way_out = conflict(output, name)
    assert (count, named) == (len(devices), set(m['id'] for m in devices)), output[-6000:]
    if len(set(m['computerDnsName'] for m in devices)) == 1:  # only the ID tells them apart
        assert way_out.startswith('give the device ID') and 'FQDN' not in way_out, way_out
    else:
        assert way_out.startswith('give the FQDN, or the device ID') and 'share the FQDN' in way_out, way_out
        assert all(m['computerDnsName'] in output for m in devices)
    assert id_hint in way_out, way_out  # the role says where the ID goes


# --- the role (defender.tvm.compliance, report mode), in each strategy ---

@pytest.mark.parametrize('strategy', list(STRATEGIES))
@pytest.mark.parametrize('name', [DUP, SHORT])
def test_the_role_fails_on_a_shared_name_before_any_report(ansible, emulator, strategy, name):
    devices = sharing(emulator, name)
    run = run_collection_playbook(ansible, 'compliance', {name: dict(UNREACHABLE_WINDOWS)},
                                  extra_vars=STRATEGIES[strategy])
    # the gate is not passed: the run fails, and no report claims anything
    assert run.rc != 0 and run.report is None, run
    assert not os.path.exists(run.report_dir) or os.listdir(run.report_dir) == [], os.listdir(run.report_dir)
    assert_names_the_devices_and_the_way_out(run.output, name, devices,
                                             id_hint="the device ID as the host's kb_patching_device_name")
    assert 'UNREACHABLE' not in run.output  # failed on the controller, no host contacted


@pytest.mark.parametrize('strategy', list(STRATEGIES))
def test_the_role_reports_the_device_a_host_names_by_id_or_fqdn(ansible, emulator, strategy):
    newer, older = sharing(emulator, DUP)[:2]
    fabrikam = next(m for m in sharing(emulator, SHORT) if m['computerDnsName'].endswith('.fabrikam.local'))
    meant = {DUP: older, 'ws-dup01-reonboarded': newer, SHORT: fabrikam}
    hosts = {DUP: dict(UNREACHABLE_WINDOWS, kb_patching_device_name=older['id']),
             'ws-dup01-reonboarded': dict(UNREACHABLE_WINDOWS, kb_patching_device_name=newer['id']),
             SHORT: dict(UNREACHABLE_WINDOWS, kb_patching_device_name=fabrikam['computerDnsName'])}
    run = run_collection_playbook(ansible, 'compliance', hosts, extra_vars=dict(
        STRATEGIES[strategy], kb_patching_fail_on_noncompliance=False))
    assert run.rc == 0 and run.report is not None, run
    software = emulator.data['software']
    for host, machine in meant.items():
        entry = run.report['hosts'][host]
        assert entry['device_id'] == machine['id'], (host, entry)
        if strategy == 'software':  # the KBs of the queried software the device has
            expected = sorted(set('KB' + kb['id'] for sid in machine['software'] if sid in SOFTWARE
                                  for kb in software[sid]['missing_kbs']))
        else:  # the device's own KBs
            expected = kb_names(machine)
        assert sorted(entry['kbs']) == expected, (host, entry)
        assert entry['status'] == ('noncompliant' if expected else 'compliant')
    if strategy != 'software':  # the two devices of one FQDN miss different KBs: each got its own
        assert run.report['hosts'][DUP]['kbs'] != run.report['hosts']['ws-dup01-reonboarded']['kbs']


# --- the modules ---

@pytest.mark.representative
@pytest.mark.parametrize('name,ignore_unknown', [(DUP, False), (DUP, True), ('WS-DUP01', False), (SHORT, False)])
def test_missing_kbs_info_fails_on_a_shared_name(ansible, emulator, name, ignore_unknown):
    devices = sharing(emulator, name.lower())
    run = ansible.run('module', extra_vars={'machine_ids': [name], 'ignore_unknown': ignore_unknown})
    assert run.result['failed'] is True, run  # never dropped into not_found, never one of them
    assert 'results' not in run.result
    assert_names_the_devices_and_the_way_out(run.result['msg'], name, devices)
    assert emulator.stats()['api_by_route'].get('machine_missing_kbs', 0) == 0  # failed before asking for KBs


@pytest.mark.representative
def test_missing_kbs_info_gives_the_device_an_id_or_fqdn_names(ansible, emulator):
    newer, older = sharing(emulator, DUP)[:2]
    fabrikam = next(m for m in sharing(emulator, SHORT) if m['computerDnsName'].endswith('.fabrikam.local'))
    requested = [older['id'], newer['id'], fabrikam['computerDnsName']]
    run = ansible.run('module', extra_vars={'machine_ids': requested})
    assert run.rc == 0 and not run.result.get('failed'), run
    results = run.result['results']
    assert [(r['requested'], r['machine_id']) for r in results] == [
        (older['id'], older['id']), (newer['id'], newer['id']), (fabrikam['computerDnsName'], fabrikam['id'])]
    for entry, machine in zip(results, (older, newer, fabrikam)):
        assert entry['missing_kbs'] == expected_records(machine['missing_kbs'])


@pytest.mark.parametrize('name', [DUP, SHORT])
def test_device_missing_kbs_info_fails_on_a_shared_name(ansible, emulator, name):
    devices = sharing(emulator, name)
    run = ansible.run('device_missing_kbs_info', extra_vars={'devices': [name]})
    assert run.result['failed'] is True and 'devices' not in run.result, run
    assert_names_the_devices_and_the_way_out(run.result['msg'], name, devices)


def test_device_missing_kbs_info_resolves_an_id_to_that_device(ansible, emulator):
    newer, older = sharing(emulator, DUP)[:2]
    asked = [older['id'].upper(), newer['id']]
    run = ansible.run('device_missing_kbs_info', extra_vars={'devices': asked})
    assert run.rc == 0 and not run.result.get('failed'), run
    assert run.result['resolved'] == {asked[0]: older['id'], asked[1]: newer['id']}
    found = dict((d['device_id'], sorted(k['kb'] for k in d['missing_kbs'])) for d in run.result['devices'])
    assert found == {older['id']: kb_names(older), newer['id']: kb_names(newer)}
    assert run.result['not_found'] == []


# --- the event source and the shipped rulebook, on the inventory plugin's inventory ---

def _events(output):
    """The events ansible-rulebook printed (--print-events), as dicts."""
    return [ast.literal_eval(text) for text in re.findall(r'^Event:\n(\{.*?\})\n\*', output, re.M | re.S)]


@pytest.mark.once
def test_the_shipped_rulebook_patches_the_device_that_gained_the_kb(today, tmp_path):
    """A KB new on each of the two devices named ws-dup01.contoso.local: each event names the host
    the inventory plugin gave that device, and the shipped rulebook installs on each host exactly
    the KB its own device gained."""
    emulator = today
    newer, older = sharing(emulator, DUP)[:2]
    hosts = {newer['id']: DUP, older['id']: '%s_%s' % (DUP, older['id'])}  # the inventory plugin's rule
    missed = set(k['id'] for m in (newer, older) for k in m['missing_kbs'])
    kb_older, kb_newer = [kb for kb in ('5034441', '5034122', '5034770', '5034763') if kb not in missed][:2]
    emulator.add_delta_changes([{'device_id': older['id'], 'kb': kb_older, 'status': 'New'},
                                {'device_id': newer['id'], 'kb': kb_newer, 'status': 'New'}])
    machines = emulator.data['machines']
    # The inventory: the plugin's file (every device a host that must never be contacted), and
    # the two ws-dup01 hosts simulated Windows hosts (host_vars win over the plugin's variables).
    inventory, state_dir = tmp_path / 'inventory', str(tmp_path / 'agents')
    (inventory / 'host_vars').mkdir(parents=True)
    with open(str(inventory / 'fleet.defender_devices.yml'), 'w') as handle:
        yaml.safe_dump({'plugin': 'defender.tvm.devices', 'compose': dict(
            (k, repr(v)) for k, v in UNREACHABLE_WINDOWS.items())}, handle)
    for device_id, host in hosts.items():
        with open(str(inventory / 'host_vars' / ('%s.yml' % host)), 'w') as handle:
            yaml.safe_dump(dict(host_vars(state_dir, machines[device_id]), ansible_python_interpreter=sys.executable),
                           handle)
    process = start_rulebook(emulator, tmp_path, inventory, 'defender.tvm.patch_new_missing_kbs',
                             args=['--print-events'], extra_collections=[SIMULATION])
    try:
        for host in hosts.values():
            wait_for('the patch run to verify %s' % host, lambda h=host: [c['args'].get('state') for c in calls(
                state_dir, h)] == ['searched', 'installed', 'searched'], process)
    finally:
        output = terminate(process)  # the shipped rulebook runs until stopped
    # each event names the host the inventory plugin gave its device
    events = [e for e in _events(output) if e.get('defender_tvm', {}).get('device_id') in hosts]
    assert sorted((e['defender_tvm']['device_id'], e['meta']['hosts'], [k['kb'] for k in e['defender_tvm']['new_kbs']])
                  for e in events) == sorted([(older['id'], hosts[older['id']], ['KB' + kb_older]),
                                              (newer['id'], hosts[newer['id']], ['KB' + kb_newer])]), output[-6000:]
    # and each host got exactly its own device's new KB, once
    for device_id, kb in ((older['id'], kb_older), (newer['id'], kb_newer)):
        installs = [c['args'] for c in calls(state_dir, hosts[device_id]) if c['args'].get('state') == 'installed']
        assert [sorted(i['accept_list']) for i in installs] == [[r'KB%s(?:\s+KB\d+)*$' % kb]], output[-6000:]
    called = sorted(name for name in os.listdir(state_dir) if name.endswith('.calls.jsonl'))
    assert called == sorted('%s.calls.jsonl' % h for h in hosts.values())

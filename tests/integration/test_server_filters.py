# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A server that ignores ``$filter`` (the emulator's ``ignore_filter`` fault): the collection checks
what comes back, so the answers, and the number of calls, are those of a server that applies it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.defender.tvm.tests.integration.harness import UNREACHABLE_WINDOWS, run_collection_playbook
from ansible_collections.defender.tvm.tests.integration.helpers import machines_by_name

WIN11 = 'microsoft-_-windows_11'
SOFTWARE = [WIN11, 'microsoft-_-office']


def windows_products(emulator):
    return sorted(i for i, s in emulator.data['software'].items()
                  if s['vendor'] == 'microsoft' and s['name'].startswith('windows'))


def machine_reference_calls(emulator):
    """software ID -> machineReferences calls, from the request log."""
    calls = {}
    for request in emulator.stats()['requests']:
        if request['route'] == 'software_machine_references':
            sid = request['raw_path'].split('/')[3]
            calls[sid] = calls.get(sid, 0) + 1
    return calls


def test_the_software_strategy_gives_the_same_report_with_the_same_calls(ansible, emulator):
    machines = machines_by_name(emulator)
    asked = set(i for s in SOFTWARE for i in emulator.data['software'][s]['machines'])
    named = sorted(n for n, m in machines.items() if n.endswith('.contoso.local') and m['id'] in asked)[:2]
    # Windows devices with neither software: only the Windows products' devices tell they are in Defender
    others = sorted(n for n, m in machines.items() if n.endswith('.contoso.local') and m['id'] not in asked
                    and m['osPlatform'].startswith('Windows'))[:2]
    assert named and others
    hosts = dict((n.split('.')[0], dict(UNREACHABLE_WINDOWS)) for n in named + others)
    hosts['brand-new-host'] = dict(UNREACHABLE_WINDOWS)
    extra = {'kb_patching_strategy': 'software', 'kb_patching_software_ids': SOFTWARE,
             'kb_patching_fail_on_noncompliance': False}
    windows = windows_products(emulator)
    assert len(emulator.data['software']) > 4 * len(windows)
    runs = []
    for fault in ([], ['software']):
        emulator.reset()
        emulator.configure(ignore_filter=fault)
        run = run_collection_playbook(ansible, 'compliance', hosts, extra_vars=extra, tag='ignored' if fault else 'applied')
        assert run.rc == 0 and run.report is not None, run
        stats = emulator.stats()
        assert stats['faults_injected'].get('ignore_filter', 0) == (1 if fault else 0)  # the one listing
        assert stats['api_by_route']['software_list'] == 1
        # a machineReferences call per software asked and per Windows product, each once: Windows 11's
        # devices, read for the software asked, are not read again
        assert machine_reference_calls(emulator) == dict.fromkeys(sorted(set(SOFTWARE) | set(windows)), 1)
        assert stats['api_requests'] == len(SOFTWARE) + 1 + len(set(SOFTWARE) | set(windows))
        runs.append(run.report)
    applied, ignored = runs
    assert ignored['hosts'] == applied['hosts'] and ignored['summary'] == applied['summary']
    for name in others:
        entry = applied['hosts'][name.split('.')[0]]
        assert (entry['status'], entry['device_id']) == ('compliant', machines[name]['id'])
    assert applied['hosts']['brand-new-host']['status'] == 'not_in_defender'


def test_software_info_filters_are_checked_on_what_comes_back(ansible, emulator):
    emulator.configure(ignore_filter=['software'])
    software = emulator.data['software']
    run = ansible.run('software_info', extra_vars={'vendor': 'microsoft', 'software_name': 'Windows_11'})
    assert run.rc == 0 and [s['id'] for s in run.result['software']] == [WIN11], run
    run = ansible.run('software_info', extra_vars={'vendor': 'MICROSOFT'})
    microsoft = sorted(i for i, s in software.items() if s['vendor'] == 'microsoft')
    assert sorted(s['id'] for s in run.result['software']) == microsoft and len(microsoft) < len(software)
    # a filter of the user's own cannot be checked: what the server makes of it, with vendor still checked
    run = ansible.run('software_info', extra_vars={'vendor': 'microsoft', 'odata_filter': "startswith(name,'windows')"})
    assert sorted(s['id'] for s in run.result['software']) == microsoft
    assert emulator.stats()['faults_injected']['ignore_filter'] == 3


def test_discovery_takes_only_the_vendors_software(ansible, emulator):
    emulator.configure(ignore_filter=['software'])
    run = run_collection_playbook(ansible, 'compliance', {'brand-new-host': dict(UNREACHABLE_WINDOWS)},
                                  extra_vars={'kb_patching_strategy': 'software', 'kb_patching_discover_software': True,
                                              'kb_patching_discover_vendor': 'microsoft',
                                              'kb_patching_fail_on_noncompliance': False})
    assert run.rc == 0, run
    routes = emulator.stats()['api_by_route']
    assert routes['software_missing_kbs'] == sum(1 for s in emulator.data['software'].values()
                                                 if s['vendor'] == 'microsoft' and s['weaknesses'] > 0)


def test_a_short_device_name_resolves_the_same_from_the_whole_device_list(ansible, emulator):
    emulator.configure(ignore_filter=['machines'])
    shorts = {}
    for machine in emulator.data['machines'].values():
        shorts.setdefault((machine['computerDnsName'] or '').split('.')[0], []).append(machine)
    machine = next(m[0] for s, m in sorted(shorts.items()) if s and len(m) == 1 and m[0]['missing_kbs'])
    short = machine['computerDnsName'].split('.')[0]
    run = ansible.run('module', extra_vars={'machine_ids': [short.upper()]})
    assert run.rc == 0 and not run.result.get('failed'), run
    assert run.result['results'][0]['machine_id'] == machine['id']
    stats = emulator.stats()
    assert stats['api_by_route']['machine_list'] == 1 and stats['faults_injected']['ignore_filter'] == 1

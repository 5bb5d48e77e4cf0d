# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""defender.tvm.software_info end to end, and device short names in missing_kbs_info."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def test_inventory_is_listed_to_the_end_with_top_and_skip(ansible, emulator):
    run = ansible.run('software_info', extra_vars={})
    assert run.rc == 0 and not run.result.get('failed'), run
    ids = [s['id'] for s in run.result['software']]
    assert sorted(ids) == sorted(emulator.data['software'])
    first = run.result['software'][0]
    assert set(first) == {'id', 'name', 'vendor', 'weaknesses', 'public_exploit', 'active_alert',
                          'exposed_machines', 'impact_score'}
    requests = [r['raw_path'] for r in emulator.stats()['requests'] if r['route'] == 'software_list']
    assert requests == ['/api/Software?$top=10000']


def test_vendor_and_name_filters(ansible, emulator):
    run = ansible.run('software_info', extra_vars={'vendor': 'microsoft', 'software_name': 'windows_11'})
    assert [s['id'] for s in run.result['software']] == ['microsoft-_-windows_11']
    run = ansible.run('software_info', extra_vars={'vendor': 'microsoft', 'odata_filter': "startswith(name,'windows')"})
    expected = sorted(i for i, s in emulator.data['software'].items()
                      if s['vendor'] == 'microsoft' and s['name'].startswith('windows'))
    assert sorted(s['id'] for s in run.result['software']) == expected and len(expected) > 1


def test_specific_ids_with_their_devices(ansible, emulator):
    ids = ['microsoft-_-windows_11', 'notepad_plus_plus-_-notepad++']
    run = ansible.run('software_info', extra_vars={'software_ids': ids, 'machine_references': True})
    assert run.rc == 0 and not run.result.get('failed'), run
    assert [s['id'] for s in run.result['software']] == ids
    for entry in run.result['software']:
        expected = sorted(emulator.data['software'][entry['id']]['machines'])
        assert sorted(m['id'] for m in entry['machine_references']) == expected
        for ref in entry['machine_references']:
            assert set(ref) == {'id', 'computer_dns_name', 'os_platform', 'rbac_group_name'}
            assert ref['computer_dns_name'] == emulator.data['machines'][ref['id']]['computerDnsName']
    assert emulator.stats()['api_by_route']['software_machine_references'] == 2


def test_unknown_software_ids(ansible):
    run = ansible.run('software_info', extra_vars={'software_ids': ['ghost-_-app']})
    assert run.result['failed'] is True and 'ghost-_-app' in run.result['msg']
    run = ansible.run('software_info', extra_vars={'software_ids': ['ghost-_-app', 'microsoft-_-office'],
                                                   'ignore_unknown': True})
    assert run.result['not_found'] == ['ghost-_-app'] and len(run.result['software']) == 1


def test_short_device_names_resolve_through_the_listing(ansible, emulator):
    machine = next(m for m in emulator.data['machines'].values() if m['missing_kbs'])
    short = machine['computerDnsName'].split('.')[0]
    run = ansible.run('module', extra_vars={'machine_ids': [short.upper()]})
    assert run.rc == 0 and not run.result.get('failed'), run
    assert run.result['results'][0]['machine_id'] == machine['id']
    assert emulator.stats()['api_by_route']['machine_list'] == 1

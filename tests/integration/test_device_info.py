# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""defender.tvm.device_info end to end: the machine listing, paged, and names matched to devices."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def test_every_device_is_listed_to_the_end_with_top_and_skip(ansible, emulator):
    run = ansible.run('device_info')
    assert run.rc == 0 and not run.result.get('failed'), run
    machines = emulator.data['machines']
    assert sorted(d['id'] for d in run.result['devices']) == sorted(machines)
    for device in run.result['devices']:
        machine = machines[device['id']]
        assert (device['computer_dns_name'], device['os_platform'], device['rbac_group_name'], device['health_status']) == (
            machine['computerDnsName'], machine['osPlatform'], machine['rbacGroupName'], machine['healthStatus'])
    assert [r['raw_path'] for r in emulator.stats()['requests'] if r['route'] == 'machine_list'] == [
        '/api/machines?$top=10000']


def test_names_in_any_form_keep_their_devices(ansible, emulator):
    machines = sorted(emulator.data['machines'].values(), key=lambda m: m['computerDnsName'])[:3]
    names = [machines[0]['computerDnsName'].split('.')[0].upper(), machines[1]['computerDnsName'], machines[2]['id'],
             'brand-new-host']
    run = ansible.run('device_info', extra_vars={'devices': names})
    assert run.rc == 0 and not run.result.get('failed'), run
    assert sorted(d['id'] for d in run.result['devices']) == sorted(m['id'] for m in machines)
    assert run.result['not_found'] == ['brand-new-host']
    assert dict((r, n) for r, n in emulator.stats()['api_by_route'].items() if n) == {'machine_list': 1}


def test_the_listing_needs_machine_read_all(ansible, emulator):
    run = ansible.run('device_info', env=ansible.credentials('softwareonly'), extra_vars={'devices': ['ws-0001']})
    assert run.result['failed'] is True and 'HTTP 403' in run.result['msg'] and 'Machine.Read.All' in run.result['msg']

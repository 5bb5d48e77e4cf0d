# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Smoke run of the SIMULATED ansible.windows.win_updates through ansible-playbook.

Two fake hosts (ansible_connection: local) describe their Windows Update agents in inventory
variables; tests/integration/collections goes first on ANSIBLE_COLLECTIONS_PATH so that
ansible.windows.win_updates is the test stand-in. No Defender emulator is needed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.defender.tvm.tests.integration.harness import SIMULATION, Ansible

CU_SERVER = '0b7e3c10-0000-4000-8000-000000000001'
DOTNET = '0b7e3c10-0000-4000-8000-000000000002'
DEFS = '0b7e3c10-0000-4000-8000-000000000003'
HIDDEN = '0b7e3c10-0000-4000-8000-000000000004'
SUPERSEDED = '0b7e3c10-0000-4000-8000-000000000005'
CU_CLIENT = '0b7e3c10-0000-4000-8000-000000000011'
MSRT = '0b7e3c10-0000-4000-8000-000000000012'
PREVIEW = '0b7e3c10-0000-4000-8000-000000000013'

INSTALL_FAILED = 'Failed to install all updates - see updates for more information'


def inventory(state_dir):
    win01 = {
        'updates': {
            CU_SERVER: {'title': '2024-01 Cumulative Update for Microsoft server operating system version 21H2 for x64-based Systems (KB5034129)',
                        'kb': ['5034129'], 'categories': ['Security Updates', 'Microsoft Server operating system-21H2'], 'reboot_required': True},
            DOTNET: {'title': '2024-01 Cumulative Update for .NET Framework 3.5, 4.8 and 4.8.1 (KB5033999)', 'kb': ['5033999'],
                     'categories': ['Security Updates'], 'fail': {'hresult': 2149842978}},
            DEFS: {'title': 'Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 (Version 1.403.1)', 'kb': ['2267602'],
                   'categories': ['Definition Updates']},
            HIDDEN: {'title': 'Security Update hidden by the admin (KB5000001)', 'kb': ['5000001'], 'categories': ['Security Updates'],
                     'hidden': True},
            SUPERSEDED: {'title': '2023-12 Cumulative Update (KB5033118)', 'kb': ['5033118'], 'categories': ['Security Updates']},
        },
        'installed_kbs': ['5033118'],
    }
    win02 = {
        'updates': {
            CU_CLIENT: {'title': '2024-01 Cumulative Update for Windows 11 Version 23H2 for x64-based Systems (KB5034123)', 'kb': ['5034123'],
                        'categories': ['Security Updates', 'Windows 11'], 'reboot_required': True},
            MSRT: {'title': 'Windows Malicious Software Removal Tool x64 - v5.120 (KB890830)', 'kb': ['890830'], 'categories': ['Update Rollups']},
            PREVIEW: {'title': '2024-01 Cumulative Update Preview for Windows 11 Version 23H2 (KB5034204)', 'kb': ['5034204'],
                      'categories': ['Critical Updates'], 'browse_only': True, 'reboot_required': True},
        },
    }
    common = {'ansible_connection': 'local', 'sim_windows_update_state_dir': state_dir}
    return {'all': {'children': {'win_sim': {'hosts': {
        'win01': dict(common, sim_windows_update=win01),
        'win02': dict(common, sim_windows_update=win02, sim_lose_connection_on_reboot=True),
    }}}}}


@pytest.fixture
def local_ansible(tmp_path):
    """The playbook runner of harness.py, without the Defender emulator: these playbooks never call Defender."""
    return Ansible(None, tmp_path)


def read_json_lines(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle]


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def test_search_install_failure_reboot_and_lost_connection(local_ansible, tmp_path):
    state_dir = str(tmp_path / 'sim-state')
    inventory_file = str(tmp_path / 'inventory.yml')
    with open(inventory_file, 'w') as handle:
        json.dump(inventory(state_dir), handle)   # JSON is YAML

    run = local_ansible.run('win_updates_sim', env={}, inventory=inventory_file, extra_collections=[SIMULATION])
    assert run.rc == 0, run
    assert 'UNREACHABLE' in run.output and 'WARNING' not in run.output, run
    win01, win02 = run.result['win01'], run.result['win02']

    # search: default categories; hidden and other categories are filtered; installed KBs are not offered
    assert set(win01['search']['updates']) == {CU_SERVER, DOTNET}
    assert {k: v['filtered_reasons'] for k, v in win01['search']['filtered_updates'].items()} == {DEFS: ['category_names'], HIDDEN: ['hidden']}
    assert win01['search']['changed'] is False and win01['search']['updates'][CU_SERVER]['kb'] == ['5034129']
    assert set(win02['search']['updates']) == {CU_CLIENT, MSRT, PREVIEW}

    # check mode: changed means "would install", nothing installed
    for name, host in (('win01', win01), ('win02', win02)):
        assert host['check']['changed'] is True, name
        assert host['check']['installed_update_count'] == 0, name
    assert win02['check']['filtered_updates'][PREVIEW]['filtered_reasons'] == ['skip_optional']

    # install on win01: one update fails, the task fails but still lists the updates
    install = win01['install']
    assert install['failed'] is True and install['msg'] == INSTALL_FAILED
    assert install['updates'][CU_SERVER]['installed'] is True
    assert install['updates'][DOTNET]['installed'] is False and install['updates'][DOTNET]['failure_hresult_code'] == 0x80240022
    assert install['failed_update_count'] == 1 and install['installed_update_count'] == 1
    assert install['reboot_required'] is True and install['rebooted'] is False

    # install on win02 with reboot: installed, then the reboot drops the connection
    install = win02['install']
    assert install['unreachable'] is True and 'SIMULATION' in install['msg']
    assert install['updates'][CU_CLIENT]['installed'] is True and install['updates'][MSRT]['installed'] is True

    # a second search no longer offers what was installed
    assert set(win01['search_again']['updates']) == {DOTNET} and win01['search_again']['reboot_required'] is True
    assert set(win02['search_again']['updates']) == {PREVIEW} and win02['search_again']['reboot_required'] is False

    # reboot=true: win01 reboots for its pending reboot, then the same update fails again
    final = win01['final']
    assert final['failed'] is True and final['msg'] == INSTALL_FAILED and final['rebooted'] is True
    assert final['updates'][DOTNET]['failure_hresult_code'] == 0x80240022
    assert final['updates'][DOTNET]['failure_msg'] == 'Operation failed for all the updates (WU_E_ALL_UPDATES_FAILED 0x80240022)'
    # win02 reboots again, and this time keeps the connection
    final = win02['final']
    assert final['failed'] is False and final['rebooted'] is True and final['reboot_required'] is False
    assert final['updates'][PREVIEW]['installed'] is True and 'unreachable' not in final

    # the state files and the record of what the playbook passed
    state = read_json(os.path.join(state_dir, 'win02.json'))
    assert set(state['installed_kbs']) == {'5034123', '890830', '5034204'} and state['updates'] == {}
    assert state['connection_lost_on_reboot'] is True and state['reboots'] == 2
    assert '5034129' in read_json(os.path.join(state_dir, 'win01.json'))['installed_kbs']
    calls = read_json_lines(os.path.join(state_dir, 'win01.calls.jsonl'))
    assert calls == [
        {'args': {'state': 'searched'}, 'check_mode': False},
        {'args': {'skip_optional': True}, 'check_mode': True},
        {'args': {'skip_optional': True, 'reboot': False}, 'check_mode': False},
        {'args': {'state': 'searched'}, 'check_mode': False},
        {'args': {'reboot': True}, 'check_mode': False},
    ]
    assert read_json_lines(os.path.join(state_dir, 'win02.calls.jsonl'))[2]['args']['reboot'] is True

# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The test-only win_updates stand-in: filtering, installing, reboots and the result shape.

The stand-in lives in tests/integration/collections/ansible_collections/ansible/windows (a
simulation that shadows ansible.windows); it is loaded here by path, not by package name, so that
the real ansible.windows, if installed, is not involved.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import importlib.util
import json
import os
from unittest import mock

import pytest

from ansible.errors import AnsibleActionFail

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STAND_IN = os.path.join(ROOT, 'tests', 'integration', 'collections', 'ansible_collections', 'ansible', 'windows',
                        'plugins', 'action', 'win_updates.py')


def load_stand_in():
    spec = importlib.util.spec_from_file_location('win_updates_simulation_under_test', STAND_IN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sim = load_stand_in()

CU = '5f1c0a3e-0000-4000-8000-000000000001'
MSRT = '5f1c0a3e-0000-4000-8000-000000000002'
DEFS = '5f1c0a3e-0000-4000-8000-000000000003'
HIDDEN = '5f1c0a3e-0000-4000-8000-000000000004'
OPTIONAL = '5f1c0a3e-0000-4000-8000-000000000005'
BROKEN = '5f1c0a3e-0000-4000-8000-000000000006'
OLD = '5f1c0a3e-0000-4000-8000-000000000007'

INFO_KEYS = {'title', 'kb', 'id', 'downloaded', 'installed', 'categories'}
RESULT_KEYS = {'updates', 'filtered_updates', 'found_update_count', 'installed_update_count', 'failed_update_count',
               'reboot_required', 'rebooted', 'changed', 'failed', 'invocation'}


def agent(**extra):
    """A Windows 11 host: a cumulative update needing a reboot, a critical update, definitions, a hidden and an
    optional update, an update that fails, and one whose KB is already installed."""
    updates = {
        CU: {'title': '2024-01 Cumulative Update for Windows 11 Version 23H2 for x64-based Systems (KB5034123)',
             'kb': ['5034123'], 'categories': ['Security Updates', 'Windows 11'], 'reboot_required': True},
        MSRT: {'title': 'Windows Malicious Software Removal Tool x64 - v5.120 (KB890830)',
               'kb': ['890830'], 'categories': ['Update Rollups', 'Windows 11']},
        DEFS: {'title': 'Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 (Version 1.403.1)',
               'kb': ['2267602'], 'categories': ['Definition Updates', 'Microsoft Defender Antivirus']},
        HIDDEN: {'title': 'Hidden Security Update (KB5000001)', 'kb': ['5000001'], 'categories': ['Security Updates'], 'hidden': True},
        OPTIONAL: {'title': '2024-01 Cumulative Update Preview (KB5034204)', 'kb': ['5034204'],
                   'categories': ['Critical Updates'], 'browse_only': True},
        BROKEN: {'title': '2024-01 Security Update for .NET Framework (KB5033999)', 'kb': ['5033999'],
                 'categories': ['Security Updates'], 'fail': {'hresult': 2149842978}},
        OLD: {'title': '2023-12 Cumulative Update (KB5033920)', 'kb': ['5033920'], 'categories': ['Security Updates']},
    }
    value = {'updates': updates, 'installed_kbs': ['5033920']}
    value.update(extra)
    return value


def host(**extra):
    return sim.initial_state(agent(**extra))


def run(host_state, check_mode=False, lose_connection=False, **args):
    return sim.simulate(host_state, args, check_mode=check_mode, lose_connection_on_reboot=lose_connection)


# --- filtering ------------------------------------------------------------------------------------------------


def test_default_categories_select_security_critical_and_rollups():
    result, dummy = run(host(), state='searched')
    assert set(result['updates']) == {CU, MSRT, OPTIONAL, BROKEN}
    assert result['filtered_updates'][DEFS]['filtered_reasons'] == ['category_names']
    assert result['filtered_updates'][HIDDEN]['filtered_reasons'] == ['hidden']
    assert result['found_update_count'] == 4


def test_installed_kbs_are_never_offered():
    result, dummy = run(host(), state='searched', category_names=['*'])
    assert OLD not in result['updates'] and OLD not in result['filtered_updates']


@pytest.mark.parametrize('names,selected', [
    (['*'], {CU, MSRT, DEFS, OPTIONAL, BROKEN}),
    (['Definition Updates'], {DEFS}),
    (['definition updates'], {DEFS}),            # full names: case-insensitive
    (['DefinitionUpdates'], {DEFS}),             # the old camel-case names still work
    (['definitionupdates'], {DEFS}),
    (['Windows 11'], {CU, MSRT}),                # any category of the update
    (['Definition'], set()),                     # full names only, no substring
])
def test_category_names(names, selected):
    result, dummy = run(host(), state='searched', category_names=names)
    assert set(result['updates']) == selected


def test_a_single_category_name_is_a_list_of_one():
    result, dummy = run(host(), state='searched', category_names='SecurityUpdates')
    assert set(result['updates']) == {CU, BROKEN}


@pytest.mark.parametrize('pattern,matches', [
    ('KB5034123', True),
    ('kb5034123', True),                          # case-insensitive
    ('5034123', True),                            # unanchored: digits alone match
    ('KB50341', True),                            # unanchored: a shorter id matches a longer one
    ('Cumulative Update for Windows 11', True),   # the title
    (r'\(KB5034123\)KB5034123$', True),           # one string: the title followed by the KB<digits> ids
    ('^KB5034123$', False),                       # so an anchored KB never matches
    (r'KB5034123(?!\d)', True),                   # the exact-id pattern that does work
    (r'KB503412(?!\d)', False),
    ('KB5034124', False),
])
def test_accept_list_matching(pattern, matches):
    result, dummy = run(host(), state='searched', accept_list=[pattern])
    assert (CU in result['updates']) is matches
    if not matches:
        assert result['filtered_updates'][CU]['filtered_reasons'] == ['accept_list']


def test_several_kbs_are_joined_with_spaces():
    state = sim.initial_state({'updates': {CU: {'title': 'Bundle', 'kb': ['111', '222'], 'categories': ['Security Updates']}}})
    assert run(state, state='searched', accept_list=['^BundleKB111 KB222$'])[0]['found_update_count'] == 1


def test_reject_list_and_the_order_of_reasons():
    result, dummy = run(host(), state='searched', category_names=['Critical Updates'], skip_optional=True,
                        accept_list=['KB5000001', 'KB5034204'], reject_list=['kb500000'])
    assert result['updates'] == {}
    assert result['filtered_updates'][HIDDEN]['filtered_reasons'] == ['reject_list', 'hidden', 'category_names']
    assert result['filtered_updates'][OPTIONAL]['filtered_reasons'] == ['skip_optional']
    assert result['filtered_updates'][CU]['filtered_reasons'] == ['accept_list', 'category_names']


def test_skip_optional_only_filters_browse_only_updates_when_asked():
    assert OPTIONAL in run(host(), state='searched')[0]['updates']
    assert run(host(), state='searched', skip_optional=True)[0]['filtered_updates'][OPTIONAL]['filtered_reasons'] == ['skip_optional']


def test_an_invalid_pattern_fails_the_task_before_any_update_is_reported():
    result, state = run(host(), accept_list=['KB5034123', '[unclosed'])
    assert result['failed'] is True and result['msg'] == 'The regular expression pattern [unclosed is not valid.'
    assert result['updates'] == {} and result['filtered_updates'] == {}
    assert state == host()


# --- searched, check mode ------------------------------------------------------------------------------------


def test_searched_reports_and_changes_nothing():
    before = host()
    result, state = run(before, state='searched')
    assert result['changed'] is False and result['failed'] is False
    assert state == before
    for info in result['updates'].values():
        assert set(info) == INFO_KEYS and info['downloaded'] is False and info['installed'] is False


@pytest.mark.parametrize('args,changed', [
    ({}, True),
    ({'state': 'downloaded'}, True),
    ({'state': 'searched'}, False),
    ({'accept_list': ['KB0']}, False),           # nothing selected
])
def test_check_mode_changed_means_updates_would_be_installed(args, changed):
    before = host()
    result, state = run(before, check_mode=True, **args)
    assert result['changed'] is changed
    assert state == before
    assert result['installed_update_count'] == 0
    assert not any(info['installed'] or info['downloaded'] for info in result['updates'].values())


def test_check_mode_with_a_pending_reboot_reports_a_reboot_it_did_not_do():
    # As the real plugin: it skips the reboot in check mode but still sets rebooted.
    before = host(reboot_pending=True)
    result, state = run(before, check_mode=True, reboot=True, lose_connection=True)
    assert result['rebooted'] is True and result['reboot_required'] is False and result['changed'] is True
    assert state == before


# --- installing ------------------------------------------------------------------------------------------------


def test_install_moves_updates_to_installed_and_a_later_search_does_not_offer_them():
    result, state = run(host(), accept_list=['KB5034123', 'KB890830'])
    assert result['failed'] is False and result['changed'] is True
    assert result['installed_update_count'] == 2 and result['failed_update_count'] == 0
    assert result['reboot_required'] is True and result['rebooted'] is False
    assert all(info['installed'] and info['downloaded'] for info in result['updates'].values())
    assert set(state['installed_kbs']) == {'5033920', '5034123', '890830'}
    assert CU not in state['updates'] and state['reboot_pending'] is True

    again, dummy = run(state, state='searched', accept_list=['KB5034123', 'KB890830'])
    assert again['updates'] == {} and again['found_update_count'] == 0
    assert again['reboot_required'] is True        # still pending: nothing rebooted the host


def test_install_without_reboot_need():
    result, state = run(host(), accept_list=['KB890830'])
    assert result['reboot_required'] is False and state['reboot_pending'] is False


def test_a_failed_update_fails_the_task_but_the_others_are_installed():
    result, state = run(host(), category_names=['SecurityUpdates'])
    assert result['failed'] is True
    assert result['msg'] == 'Failed to install all updates - see updates for more information'
    assert result['failed_update_count'] == 1 and result['installed_update_count'] == 1 and result['found_update_count'] == 2
    broken = result['updates'][BROKEN]
    assert broken['installed'] is False and broken['downloaded'] is True
    assert broken['failure_hresult_code'] == 0x80240022
    assert broken['failure_msg'] == 'Operation failed for all the updates (WU_E_ALL_UPDATES_FAILED 0x80240022)'
    assert result['reboot_required'] is True      # the cumulative update that did install
    assert BROKEN in state['updates'] and '5033999' not in state['installed_kbs']


def test_failure_codes_are_unsigned_and_the_inventory_may_word_the_message():
    state = sim.initial_state({'updates': {BROKEN: {'title': 'x (KB1)', 'kb': ['1'], 'categories': ['Security Updates'],
                                                    'fail': {'hresult': -2145124329, 'msg': 'no applicable updates'}}}})
    info = run(state)[0]['updates'][BROKEN]
    assert info['failure_hresult_code'] == 2149842967 and info['failure_msg'] == 'no applicable updates'
    state['updates'][BROKEN]['fail'] = {'hresult': 0x8024ABCD}
    assert run(state)[0]['updates'][BROKEN]['failure_msg'] == 'Unknown WUA HRESULT 2149886925 (UNKNOWN 0x8024ABCD)'


def test_downloaded_then_installed():
    result, state = run(host(), state='downloaded', accept_list=['KB890830'])
    info = result['updates'][MSRT]
    assert result['changed'] is True and info['downloaded'] is True and info['installed'] is False
    assert result['installed_update_count'] == 0
    assert state['updates'][MSRT]['downloaded'] is True
    # Already downloaded: the real plugin only reports what this run downloaded.
    info = run(state, accept_list=['KB890830'])[0]['updates'][MSRT]
    assert info['downloaded'] is False and info['installed'] is True


def test_a_pending_reboot_blocks_an_install():
    result, state = run(host(reboot_pending=True), accept_list=['KB890830'])
    assert result['failed'] is True and result['msg'] == 'A reboot is required before more updates can be installed'
    assert result['reboot_required'] is True and result['changed'] is False
    assert result['updates'][MSRT]['installed'] is False and 'failure_hresult_code' not in result['updates'][MSRT]
    assert MSRT in state['updates']


# --- reboots -----------------------------------------------------------------------------------------------------


def test_reboot_true_reboots_and_clears_the_reboot_need():
    result, state = run(host(), accept_list=['KB5034123'], reboot=True)
    assert result['failed'] is False and result['changed'] is True
    assert result['rebooted'] is True and result['reboot_required'] is False
    assert state['reboot_pending'] is False and state['reboots'] == 1


def test_reboot_true_without_a_reboot_need_does_not_reboot():
    result, state = run(host(), accept_list=['KB890830'], reboot=True)
    assert result['rebooted'] is False and state['reboots'] == 0


def test_reboot_true_reboots_first_when_a_reboot_is_pending():
    result, state = run(host(reboot_pending=True), accept_list=['KB890830'], reboot=True)
    assert result['failed'] is False and result['rebooted'] is True
    assert result['updates'][MSRT]['installed'] is True and state['reboots'] == 1


def test_reboot_true_with_a_failing_update_ends_in_the_update_loop_error():
    # The real plugin reboots once after a failure and retries; the same update failing again is an "update loop",
    # and it then reports hresult -1 for it instead of the agent's code.
    result, state = run(host(), category_names=['SecurityUpdates'], reboot=True)
    assert result['failed'] is True and result['msg'].startswith('An update loop was detected')
    assert result['msg'].endswith('Updates in the reboot loop are: %s' % BROKEN)
    assert result['updates'][BROKEN]['failure_hresult_code'] == -1
    assert result['updates'][BROKEN]['failure_msg'] == 'Unknown WUA HRESULT -1 (UNKNOWN 0xFFFFFFFF)'
    assert result['updates'][CU]['installed'] is True and result['rebooted'] is True
    assert state['reboots'] == 1


def test_the_first_reboot_loses_the_connection_once():
    result, state = run(host(), accept_list=['KB5034123'], reboot=True, lose_connection=True)
    assert result['unreachable'] is True and 'SIMULATION' in result['msg']
    assert set(result) == {'unreachable', 'msg', 'updates', 'filtered_updates', 'found_update_count',
                           'installed_update_count', 'failed_update_count'}
    assert result['updates'][CU]['installed'] is True          # the install happened before the reboot
    assert state['connection_lost_on_reboot'] is True and state['reboot_pending'] is False
    assert '5034123' in state['installed_kbs']

    state['updates'][MSRT]['reboot_required'] = True
    result, state = run(state, accept_list=['KB890830'], reboot=True, lose_connection=True)
    assert 'unreachable' not in result and result['rebooted'] is True and result['failed'] is False


# --- arguments and result shape ---------------------------------------------------------------------------------


def test_the_result_has_the_documented_shape():
    result, dummy = run(host(), category_names=['*'])
    assert set(result) == RESULT_KEYS | {'msg'}
    assert result['invocation']['module_args']['state'] == 'installed'
    for guid, info in result['updates'].items():
        assert info['id'] == guid
        assert set(info) - INFO_KEYS <= {'failure_hresult_code', 'failure_msg'}
        assert all(kb.isdigit() for kb in info['kb'])
    for guid, info in result['filtered_updates'].items():
        assert set(info) == INFO_KEYS | {'filtered_reasons'}
    assert set(run(host(), state='searched')[0]) == RESULT_KEYS


def test_unknown_options_fail_as_the_real_action_plugin_fails():
    with pytest.raises(AnsibleActionFail, match='^Invalid options for ansible.windows.win_updates: blacklist,whitelist$'):
        run(host(), whitelist=['KB1'], blacklist=['KB2'])
    with pytest.raises(AnsibleActionFail, match='Invalid options'):
        run(host(), _operation='start')


def test_bad_reboot_values_fail_in_the_action_plugin():
    with pytest.raises(AnsibleActionFail, match="^Invalid value given for 'reboot': "):
        run(host(), reboot='perhaps')
    with pytest.raises(AnsibleActionFail, match="^Invalid value given for 'reboot_timeout': "):
        run(host(), reboot_timeout='soon')


@pytest.mark.parametrize('args,fragment', [
    ({'state': 'present'}, 'value of state must be one of: installed, searched, downloaded, got: present'),
    ({'server_selection': 'wsus'}, 'server_selection'),
    ({'skip_optional': 'maybe'}, 'skip_optional'),
    ({'category_names': {'a': 1}}, 'category_names'),
])
def test_bad_values_fail_in_the_module_with_empty_update_lists(args, fragment):
    result, state = run(host(), **args)
    assert result['failed'] is True and fragment in result['msg']
    assert result['updates'] == {} and result['found_update_count'] == 0
    assert state == host()


def test_an_empty_category_list_fails():
    result, dummy = run(host(), category_names=[])
    assert result['failed'] is True and 'Category' in result['msg']


def test_simulate_does_not_change_the_state_it_is_given():
    before = host()
    kept = copy.deepcopy(before)
    run(before, category_names=['*'], reboot=True)
    assert before == kept


@pytest.mark.parametrize('bad', [
    {'updates': {CU: {'title': 't', 'kb': ['1'], 'categories': [], 'reboot': True}}},     # a typo
    {'updates': {CU: {'kb': ['1'], 'categories': []}}},                                  # no title
    {'updates': {CU: {'title': 't', 'kb': '1', 'categories': []}}},                      # kb not a list
    {'updates': {CU: {'title': 't', 'kb': ['1'], 'categories': [], 'fail': {'msg': 'x'}}}},
    {'updates': [], 'installed_kbs': []},
    {'update': {}},
    'not a dict',
])
def test_a_wrong_inventory_fails_loudly(bad):
    with pytest.raises(sim.SimulationError):
        sim.initial_state(bad)


def test_kb_ids_from_yaml_integers_become_strings():
    state = sim.initial_state({'updates': {CU: {'title': 't', 'kb': [5034123], 'categories': []}}, 'installed_kbs': [1]})
    assert state['updates'][CU]['kb'] == ['5034123'] and state['installed_kbs'] == ['1']


# --- the action plugin around simulate(): variables, state file, record of calls ---------------------------------


def action(args, check_mode=False, async_val=0):
    task = mock.MagicMock()
    task.args = args
    task.check_mode = check_mode
    task.async_val = async_val
    task.action = 'ansible.windows.win_updates'
    connection = mock.MagicMock()
    connection._shell.tmpdir = '/tmp/unused'
    templar = mock.MagicMock()
    templar.template.side_effect = lambda value: value
    return sim.ActionModule(task, connection, mock.MagicMock(), mock.MagicMock(), templar, mock.MagicMock())


def task_vars(tmp_path, **extra):
    values = {'inventory_hostname': 'win01', 'sim_windows_update': agent(), 'sim_windows_update_state_dir': str(tmp_path / 'state')}
    values.update(extra)
    return values


def calls(tmp_path):
    with open(str(tmp_path / 'state' / 'win01.calls.jsonl')) as handle:
        return [json.loads(line) for line in handle]


def state_file(tmp_path):
    with open(str(tmp_path / 'state' / 'win01.json')) as handle:
        return json.load(handle)


def test_the_plugin_keeps_the_state_and_records_every_call(tmp_path):
    first = action({'accept_list': ['KB5034123'], 'reboot': True}).run(task_vars=task_vars(tmp_path, sim_lose_connection_on_reboot='yes'))
    assert first['unreachable'] is True
    # The inventory is read once: later changes to it do not matter, the state file does.
    second = action({'state': 'searched', 'category_names': '*'}, check_mode=True).run(
        task_vars=task_vars(tmp_path, sim_windows_update={'updates': {}}))
    assert CU not in second['updates'] and MSRT in second['updates']
    assert state_file(tmp_path)['connection_lost_on_reboot'] is True
    with pytest.raises(AnsibleActionFail, match='Invalid options'):
        action({'whitelist': ['KB1']}).run(task_vars=task_vars(tmp_path))
    assert calls(tmp_path) == [
        {'args': {'accept_list': ['KB5034123'], 'reboot': True}, 'check_mode': False},
        {'args': {'state': 'searched', 'category_names': '*'}, 'check_mode': True},
        {'args': {'whitelist': ['KB1']}, 'check_mode': False},
    ]


def test_the_plugin_needs_a_state_dir_and_an_agent(tmp_path):
    with pytest.raises(AnsibleActionFail, match='sim_windows_update_state_dir'):
        action({}).run(task_vars={'inventory_hostname': 'win01'})
    values = task_vars(tmp_path)
    del values['sim_windows_update']
    with pytest.raises(AnsibleActionFail, match='SIMULATION: host win01 has no sim_windows_update'):
        action({}).run(task_vars=values)


def test_the_plugin_refuses_async_as_the_real_one_does_with_reboot(tmp_path):
    with pytest.raises(AnsibleActionFail, match='^async is not supported for this task when reboot=yes$'):
        action({'reboot': True}, async_val=3600).run(task_vars=task_vars(tmp_path))
    with pytest.raises(AnsibleActionFail, match='SIMULATION'):
        action({}, async_val=3600).run(task_vars=task_vars(tmp_path))

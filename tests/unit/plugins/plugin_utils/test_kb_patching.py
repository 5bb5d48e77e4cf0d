# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.defender.tvm.plugins.module_utils._devices import SharedNameError
from ansible_collections.defender.tvm.plugins.plugin_utils import _kb_patching as kb_patching
from ansible_collections.defender.tvm.plugins.plugin_utils._kb_patching import (
    ask_defender,
    build_plan,
    build_report,
    gate_message,
    host_outcomes,
    kb_name,
    plan_key,
    role_arguments,
)

A, B, C = 'a' * 40, 'b' * 40, 'c' * 40


def kb(kb_id, cves, missed=5, software_ids=()):
    return {'id': kb_id, 'kb': 'KB' + kb_id, 'name': 'Update ' + kb_id, 'products_names': [], 'url': 'u' + kb_id,
            'machine_missed_on': missed, 'cve_addressed': cves, 'software_ids': list(software_ids)}


SOFTWARE_MISSING = {
    'missing_kbs': [kb('1', 50, software_ids=['win']), kb('2', 5, software_ids=['win', 'net']), kb('3', 20, software_ids=['net'])],
    'results': [{'software_id': 'win', 'missing_kbs': [kb('1', 50), kb('2', 5)]},
                {'software_id': 'net', 'missing_kbs': [kb('2', 5), kb('3', 20)]}],
}
SOFTWARE = [
    {'id': 'win', 'machine_references': [{'id': A, 'computer_dns_name': 'web01.contoso.local'},
                                         {'id': B, 'computer_dns_name': 'DB01.contoso.local'}]},
    {'id': 'net', 'machine_references': [{'id': B, 'computer_dns_name': 'DB01.contoso.local'}]},
]


def test_kb_names_are_normalised():
    assert [kb_name(v) for v in ('5034122', 'kb5034122', ' KB5034122 ', 5034122)] == ['KB5034122'] * 4


@pytest.mark.parametrize('host,expected', [
    ('web01.contoso.local', A), ('WEB01', A), ('web01', A), ('db01', B), ('web01.fabrikam.local', None),
    ('ghost', None)])
def test_hosts_match_devices_by_fqdn_or_short_name(host, expected):
    plan = build_plan('software', {'h': host}, SOFTWARE_MISSING, SOFTWARE)
    assert plan['hosts']['h']['device_id'] == expected


SHARED = [{'id': A, 'computer_dns_name': 'web01.contoso.local'}, {'id': C, 'computer_dns_name': 'web01.contoso.local'},
          {'id': 'd' * 40, 'computer_dns_name': 'web01.fabrikam.local'}]


@pytest.mark.parametrize('host,way_out', [
    ('web01', 'give the FQDN, or the device ID as the host\'s kb_patching_device_name where devices share the FQDN'),
    ('web01.contoso.local', "give the device ID as the host's kb_patching_device_name of the one you mean")])
def test_a_name_several_devices_answer_to_fails_the_plan_in_every_strategy(host, way_out):
    # software: one device has the software, the other is only among the Windows devices
    with pytest.raises(SharedNameError) as caught:
        build_plan('software', {'h': host}, SOFTWARE_MISSING, SOFTWARE, devices=SHARED)
    assert way_out in str(caught.value) and A in str(caught.value) and C in str(caught.value)
    export = {'devices': [{'device_id': d['id'], 'device_name': d['computer_dns_name'], 'missing_kbs': []}
                          for d in SHARED]}
    with pytest.raises(SharedNameError, match='devices answer to the name %s' % host):
        build_plan('export', {'h': host}, export)
    # a device ID picks the one meant, in every strategy
    assert build_plan('software', {'h': C}, SOFTWARE_MISSING, SOFTWARE, devices=SHARED)['hosts']['h']['device_id'] == C
    assert build_plan('export', {'h': C.upper()}, export)['hosts']['h']['device_id'] == C


def test_the_export_plan_takes_the_names_the_read_resolved():
    export = {'devices': [{'device_id': A, 'device_name': 'web01.contoso.local', 'missing_kbs': [kb('1', 50)]},
                          {'device_id': C, 'device_name': 'web01.contoso.local', 'missing_kbs': []}],
              'resolved': {'web01': C, 'ghost': None}}
    plan = build_plan('export', {'h': 'web01', 'g': 'ghost'}, export)
    assert plan['hosts']['h']['device_id'] == C and plan['hosts']['g']['in_defender'] is False


def test_software_plan_knows_devices_that_have_none_of_the_software():
    # 'file' has none of the queried software: Defender knows its device, it has nothing to patch
    devices = [{'id': C, 'computer_dns_name': 'file01.contoso.local'}]
    plan = build_plan('software', {'web': 'web01', 'file': 'FILE01', 'by-id': C.upper(), 'new': 'new01'},
                      SOFTWARE_MISSING, SOFTWARE, devices=devices)
    for host in ('file', 'by-id'):
        assert plan['hosts'][host] == {'device_id': C, 'computer_dns_name': 'file01.contoso.local', 'in_defender': True,
                                       'software_ids': [], 'kbs': [], 'accept_list': []}
    assert plan['hosts']['new']['in_defender'] is False
    assert plan['hosts']['web']['kbs'] == ['KB1', 'KB2']


@pytest.mark.parametrize('include,exclude,expected', [
    ('KB3', None, ['KB3']),            # -e kb_patching_include_kbs=KB3: one KB, not the characters K, B, 3
    ('1,KB3', None, ['KB1', 'KB3']),
    (None, 'KB1', ['KB3', 'KB2']),
    (None, '1, 2', ['KB3']),
    ([], [], ['KB1', 'KB3', 'KB2']),
])
def test_kb_filters_given_as_strings_are_lists(include, exclude, expected):
    plan = build_plan('software', {'db': 'db01'}, SOFTWARE_MISSING, SOFTWARE, include_kbs=include, exclude_kbs=exclude)
    assert plan['hosts']['db']['kbs'] == expected


def test_a_kb_filter_that_is_no_list_is_refused():
    with pytest.raises(ValueError, match='include_kbs must be a list of KBs'):
        build_plan('software', {'db': 'db01'}, SOFTWARE_MISSING, SOFTWARE, include_kbs={'KB1': True})


SPEC = {
    'kb_patching_include_kbs': {'type': 'list', 'elements': 'str', 'default': [], 'description': 'Only these KBs.'},
    'kb_patching_min_cve_addressed': {'type': 'int', 'default': 0},
    'kb_patching_discover_software': {'type': 'bool', 'default': False},
    'kb_patching_report_dir': {'type': 'path', 'default': 'reports'},
    'kb_patching_mode': {'type': 'str', 'choices': ['report', 'check'], 'default': 'report'},
    'kb_patching_device_name': {'type': 'str'},
}


def test_role_arguments_are_converted_as_the_spec_types_them():
    args = role_arguments({'kb_patching_include_kbs': 'KB5034770,KB5034441', 'kb_patching_min_cve_addressed': '5',
                           'kb_patching_discover_software': 'yes', 'kb_patching_report_dir': '~/reports',
                           'kb_patching_device_name': None}, SPEC)
    assert args['kb_patching_include_kbs'] == ['KB5034770', 'KB5034441']
    assert args['kb_patching_min_cve_addressed'] == 5 and args['kb_patching_discover_software'] is True
    assert not args['kb_patching_report_dir'].startswith('~')
    assert args['kb_patching_mode'] == 'report'  # the default
    assert args['kb_patching_device_name'] is None


def test_role_arguments_that_do_not_fit_name_every_problem():
    with pytest.raises(ValueError) as err:
        role_arguments({'kb_patching_mode': 'yolo', 'kb_patching_min_cve_addressed': 'many'}, SPEC)
    assert 'kb_patching_mode must be one of: report, check' in str(err.value)
    assert 'kb_patching_min_cve_addressed' in str(err.value)


def test_software_plan_gives_each_host_the_kbs_of_its_software():
    plan = build_plan('software', {'web': 'web01', 'db': 'db01.contoso.local', 'new': 'new01'},
                      SOFTWARE_MISSING, SOFTWARE)
    assert plan['hosts']['web']['kbs'] == ['KB1', 'KB2']
    assert plan['hosts']['db']['kbs'] == ['KB1', 'KB3', 'KB2']  # most CVEs first
    assert plan['hosts']['db']['software_ids'] == ['net', 'win']
    assert plan['hosts']['web']['accept_list'] == [r'KB1(?:\s+KB\d+)*$', r'KB2(?:\s+KB\d+)*$']
    assert plan['hosts']['new'] == {'device_id': None, 'computer_dns_name': None, 'in_defender': False,
                                    'software_ids': [], 'kbs': [], 'accept_list': []}
    assert sorted(plan['kbs']) == ['KB1', 'KB2', 'KB3'] and plan['kbs']['KB2']['software_ids'] == ['win', 'net']


def test_filters_apply_to_the_plan():
    plan = build_plan('software', {'db': 'db01'}, SOFTWARE_MISSING, SOFTWARE, min_cve_addressed=10)
    assert plan['hosts']['db']['kbs'] == ['KB1', 'KB3']
    plan = build_plan('software', {'db': 'db01'}, SOFTWARE_MISSING, SOFTWARE, exclude_kbs=['kb1'])
    assert plan['hosts']['db']['kbs'] == ['KB3', 'KB2']
    plan = build_plan('software', {'db': 'db01'}, SOFTWARE_MISSING, SOFTWARE, include_kbs=['3'])
    assert plan['hosts']['db']['kbs'] == ['KB3'] and list(plan['kbs']) == ['KB3']


def test_device_plan_uses_each_devices_own_answer():
    missing = {'missing_kbs': [kb('7', 9), kb('8', 3)],
               'results': [{'requested': 'web01', 'machine_id': A, 'computer_dns_name': 'web01.contoso.local',
                            'missing_kbs': [kb('7', 9)]},
                           {'requested': 'db01.contoso.local', 'machine_id': B, 'computer_dns_name': None,
                            'missing_kbs': [kb('7', 9), kb('8', 3)]}],
               'not_found': ['ghost']}
    plan = build_plan('device', {'web': 'WEB01', 'db': 'db01.contoso.local', 'ghost': 'ghost'}, missing)
    assert plan['hosts']['web']['kbs'] == ['KB7'] and plan['hosts']['web']['device_id'] == A
    assert plan['hosts']['db']['kbs'] == ['KB7', 'KB8'] and plan['hosts']['db']['computer_dns_name'] == 'db01.contoso.local'
    assert plan['hosts']['ghost']['in_defender'] is False
    assert plan['kbs']['KB7']['software_ids'] == []


def test_a_device_id_names_its_device_exactly_in_both_strategies():
    plan = build_plan('software', {'web': A.upper(), 'other': C}, SOFTWARE_MISSING, SOFTWARE)
    assert plan['hosts']['web']['device_id'] == A and plan['hosts']['web']['kbs'] == ['KB1', 'KB2']
    assert plan['hosts']['web']['computer_dns_name'] == 'web01.contoso.local'
    assert plan['hosts']['other']['in_defender'] is False  # an ID no software answer mentions
    missing = {'missing_kbs': [kb('7', 9)],
               'results': [{'requested': C, 'machine_id': C, 'computer_dns_name': None, 'missing_kbs': [kb('7', 9)]}]}
    plan = build_plan('device', {'sql': C}, missing)
    assert plan['hosts']['sql']['device_id'] == C and plan['hosts']['sql']['kbs'] == ['KB7']
    assert plan['hosts']['sql']['computer_dns_name'] is None  # not looked up, so not known


def update(kb_id, installed=False, fail=None):
    entry = {'title': 'Update (KB%s)' % kb_id, 'kb': [kb_id], 'id': 'guid-' + kb_id, 'installed': installed,
             'downloaded': installed, 'categories': ['Security Updates']}
    if fail:
        entry.update(installed=False, failure_hresult_code=fail, failure_msg='WU_E_INSTALL_NOT_ALLOWED')
    return entry


def result(*updates, **extra):
    answer = {'updates': dict((u['id'], u) for u in updates), 'filtered_updates': {}, 'changed': False}
    answer.update(extra)
    return answer


def test_report_mode_is_defenders_word():
    assert host_outcomes(['KB1', '2'], 'report') == {'kbs': {'KB1': 'missing', 'KB2': 'missing'}, 'errors': {}}


def test_check_mode_separates_offered_from_not_offered():
    search = result(update('1'))
    search['filtered_updates'] = {'g': dict(update('2'), filtered_reasons=['category_names'])}
    outcome = host_outcomes(['KB1', 'KB2', 'KB3'], 'check', search=search)
    assert outcome['kbs'] == {'KB1': 'missing', 'KB2': 'missing', 'KB3': 'not_offered'}


def test_install_mode_outcomes():
    search = result(update('1'), update('2'), update('3'), update('4'))
    install = result(update('1', installed=True), update('2', fail=2149842967), update('3', installed=True),
                     failed=True, msg='Failed to install all updates - see updates for more information')
    verify = result(update('3'), update('2'), update('4'))  # 3 came back: the install did not stick
    outcome = host_outcomes(['KB1', 'KB2', 'KB3', 'KB4', 'KB5'], 'install', search=search, install=install,
                            verify=verify)
    assert outcome['kbs'] == {'KB1': 'installed', 'KB2': 'failed', 'KB3': 'missing', 'KB4': 'missing',
                              'KB5': 'not_offered'}
    assert outcome['errors'] == {'KB2': '0x80240017: WU_E_INSTALL_NOT_ALLOWED'}
    verify = result(update('4'))
    install = result(update('1', installed=True), reboot_required=True, rebooted=False)
    outcome = host_outcomes(['KB1', 'KB4'], 'install', search=search, install=install, verify=verify)
    assert outcome['kbs'] == {'KB1': 'pending_reboot', 'KB4': 'missing'}


@pytest.mark.parametrize('mode', ['check', 'install'])
def test_a_search_that_failed_fails_its_kbs_though_it_lists_updates(mode):
    # win_updates adds its (empty) update lists to every result, a failed one too
    broken = result(failed=True, msg='Windows Update service is disabled')
    outcome = host_outcomes(['KB1', 'KB2'], mode, search=broken, install=None, verify=None)
    assert outcome['kbs'] == {'KB1': 'failed', 'KB2': 'failed'}
    assert outcome['errors']['KB1'] == 'the Windows Update search failed: Windows Update service is disabled'


def test_an_unreachable_host_fails_its_kbs_with_the_reason():
    outcome = host_outcomes(['KB1'], 'install', search=result(update('1')), install=None,
                            verify={'unreachable': True, 'msg': 'connection refused'})
    assert outcome == {'kbs': {'KB1': 'failed'}, 'errors': {'KB1': 'the host did not answer after installing: connection refused'}}


def test_report_summarises_statuses_and_outcomes():
    plan = build_plan('software', {'web': 'web01', 'db': 'db01', 'new': 'new01'}, SOFTWARE_MISSING, SOFTWARE)
    outcomes = {'web': {'kbs': {'KB1': 'installed', 'KB2': 'not_offered'}, 'errors': {}},
                'new': {'kbs': {}, 'errors': {}}}
    report = build_report(plan, outcomes, 'install', '2026-11-27T15:00:00Z', failed_hosts=['db'])
    assert report['hosts']['web']['status'] == 'compliant'
    assert report['hosts']['db']['status'] == 'noncompliant'
    assert report['hosts']['db']['kbs'] == {'KB1': 'failed', 'KB3': 'failed', 'KB2': 'failed'}
    assert report['hosts']['new']['status'] == 'not_in_defender'
    assert report['summary'] == {'hosts': 3, 'compliant': 1, 'noncompliant': 1, 'not_in_defender': 1, 'kbs': 3,
                                 'outcomes': {'missing': 0, 'installed': 1, 'failed': 3, 'pending_reboot': 0,
                                              'not_offered': 1}}
    assert report['kbs']['KB1']['hosts'] == {'missing': 0, 'installed': 1, 'failed': 1, 'pending_reboot': 0,
                                             'not_offered': 0}
    assert report['kbs']['KB1']['cve_addressed'] == 50 and 'fleet-wide' in report['strategy_note']
    assert set(report) == {'mode', 'check_mode', 'strategy', 'source', 'data_time', 'data_time_basis', 'generated',
                           'strategy_note', 'filters', 'summary', 'hosts', 'kbs'}
    assert report['check_mode'] is False
    assert (report['source'], report['data_time'], report['data_time_basis']) == (report['strategy'], None, None)


def test_report_mode_takes_defenders_word_for_every_planned_host_at_once():
    plan = build_plan('software', {'web': 'web01', 'db': 'db01', 'new': 'new01'}, SOFTWARE_MISSING, SOFTWARE)
    report = build_report(plan, {}, 'report', '2026-11-27T15:00:00Z')
    assert sorted(report['hosts']) == ['db', 'new', 'web']
    assert report['hosts']['web']['kbs'] == {'KB1': 'missing', 'KB2': 'missing'}
    assert report['hosts']['db']['kbs'] == {'KB1': 'missing', 'KB2': 'missing', 'KB3': 'missing'}
    assert report['summary']['noncompliant'] == 2 and report['summary']['not_in_defender'] == 1
    # the same as outcomes worked out per host, which is what the role did before
    per_host = dict((h, host_outcomes(e['kbs'], 'report')) for h, e in plan['hosts'].items())
    assert report == build_report(plan, per_host, 'report', '2026-11-27T15:00:00Z')
    # other modes have no default: hosts without outcomes are not processed yet
    assert build_report(plan, {}, 'check', '2026-11-27T15:00:00Z')['hosts'] == {}


def test_the_gate_message_names_each_failing_host_and_its_kbs():
    plan = build_plan('software', {'web': 'web01', 'db': 'db01', 'new': 'new01', 'ok': 'web01'}, SOFTWARE_MISSING,
                      SOFTWARE)
    outcomes = {'web': {'kbs': {'KB1': 'installed', 'KB2': 'pending_reboot'}, 'errors': {}},
                'db': {'kbs': {'KB1': 'failed', 'KB2': 'not_offered', 'KB3': 'missing'}, 'errors': {'KB1': 'x'}},
                'ok': {'kbs': {'KB1': 'installed', 'KB2': 'not_offered'}, 'errors': {}},
                'new': {'kbs': {}, 'errors': {}}}
    report = build_report(plan, outcomes, 'install', '2026-11-27T15:00:00Z')
    assert gate_message(report, 'db') == 'db is not compliant (install mode, software strategy): KB1: failed, KB3: missing'
    assert gate_message(report, 'web') == 'web is not compliant (install mode, software strategy): KB2: pending_reboot'
    assert gate_message(report, 'ok') == gate_message(report, 'new') == gate_message(report, 'absent') == ''
    assert gate_message(report) == ('2 of 4 hosts are not compliant (install mode, software strategy): '
                                    'db (KB1: failed, KB3: missing); web (KB2: pending_reboot)')
    assert gate_message(report, limit=1) == ('2 of 4 hosts are not compliant (install mode, software strategy): '
                                             'db (KB1: failed, KB3: missing) and 1 more')
    passing = build_report(plan, dict((h, outcomes[h]) for h in ('ok', 'new')), 'install', '2026-11-27T15:00:00Z')
    assert gate_message(passing) == ''


def test_a_dry_run_gate_fails_only_hosts_that_could_not_be_searched():
    # --check of install: each host searched, nothing installed; missing is what would be installed
    plan = build_plan('software', {'web': 'web01', 'db': 'db01'}, SOFTWARE_MISSING, SOFTWARE)
    outcomes = {'web': {'kbs': {'KB1': 'missing', 'KB2': 'not_offered'}, 'errors': {}},
                'db': {'kbs': {'KB1': 'failed', 'KB2': 'failed', 'KB3': 'failed'}, 'errors': {}}}
    report = build_report(plan, outcomes, 'install', '2026-11-27T15:00:00Z', check_mode=True)
    assert report['check_mode'] is True and report['hosts']['web']['status'] == 'noncompliant'
    assert gate_message(report, 'web') == ''
    assert gate_message(report, 'db') == ('db could not be searched (install mode (dry run), software strategy): '
                                          'KB1: failed, KB2: failed, KB3: failed')
    assert gate_message(report).startswith('1 of 2 hosts could not be searched (install mode (dry run)')
    del outcomes['db']
    assert gate_message(build_report(plan, outcomes, 'install', 'now', check_mode=True)) == ''
    # the same outcomes in a real run fail the gate
    assert gate_message(build_report(plan, outcomes, 'install', 'now')).startswith('1 of 1 hosts are not compliant')


# -- asking Defender for a plan --------------------------------------------------------------------

def test_the_plan_key_changes_with_every_input():
    base = dict(strategy='software', hosts={'web': 'web01'}, software_ids=['win'], discover=None,
                min_cve_addressed=0, include_kbs=[], exclude_kbs=[])

    def key_with(change):
        inputs = dict(base)
        inputs.update(change)
        return plan_key(**inputs)
    key = plan_key(**base)
    assert key_with({'include_kbs': 'KB1'}) == key_with({'include_kbs': ['1']})  # the same KB
    for change in ({'strategy': 'device'}, {'hosts': {'web': 'web02'}}, {'hosts': {'web': 'web01', 'db': 'db01'}},
                   {'software_ids': ['net']}, {'discover': {'vendor': 'microsoft', 'name': None}},
                   {'min_cve_addressed': 5}, {'include_kbs': ['KB1']}, {'exclude_kbs': ['KB2']}):
        assert key_with(change) != key, change


class Calls:
    """Records the queries ask_defender makes, and answers them from the fixtures above."""

    def __init__(self, monkeypatch, windows=()):
        self.made = []
        monkeypatch.setattr(kb_patching, 'query_missing_kbs', self.missing)
        monkeypatch.setattr(kb_patching, 'query_software', self.software)
        monkeypatch.setattr(kb_patching, 'windows_devices', self.windows)
        self.windows_refs = list(windows)

    def missing(self, client, software_ids=None, machine_ids=None, ignore_unknown=False):
        self.made.append(('missing', software_ids or machine_ids, ignore_unknown))
        if software_ids:
            return SOFTWARE_MISSING
        return {'missing_kbs': [kb('1', 50)], 'results': [
            {'requested': 'web01', 'machine_id': A, 'computer_dns_name': 'web01.contoso.local', 'missing_kbs': [kb('1', 50)]}]}

    def software(self, client, software_ids=None, vendor=None, name=None, machine_references=False, details=True, **kwargs):
        self.made.append(('software', software_ids, vendor, name, machine_references, details))
        if software_ids is None:
            return {'software': [{'id': 'win', 'weaknesses': 3}, {'id': 'calc', 'weaknesses': 0}], 'not_found': []}
        return {'software': SOFTWARE, 'not_found': []}

    def windows(self, client, references=None):
        self.made.append(('windows', references))
        return self.windows_refs


def test_ask_defender_software_strategy_asks_per_software_and_matches_names_among_windows_devices(monkeypatch):
    calls = Calls(monkeypatch, windows=[{'id': C, 'computer_dns_name': 'file01.contoso.local'}])
    plan = ask_defender(None, 'software', {'web': 'web01', 'file': 'file01', 'new': 'new01'}, software_ids=['win', 'net'])
    # the machine references just read go along, not to be read again should a queried software be a Windows
    assert calls.made == [('missing', ['win', 'net'], False), ('software', ['win', 'net'], None, None, True, False),
                          ('windows', {'win': SOFTWARE[0]['machine_references'], 'net': SOFTWARE[1]['machine_references']})]
    assert plan['hosts']['web']['kbs'] == ['KB1', 'KB2']
    assert plan['hosts']['file']['in_defender'] and plan['hosts']['file']['kbs'] == []
    assert not plan['hosts']['new']['in_defender']


def test_ask_defender_finds_a_shared_name_among_the_windows_devices(monkeypatch):
    # web01.contoso.local has the software; a device onboarded again has its name and only Windows
    Calls(monkeypatch, windows=[{'id': C, 'computer_dns_name': 'web01.contoso.local'}])
    with pytest.raises(SharedNameError, match='2 devices answer to the name web01.contoso.local'):
        ask_defender(None, 'software', {'web': 'web01.contoso.local', 'db': 'db01'}, software_ids=['win'])


def test_ask_defender_discovers_software_with_weaknesses(monkeypatch):
    calls = Calls(monkeypatch)
    ask_defender(None, 'software', {'web': 'web01'}, discover={'vendor': 'microsoft', 'name': None})
    assert calls.made[0] == ('software', None, 'microsoft', None, False, True)
    assert calls.made[1] == ('missing', ['win'], False)  # calc has no weaknesses


def test_ask_defender_device_strategy_asks_each_device_once(monkeypatch):
    calls = Calls(monkeypatch)
    plan = ask_defender(None, 'device', {'web': 'web01', 'web-again': 'web01', 'new': 'new01'})
    assert calls.made == [('missing', ['new01', 'web01'], True)]
    assert plan['hosts']['web']['kbs'] == plan['hosts']['web-again']['kbs'] == ['KB1']
    assert not plan['hosts']['new']['in_defender']

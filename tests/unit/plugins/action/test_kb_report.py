# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The defender.tvm.kb_report action plugin (``run_action`` in conftest.py): in report mode it asks
Defender (recorded) and reports; in check and install mode it reports on the plan kept in
localhost's facts and the hosts' outcomes; it writes the files and works out the gate."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.defender.tvm.plugins.plugin_utils import _kb_patching as kb_patching

pytestmark = pytest.mark.usefixtures('clean_environment', 'defender_api')

CREDENTIALS = dict(tenant_id='11111111-2222-3333-4444-555555555555', client_id='aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
                   client_secret='unit-client-secret-value')
A, B = 'a' * 40, 'b' * 40


def plan():
    """web01 misses KB1 and KB2, db01 nothing, new01 is unknown to Defender."""
    kb = {'id': '1', 'name': 'Update 1', 'cve_addressed': 5, 'machine_missed_on': 1, 'url': 'u', 'software_ids': []}
    return {'strategy': 'export', 'source': 'export (json)', 'data_time': '2024-02-20T06:00:00Z',
            'data_time_basis': 'asked', 'key': 'k',
            'hosts': {'web01': {'device_id': A, 'computer_dns_name': 'web01.contoso.local', 'in_defender': True,
                                'software_ids': [], 'kbs': ['KB1', 'KB2'], 'accept_list': []},
                      'db01': {'device_id': B, 'computer_dns_name': 'db01.contoso.local', 'in_defender': True,
                               'software_ids': [], 'kbs': [], 'accept_list': []},
                      'new01': {'device_id': None, 'computer_dns_name': None, 'in_defender': False,
                                'software_ids': [], 'kbs': [], 'accept_list': []}},
            'kbs': {'KB1': kb, 'KB2': dict(kb, id='2', cve_addressed=3)}}


@pytest.fixture
def asked_for_plan(monkeypatch):
    calls = []

    def ask_defender(client, **query):
        calls.append(query)
        return plan()

    monkeypatch.setattr(kb_patching, 'ask_defender', ask_defender)
    return calls


def test_report_mode_asks_defender_and_writes_every_report(asked_for_plan, run_action, tmp_path):
    reports = tmp_path / 'reports'
    result = run_action(dict(CREDENTIALS, mode='report', strategy='export', report_dir=str(reports), gate='once',
                             min_cve_addressed=2), {'ansible_play_hosts_all': ['web01', 'db01', 'new01']},
                        action='defender.tvm.kb_report')
    assert asked_for_plan[0]['strategy'] == 'export' and asked_for_plan[0]['min_cve_addressed'] == 2
    assert sorted(asked_for_plan[0]['hosts']) == ['db01', 'new01', 'web01']
    assert result['changed'] is True and result['report_dir'] == str(reports)
    assert sorted(os.path.basename(f) for f in result['files']) == [
        'kb_patching.html', 'kb_patching.json', 'kb_patching.junit.xml', 'kb_patching.md']
    report = json.loads((reports / 'kb_patching.json').read_text())
    assert report['summary'] == result['summary'] == {
        'hosts': 3, 'compliant': 1, 'noncompliant': 1, 'not_in_defender': 1, 'kbs': 2,
        'outcomes': {'missing': 2, 'installed': 0, 'failed': 0, 'pending_reboot': 0, 'not_offered': 0}}
    assert report['filters'] == {'min_cve_addressed': 2, 'include_kbs': [], 'exclude_kbs': []}
    assert report['hosts']['web01']['kbs'] == {'KB1': 'missing', 'KB2': 'missing'}
    assert stat.S_IMODE(os.stat(str(reports / 'kb_patching.json')).st_mode) == 0o644
    assert result['gate'] == {'mode': 'once', 'hosts': {},
                              'message': '1 of 3 hosts are not compliant (report mode, export strategy): '
                                         'web01 (KB1: missing, KB2: missing)'}
    # the same report again changes nothing
    again = run_action(dict(CREDENTIALS, mode='report', strategy='export', report_dir=str(reports), gate='once',
                            min_cve_addressed=2, formats=['json']),
                       {'ansible_play_hosts_all': ['web01', 'db01', 'new01']}, action='defender.tvm.kb_report')
    assert again['files'] == [str(reports / 'kb_patching.json')]


def test_install_mode_reports_the_kept_plan_and_the_outcomes(asked_for_plan, run_action, tmp_path):
    hostvars = {'localhost': {'kb_patching_plan': plan()},
                'web01': {'kb_patching_outcome': {'kbs': {'KB1': 'installed', 'KB2': 'failed'}, 'errors': {'KB2': 'x'}}},
                'db01': {'kb_patching_outcome': {'kbs': {}, 'errors': {}}}, 'new01': {}}
    result = run_action(dict(mode='install', report_dir=str(tmp_path), formats=['json']),
                        {'ansible_play_hosts_all': ['web01', 'db01', 'new01'], 'ansible_play_hosts': ['web01', 'db01'],
                         'hostvars': hostvars}, action='defender.tvm.kb_report')
    assert asked_for_plan == []  # the plan kb_plan made, not a new question
    report = json.loads((tmp_path / 'kb_patching.json').read_text())
    assert report['mode'] == 'install' and report['check_mode'] is False
    assert report['hosts']['web01']['kbs'] == {'KB1': 'installed', 'KB2': 'failed'}
    assert report['hosts']['new01']['status'] == 'not_in_defender'  # failed before outcomes, never dropped
    assert result['gate'] == {'mode': 'hosts', 'message': '', 'hosts': {
        'web01': 'web01 is not compliant (install mode, export strategy): KB2: failed'}}


def test_a_dry_run_reports_what_would_be_installed_and_fails_no_host_for_it(asked_for_plan, run_action, tmp_path):
    hostvars = {'localhost': {'kb_patching_plan': plan()},
                'web01': {'kb_patching_outcome': {'kbs': {'KB1': 'missing', 'KB2': 'not_offered'}, 'errors': {}}}}
    result = run_action(dict(mode='install', dry_run=True, report_dir=str(tmp_path), formats=['json', 'markdown']),
                        {'ansible_play_hosts_all': ['web01'], 'ansible_play_hosts': ['web01'], 'hostvars': hostvars},
                        action='defender.tvm.kb_report')
    assert json.loads((tmp_path / 'kb_patching.json').read_text())['check_mode'] is True
    assert 'dry run (--check)' in (tmp_path / 'kb_patching.md').read_text()
    assert result['gate']['hosts'] == {} and result['summary']['noncompliant'] == 1


def test_check_mode_without_a_plan_says_what_is_missing(run_action, tmp_path):
    with pytest.raises(AnsibleActionFail, match='No plan to report on: in check and install mode, run defender.tvm.kb_plan'):
        run_action(dict(mode='check', report_dir=str(tmp_path)), {'ansible_play_hosts_all': ['web01'], 'hostvars': {}},
                   action='defender.tvm.kb_report')
    assert list(tmp_path.iterdir()) == []

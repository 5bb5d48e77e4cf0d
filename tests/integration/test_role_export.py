# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kb_patching role's export strategy: each host's own KBs from one read of the vulnerability
export, in report (defender.tvm.compliance), check and install (defender.tvm.patch, simulated
Windows Update agents) modes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.defender.tvm.tests.integration.harness import UNREACHABLE_WINDOWS, run_collection_playbook
from ansible_collections.defender.tvm.tests.integration.helpers import inventory, machines_by_name
from ansible_collections.defender.tvm.tests.integration.win_updates_sim import calls, devices, host_vars, kb_names

pytestmark = pytest.mark.representative

EXPORT_ROUTES = ('software_vulnerabilities_by_machine', 'software_vulnerabilities_export')
PER_HOST_ROUTES = ('machine', 'machine_list', 'machine_missing_kbs', 'software_missing_kbs',
                   'software_machine_references')


def assert_one_export_read(emulator, route):
    """One token, one read of the export, and no call per host or per software."""
    stats = emulator.stats()
    assert stats['token_requests'] == 1
    assert stats['api_by_route'][route] == 1
    assert all(stats['api_by_route'][other] == 0 for other in PER_HOST_ROUTES + EXPORT_ROUTES if other != route)


@pytest.mark.parametrize('source', ['json', 'files'])
def test_report_mode_gives_each_host_its_own_kbs_from_one_read(ansible, emulator, source):
    hosts = inventory(emulator, 6)  # short names, and one host Defender does not know
    hosts.update(inventory(emulator, 8, style='fqdn'))  # FQDNs in upper case, two more devices
    run = run_collection_playbook(ansible, 'compliance', hosts, extra_vars={
        'kb_patching_strategy': 'export', 'kb_patching_export_source': source})
    report = run.report
    assert report is not None, run
    assert report['strategy'] == 'export' and report['source'] == 'export (%s)' % source
    summary = emulator.export_summary()
    if source == 'files':  # the export says when it was made
        assert (report['data_time'], report['data_time_basis']) == (summary['generated_time'], 'generated')
    else:  # the JSON pages do not: the report says when Defender was asked
        assert report['data_time_basis'] == 'asked' and report['data_time'] >= '2026'
    machines = machines_by_name(emulator)
    truth = emulator.export_truth()
    noncompliant = 0
    for host in hosts:
        entry = report['hosts'][host]
        if host == 'brand-new-host':
            assert entry['status'] == 'not_in_defender' and entry['kbs'] == {}
            continue
        machine = machines[host.lower() if '.' in host else host + '.contoso.local']
        assert entry['device_id'] == machine['id'] and entry['computer_dns_name'] == machine['computerDnsName']
        assert sorted(entry['kbs']) == sorted('KB' + kb for kb in truth.get(machine['id'], {}))
        assert sorted(entry['kbs']) == kb_names(machine)  # as precise as the device strategy
        noncompliant += 1 if entry['kbs'] else 0
        for name in entry['kbs']:
            assert report['kbs'][name]['cve_addressed'] >= truth[machine['id']][name[2:]]
    assert noncompliant and report['summary']['noncompliant'] == noncompliant
    assert run.rc != 0 and '(report mode, export strategy)' in run.output
    assert_one_export_read(emulator, EXPORT_ROUTES[0] if source == 'json' else EXPORT_ROUTES[1])
    assert 'Source' in run.read('kb_patching.md') and 'export (%s)' % source in run.read('kb_patching.html')


def test_device_ids_and_min_cve_addressed_count_each_devices_own_findings(ansible, emulator):
    truth = emulator.export_truth()
    chosen = sorted(mid for mid, kbs in truth.items() if max(kbs.values()) >= 2 and min(kbs.values()) < 2)[:3]
    assert chosen, 'the emulator must have devices with KBs that fix one finding and KBs that fix more'
    hosts = dict(('host%d' % i, dict(UNREACHABLE_WINDOWS, kb_patching_device_name=mid.upper()))
                 for i, mid in enumerate(chosen))
    run = run_collection_playbook(ansible, 'compliance', hosts, extra_vars={
        'kb_patching_strategy': 'export', 'kb_patching_min_cve_addressed': 2})
    report = run.report
    assert report is not None, run
    for i, mid in enumerate(chosen):
        entry = report['hosts']['host%d' % i]
        assert entry['device_id'] == mid
        assert sorted(entry['kbs']) == sorted('KB' + kb for kb, count in truth[mid].items() if count >= 2)


def test_the_export_needs_vulnerability_read_all(ansible, emulator):
    hosts = inventory(emulator, 2)
    run = run_collection_playbook(ansible, 'compliance', hosts, env=ansible.credentials('softwareonly'),
                                  extra_vars={'kb_patching_strategy': 'export'})
    assert run.rc != 0 and 'Vulnerability.Read.All' in run.output, run


def test_check_mode_searches_each_agent_for_its_own_kbs(ansible, emulator, tmp_path):
    state_dir = str(tmp_path / 'agents')
    found = devices(emulator, 2)
    (first, m1), (second, m2) = sorted(found.items())
    superseded = m1['missing_kbs'][0]['id']
    hosts = {first: host_vars(state_dir, m1, not_offered=[superseded]), second: host_vars(state_dir, m2)}
    run = run_collection_playbook(ansible, 'patch', hosts, simulation=True, extra_vars={
        'kb_patching_mode': 'check', 'kb_patching_strategy': 'export', 'kb_patching_serial': '100%'})
    report = run.report
    assert report is not None and report['mode'] == 'check' and report['strategy'] == 'export', run
    assert report['hosts'][first]['kbs']['KB' + superseded] == 'not_offered'
    assert sorted(report['hosts'][second]['kbs']) == kb_names(m2)
    assert set(report['hosts'][second]['kbs'].values()) == {'missing'}
    for host in hosts:
        assert [c['args'].get('state') for c in calls(state_dir, host)] == ['searched']
    assert_one_export_read(emulator, EXPORT_ROUTES[0])


def test_install_mode_installs_each_hosts_own_kbs_and_verifies(ansible, emulator, tmp_path):
    state_dir = str(tmp_path / 'agents')
    found = devices(emulator, 2)
    (good, m_good), (bad, m_bad) = sorted(found.items())
    failing = m_bad['missing_kbs'][0]['id']
    hosts = {good: host_vars(state_dir, m_good), bad: host_vars(state_dir, m_bad, failing=[failing])}
    run = run_collection_playbook(ansible, 'patch', hosts, simulation=True, extra_vars={
        'kb_patching_strategy': 'export', 'kb_patching_export_source': 'files', 'kb_patching_serial': 2,
        'kb_patching_max_fail_percentage': 100})
    report = run.report
    assert report is not None and report['mode'] == 'install', run
    assert report['hosts'][good]['status'] == 'compliant'
    assert sorted(report['hosts'][good]['kbs']) == kb_names(m_good)
    assert set(report['hosts'][good]['kbs'].values()) == {'installed'}
    assert report['hosts'][bad]['kbs']['KB' + failing] == 'failed' and report['hosts'][bad]['status'] == 'noncompliant'
    installs = [c['args'] for c in calls(state_dir, good) if c['args'].get('state') == 'installed']
    assert sorted(installs[0]['accept_list']) == sorted(r'%s(?:\s+KB\d+)*$' % kb for kb in kb_names(m_good))
    assert run.rc != 0 and '%s is not compliant' % bad in run.output and '%s is not compliant' % good not in run.output
    assert_one_export_read(emulator, EXPORT_ROUTES[1])
    assert emulator.stats()['file_requests_with_bearer'] == 0

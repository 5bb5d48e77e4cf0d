# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""defender.tvm.compliance (report mode): the gate, the reports, the API calls, no host contacted."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.defender.tvm.tests.integration.harness import UNREACHABLE_WINDOWS, run_collection_playbook
from ansible_collections.defender.tvm.tests.integration.helpers import inventory, machines_by_name

pytestmark = pytest.mark.representative

SOFTWARE = ['microsoft-_-windows_11', 'microsoft-_-windows_10', 'microsoft-_-.net_framework', 'microsoft-_-office']


def test_device_strategy_gate_and_reports(ansible, emulator):
    hosts = inventory(emulator, 6)
    run = run_collection_playbook(ansible, 'compliance', hosts)
    machines = machines_by_name(emulator)
    report = run.report
    assert report is not None, run
    assert report['mode'] == 'report' and report['strategy'] == 'device'
    noncompliant = []
    for host in hosts:
        entry = report['hosts'][host]
        if host == 'brand-new-host':
            assert entry['status'] == 'not_in_defender' and entry['kbs'] == {}
            continue
        machine = machines[host + '.contoso.local']
        assert entry['device_id'] == machine['id']
        assert sorted(entry['kbs']) == sorted('KB' + kb['id'] for kb in machine['missing_kbs'])
        assert set(entry['kbs'].values()) <= {'missing'}
        assert entry['status'] == ('noncompliant' if machine['missing_kbs'] else 'compliant')
        if machine['missing_kbs']:
            noncompliant.append(host)
    assert noncompliant and report['summary']['noncompliant'] == len(noncompliant)
    # the gate: non-zero exit after the reports were written, failing one task on the controller that
    # names each host that is not compliant with its KBs (the play stops there)
    assert run.rc != 0
    assert '%d of %d hosts are not compliant (report mode, device strategy)' % (len(noncompliant), len(hosts)) in run.output
    for host in noncompliant:
        kbs = ', '.join('KB%s: missing' % kb['id'] for kb in sorted(machines[host + '.contoso.local']['missing_kbs'],
                                                                    key=lambda kb: 'KB' + kb['id']))
        assert '%s (%s)' % (host, kbs) in run.output
    # the gate fails on the controller's own name, not on a host of the fleet
    assert run.output.count('FAILED!') == 1 and 'fatal: [localhost]: FAILED!' in run.output, run
    assert re.findall(r'^(\S+)\s+: ok=\d+ .*failed=(\d+) ', run.output, re.M) == [('localhost', '1')], run
    assert 'UNREACHABLE' not in run.output and 'unreachable=1' not in run.output  # no host was contacted
    # no task ran per host: every task ran on the controller
    task_hosts = set(re.findall(r'^(?:ok|changed|skipping|fatal): \[([^\]\s]+)', run.output, re.M))
    assert task_hosts == {'localhost'}, task_hosts
    suite = ET.fromstring(run.read('kb_patching.junit.xml'))
    assert suite.tag == 'testsuites' and len(suite) == 1  # one <testsuite> inside <testsuites>, counts on both
    assert (suite.get('tests'), suite.get('failures')) == (str(len(hosts)), str(len(noncompliant)))
    suite = suite.find('testsuite')
    assert int(suite.get('tests')) == len(hosts) and int(suite.get('failures')) == len(noncompliant)
    markdown = run.read('kb_patching.md')
    assert markdown.startswith('# KB patching report\n')
    for host in noncompliant:
        assert '\n| %s |' % host in markdown  # a row of the non-compliant hosts' table
    assert run.read('kb_patching.html').lstrip().lower().startswith('<!doctype html>')
    # one call per host (plus name resolution), never per KB
    stats = emulator.stats()
    assert stats['api_by_route']['machine_missing_kbs'] == len(hosts) - 1
    assert stats['token_requests'] == 1


def test_device_ids_in_the_inventory_save_the_name_lookup(ansible, emulator):
    machines = machines_by_name(emulator)
    names = sorted(n for n in machines if n.endswith('.contoso.local'))[:4]
    hosts = dict(('host%d' % i, dict(UNREACHABLE_WINDOWS, kb_patching_device_name=machines[n]['id']))
                 for i, n in enumerate(names))
    run = run_collection_playbook(ansible, 'compliance', hosts, extra_vars={'kb_patching_fail_on_noncompliance': False})
    assert run.rc == 0, run
    for i, name in enumerate(names):
        entry = run.report['hosts']['host%d' % i]
        assert entry['device_id'] == machines[name]['id'] and entry['status'] != 'not_in_defender'
        assert sorted(entry['kbs']) == sorted('KB' + kb['id'] for kb in machines[name]['missing_kbs'])
    # one call per host: no name lookup
    assert emulator.stats()['api_by_route'].get('machine', 0) == 0
    assert emulator.stats()['api_by_route']['machine_missing_kbs'] == len(hosts)


def test_the_roles_main_entry_in_report_mode_fails_each_noncompliant_host(ansible, emulator):
    """Outside the compliance playbook the role gates per host, and report mode still contacts no host."""
    hosts = inventory(emulator, 4)
    run = run_collection_playbook(ansible, 'patch', hosts, extra_vars={
        'kb_patching_mode': 'report', 'kb_patching_strategy': 'device', 'kb_patching_serial': '100%',
        'kb_patching_max_fail_percentage': 100})
    machines = machines_by_name(emulator)
    assert run.report is not None and run.report['mode'] == 'report', run
    assert sorted(run.report['hosts']) == sorted(hosts)
    failing = [h for h in hosts if h != 'brand-new-host' and machines[h + '.contoso.local']['missing_kbs']]
    assert failing and run.rc != 0
    for host in hosts:
        expected = sorted('KB' + kb['id'] for kb in machines[host + '.contoso.local']['missing_kbs']) \
            if host != 'brand-new-host' else []
        assert sorted(run.report['hosts'][host]['kbs']) == expected
        assert ('%s is not compliant (report mode, device strategy): ' % host in run.output) == (host in failing)
        assert re.search(r'^%s\s+: .*failed=%d ' % (re.escape(host), host in failing), run.output, re.M), run
    assert 'UNREACHABLE' not in run.output and 'unreachable=1' not in run.output


def test_a_fleet_without_kbs_past_the_filters_passes_the_gate(ansible, emulator):
    hosts = inventory(emulator, 3)
    every_kb = sorted(set('KB' + kb['id'] for m in emulator.data['machines'].values() for kb in m['missing_kbs']))
    run = run_collection_playbook(ansible, 'compliance', hosts, extra_vars={'kb_patching_exclude_kbs': every_kb})
    assert run.rc == 0, run
    assert run.report['summary']['compliant'] == 3 and run.report['summary']['not_in_defender'] == 1
    assert run.report['filters']['exclude_kbs'] == every_kb


def test_software_strategy_api_calls_do_not_grow_with_hosts(ansible, emulator):
    calls = []
    for count in (2, 10):
        emulator.reset()
        run = run_collection_playbook(ansible, 'compliance', inventory(emulator, count, style='fqdn'), tag='n%d' % count,
                                      extra_vars={'kb_patching_strategy': 'software', 'kb_patching_software_ids': SOFTWARE})
        assert run.report is not None, run
        assert run.report['strategy'] == 'software' and 'fleet-wide' in run.report['strategy_note']
        calls.append(emulator.stats()['api_requests'])
    # per software: missing KBs and machine references; for the hosts that no reference names
    # (brand-new-host), the Windows software and the devices of those not asked already, whatever the
    # number of hosts
    windows = [i for i, s in emulator.data['software'].items() if s['vendor'] == 'microsoft' and s['name'].startswith('windows')]
    assert calls[0] == calls[1] == 2 * len(SOFTWARE) + 1 + len(set(windows) - set(SOFTWARE))


def test_software_strategy_gives_each_host_the_kbs_of_its_software(ansible, emulator):
    hosts = inventory(emulator, 4)
    run = run_collection_playbook(ansible, 'compliance', hosts,
                                  extra_vars={'kb_patching_strategy': 'software', 'kb_patching_software_ids': SOFTWARE,
                                              'kb_patching_min_cve_addressed': 5})
    machines = machines_by_name(emulator)
    software = emulator.data['software']
    for host in hosts:
        if host == 'brand-new-host':
            continue
        machine = machines[host + '.contoso.local']
        expected = set('KB' + kb['id'] for sid in machine['software'] if sid in SOFTWARE
                       for kb in software[sid]['missing_kbs'] if kb['cveAddressed'] >= 5)
        assert set(run.report['hosts'][host]['kbs']) == expected


def test_software_strategy_knows_devices_that_have_none_of_the_software(ansible, emulator):
    # Only .NET is queried: a host whose device lacks it is in Defender, and compliant for it.
    sid = 'microsoft-_-.net_framework'
    machines = machines_by_name(emulator)
    having = set(emulator.data['software'][sid]['machines'])
    without = sorted(n for n, m in machines.items() if n.endswith('.contoso.local') and m['id'] not in having)[:3]
    with_it = sorted(n for n, m in machines.items() if n.endswith('.contoso.local') and m['id'] in having)[:2]
    assert without and with_it
    hosts = dict((n.split('.')[0], dict(UNREACHABLE_WINDOWS)) for n in without + with_it)
    hosts['brand-new-host'] = dict(UNREACHABLE_WINDOWS)
    # the softwareonly app: no permission beyond Software.Read.All is needed to tell them apart
    run = run_collection_playbook(ansible, 'compliance', hosts, env=ansible.credentials('softwareonly'),
                                  extra_vars={'kb_patching_strategy': 'software', 'kb_patching_software_ids': [sid],
                                              'kb_patching_fail_on_noncompliance': False})
    assert run.rc == 0 and run.report is not None, run
    for name in without:
        entry = run.report['hosts'][name.split('.')[0]]
        assert (entry['status'], entry['device_id'], entry['kbs']) == ('compliant', machines[name]['id'], {})
    assert run.report['hosts']['brand-new-host']['status'] == 'not_in_defender'
    assert run.report['summary']['not_in_defender'] == 1
    junit = run.read('kb_patching.junit.xml')
    assert junit.count('<skipped') == 1 and junit.count('no Defender device matched this host') == 1
    # the Windows software and its devices: calls per Windows product, none per host
    windows = [i for i, s in emulator.data['software'].items() if s['vendor'] == 'microsoft' and s['name'].startswith('windows')]
    routes = emulator.stats()['api_by_route']
    assert routes['software_list'] == 1 and routes.get('machine', 0) == 0 and routes.get('machine_list', 0) == 0
    assert routes['software_machine_references'] == 1 + len(windows)
    assert routes['software_missing_kbs'] == 1


def test_discovery_takes_software_with_weaknesses(ansible, emulator):
    run = run_collection_playbook(ansible, 'compliance', inventory(emulator, 2),
                                  extra_vars={'kb_patching_strategy': 'software', 'kb_patching_discover_software': True,
                                              'kb_patching_discover_vendor': 'microsoft',
                                              'kb_patching_fail_on_noncompliance': False})
    assert run.rc == 0, run
    asked = emulator.stats()['api_by_route']['software_missing_kbs']
    assert asked == sum(1 for s in emulator.data['software'].values() if s['vendor'] == 'microsoft' and s['weaknesses'] > 0)


def test_the_compliance_playbook_refuses_other_modes(ansible, emulator):
    run = run_collection_playbook(ansible, 'compliance', inventory(emulator, 2), extra_vars={'kb_patching_mode': 'install'})
    assert run.rc != 0 and 'only reports' in run.output
    assert emulator.stats()['api_requests'] == 0


BAD_INPUT = [
    ({'kb_patching_mode': 'yolo'}, 'value of kb_patching_mode must be one of: report, check, install'),
    ({'kb_patching_strategy': 'guess'}, 'value of kb_patching_strategy must be one of: software, device'),
    ({'kb_patching_min_cve_addressed': -1}, 'kb_patching_min_cve_addressed must be >= 0'),
    ({'kb_patching_reboot_timeout': -5}, 'kb_patching_reboot_timeout must be > 0'),
    ({'kb_patching_strategy': 'software'}, 'needs kb_patching_software_ids or kb_patching_discover_software'),
]


# Both playbooks validate once on the controller (the role's validate.yml); both refuse the same input. (A mode for compliance is refused as tested above.)
@pytest.mark.parametrize('playbook,extra,message', [('patch',) + case for case in BAD_INPUT]
                         + [('compliance',) + case for case in BAD_INPUT if 'kb_patching_mode' not in case[0]])
def test_bad_role_input_is_refused_clearly(ansible, emulator, playbook, extra, message):
    run = run_collection_playbook(ansible, playbook, inventory(emulator, 1), extra_vars=extra)
    assert run.rc != 0 and message in run.output, run
    assert emulator.stats()['api_requests'] == 0


RULES = {'kb_patching_min_cve_addressed': 'kb_patching_min_cve_addressed must be',
         'kb_patching_reboot_timeout': 'kb_patching_reboot_timeout must be',
         'kb_patching_strategy': 'the software strategy needs'}


@pytest.mark.parametrize('playbook', ['patch', 'compliance'])
@pytest.mark.parametrize('extra', [case[0] for case in BAD_INPUT[2:]], ids=list(RULES))
def test_each_broken_rule_gets_its_own_message(ansible, emulator, playbook, extra):
    run = run_collection_playbook(ansible, playbook, inventory(emulator, 1), extra_vars=extra)
    assert run.rc != 0
    broken = list(extra)[0]
    for rule, text in RULES.items():
        assert (text in run.output) == (rule == broken), (rule, run)


def hosts_missing(emulator, hosts, kb):
    machines = machines_by_name(emulator)
    return sorted(h for h in hosts if h != 'brand-new-host'
                  and kb in ['KB' + k['id'] for k in machines[h + '.contoso.local']['missing_kbs']])


# -e kb_patching_include_kbs=KB5034770 is a string. It must filter as the one-KB list the spec says it
# is, not as its characters (which matched no KB, so every host passed the gate).
@pytest.mark.parametrize('playbook', ['compliance', 'patch'])
def test_kb_filters_given_as_strings_filter_as_lists(ansible, emulator, playbook):
    hosts = inventory(emulator, 6)
    machines = machines_by_name(emulator)
    missing = dict((h, sorted('KB' + k['id'] for k in machines[h + '.contoso.local']['missing_kbs']))
                   for h in hosts if h != 'brand-new-host')
    counts = {}
    for kbs in missing.values():
        for kb in kbs:
            counts[kb] = counts.get(kb, 0) + 1
    common = max(sorted(counts), key=counts.get)
    extra = {'kb_patching_strategy': 'device'}
    if playbook == 'patch':  # the role's main entry, per-host gate
        extra.update(kb_patching_mode='report', kb_patching_serial='100%', kb_patching_max_fail_percentage=100)

    run = run_collection_playbook(ansible, playbook, hosts, tag='include',
                                  extra_vars=dict(extra, kb_patching_include_kbs=common))
    assert run.report is not None, run
    failing = hosts_missing(emulator, hosts, common)
    assert failing and run.rc != 0
    assert run.report['filters']['include_kbs'] == [common]
    for host, kbs in missing.items():
        assert list(run.report['hosts'][host]['kbs']) == ([common] if host in failing else [])
    assert run.report['summary']['noncompliant'] == len(failing)

    others = sorted(counts)
    others.remove(common)
    run = run_collection_playbook(ansible, playbook, hosts, tag='exclude',
                                  extra_vars=dict(extra, kb_patching_exclude_kbs=','.join(others)))
    assert run.report is not None, run
    assert run.report['filters']['exclude_kbs'] == others
    for host, kbs in missing.items():
        assert list(run.report['hosts'][host]['kbs']) == ([common] if host in failing else [])
    assert run.rc != 0


def test_credentials_from_ansible_mde_variables_are_passed_on_and_never_logged(ansible, emulator):
    app = emulator.clients['secret']
    hosts = inventory(emulator, 2)
    for host_vars in hosts.values():
        host_vars.update(ansible_mde_tenant_id=emulator.tenant_id, ansible_mde_client_id=app['client_id'],
                         ansible_mde_client_secret=app['client_secret'], ansible_mde_api_url=emulator.url,
                         ansible_mde_authority_url=emulator.url, ansible_mde_ca_path=emulator.ca_path)
    run = run_collection_playbook(ansible, 'compliance', hosts, env={}, verbosity=4,
                                  extra_vars={'kb_patching_fail_on_noncompliance': False})
    assert run.rc == 0, run
    assert emulator.stats()['token_requests_by_client'] == {'secret': 1}
    assert app['client_secret'] not in run.output
    assert 'eyJ' not in run.output  # no token either


def test_a_gate_over_no_hosts_fails(ansible, emulator):
    run = run_collection_playbook(ansible, 'compliance', inventory(emulator, 2), extra_vars={'kb_patching_hosts': 'nothing'})
    assert run.rc != 0 and 'The host pattern nothing matches no host in the inventory: a report or a gate' in run.output
    assert run.report is None
    # nor within a --limit: the play is not skipped (a play on localhost would be), it fails
    hosts = inventory(emulator, 2)
    run = run_collection_playbook(ansible, 'compliance', dict(hosts, elsewhere={}), group='windows', tag='limit',
                                  args=['-l', 'elsewhere'], extra_vars={'kb_patching_hosts': 'windows:!elsewhere'})
    assert run.rc != 0 and 'matches no host in the inventory within --limit elsewhere' in run.output, run
    assert 'no hosts matched' not in run.output
    assert emulator.stats()['api_requests'] == 0  # refused before any call


def test_the_compliance_gate_honours_the_limit(ansible, emulator):
    hosts = inventory(emulator, 6)
    machines = machines_by_name(emulator)
    noncompliant = sorted(h for h in hosts if machines.get(h + '.contoso.local', {}).get('missing_kbs'))
    limited = noncompliant[:2]
    run = run_collection_playbook(ansible, 'compliance', hosts, args=['-l', ','.join(limited)])
    assert run.report is not None, run
    assert sorted(run.report['hosts']) == limited  # only the hosts within --limit were reported on
    assert '2 of 2 hosts are not compliant' in run.output and run.rc != 0
    # under a --limit, the play runs on the limit's hosts (a play on localhost would be skipped);
    # every task still once, on the controller, and the gate shows on the first of them
    assert re.search(r'fatal: \[%s -> localhost\]: FAILED!' % re.escape(limited[0]), run.output), run
    # a --limit that names the controller too keeps the gate on the controller's own name
    run = run_collection_playbook(ansible, 'compliance', hosts, tag='with-controller',
                                  args=['-l', 'localhost,' + ','.join(limited)])
    assert sorted(run.report['hosts']) == limited
    assert 'fatal: [localhost]: FAILED!' in run.output, run


@pytest.mark.parametrize('pwd', [True, False], ids=['PWD set', 'PWD unset'])
def test_a_relative_report_dir_is_relative_to_where_ansible_runs(ansible, emulator, pwd):
    run = run_collection_playbook(ansible, 'compliance', inventory(emulator, 2), pwd=pwd,
                                  extra_vars={'kb_patching_report_dir': 'relative-reports',
                                              'kb_patching_fail_on_noncompliance': False})
    assert run.rc == 0, run
    assert (ansible.tmp_path / 'relative-reports' / 'kb_patching.json').is_file()  # the run's cwd


def test_two_role_runs_with_other_software_make_two_correct_reports(ansible, emulator):
    hosts = inventory(emulator, 4)
    first, second = ['microsoft-_-windows_11', 'microsoft-_-windows_10'], ['microsoft-_-.net_framework']
    run = run_collection_playbook(ansible, 'role_twice.yml', hosts, extra_vars={
        'first_software': first, 'second_software': second})
    assert run.rc == 0, run
    machines = machines_by_name(emulator)
    software = emulator.data['software']
    for name, asked in (('first', first), ('second', second)):
        with open(os.path.join(run.report_dir, name + '.json')) as handle:
            report = json.load(handle)
        for host in hosts:
            if host == 'brand-new-host':
                assert report['hosts'][host]['status'] == 'not_in_defender'
                continue
            machine = machines[host + '.contoso.local']
            expected = set('KB' + kb['id'] for sid in asked if sid in machine['software'] for kb in software[sid]['missing_kbs'])
            assert set(report['hosts'][host]['kbs']) == expected, (name, host)
    # each run asked Defender for its own software, with one token each
    routes = emulator.stats()['api_by_route']
    assert routes['software_missing_kbs'] == len(first) + len(second)
    assert emulator.stats()['token_requests'] == 2


def test_the_software_strategy_asks_for_one_token_per_role_run(ansible, emulator):
    run = run_collection_playbook(ansible, 'compliance', inventory(emulator, 5),
                                  extra_vars={'kb_patching_strategy': 'software', 'kb_patching_software_ids': SOFTWARE,
                                              'kb_patching_gate': 'none'})
    assert run.rc == 0, run
    assert emulator.stats()['token_requests'] == 1

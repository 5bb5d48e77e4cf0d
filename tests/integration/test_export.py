# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""defender.tvm.device_missing_kbs_info end to end: the vulnerability export's JSON and files
routes, its delta, against the emulator's own ground truth (tests/emulator: export_truth,
delta_truth), through real ansible-playbook runs over HTTPS."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import math
import re

import pytest

pytestmark = pytest.mark.representative

JWT = re.compile(r'eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}')
SNAPSHOT = datetime.datetime(2024, 2, 20, 6, 0, tzinfo=datetime.timezone.utc)  # the emulator's data time


def read(ansible, tag='read', env=None, **options):
    """The module with ``options``; its result, or its failure, in ``run.result``."""
    run = ansible.run('device_missing_kbs_info', extra_vars=options, tag=tag, env=env)
    assert run.rc == 0 and run.result is not None, run
    return run


def per_device(answer):
    """device ID -> {KB number: cve_addressed}, for the devices with a missing KB."""
    return dict((d['device_id'], dict((k['id'], k['cve_addressed']) for k in d['missing_kbs']))
                for d in answer['devices'] if d['missing_kbs'])


def api_paths(emulator, route):
    return [r['raw_path'] for r in emulator.stats()['requests'] if r['route'] == route]


@pytest.mark.parametrize('source', ['json', 'files'])
def test_both_routes_give_each_device_its_kbs_as_the_export_says(ansible, emulator, source):
    run = read(ansible, source=source)
    answer = run.result
    assert run.rc == 0 and answer['changed'] is False, run
    summary = emulator.export_summary()
    truth = emulator.export_truth()
    assert per_device(answer) == truth
    # every device of the export has its KBs exactly as getmissingkbs lists them
    machines = emulator.data['machines']
    for device in answer['devices']:
        machine = machines[device['device_id']]
        assert sorted(k['id'] for k in device['missing_kbs']) == sorted(kb['id'] for kb in machine['missing_kbs'])
        assert device['device_name'] == machine['computerDnsName']
        assert device['os_platform'] == machine['osPlatform'] and device['rbac_group'] == machine['rbacGroupName']
        for kb in device['missing_kbs']:
            assert kb['kb'] == 'KB' + kb['id'] and kb['url'] and kb['name'] and kb['software']
    # every record is read; the findings without a KB (advisories, nulls) are counted, not dropped
    assert answer['records_read'] == summary['records']
    without_kb = sum(d['findings_without_kb'] for d in answer['devices'])
    assert without_kb == summary['records'] - summary['kb_findings_total'] and without_kb > 0
    linux = [d for d in answer['devices'] if d['os_platform'] == 'Linux']
    assert linux and all(d['missing_kbs'] == [] and d['findings_without_kb'] > 0 for d in linux)
    # across the devices: each KB once, machine_missed_on = how many of them miss it
    missed = {}
    for kbs in truth.values():
        for kb in kbs:
            missed[kb] = missed.get(kb, 0) + 1
    assert dict((k['id'], k['machine_missed_on']) for k in answer['missing_kbs']) == missed
    assert answer['accept_list'] == [r'KB%s(?:\s+KB\d+)*$' % k['id'] for k in answer['missing_kbs']]
    assert answer['not_found'] == []
    # snapshot time: the files route says when the export was made, the JSON pages do not
    assert answer['generated_time'] == (summary['generated_time'] if source == 'files' else None)
    assert answer['read_started'].endswith('Z')
    stats = emulator.stats()
    assert stats['token_requests'] == 1
    if source == 'files':
        assert stats['api_by_route']['software_vulnerabilities_export'] == 1
        assert stats['file_downloads'] == len(summary['files']) > 1
        # the SAS is the credential on the file host: the bearer token never goes there
        assert stats['file_requests_with_bearer'] == 0 and stats['file_requests'] == len(summary['files'])
    else:
        assert stats['api_by_route']['software_vulnerabilities_by_machine'] == 1
        assert stats['file_requests'] == 0


def test_json_pages_are_followed_to_the_end_with_the_skiptoken(ansible, emulator):
    whole = per_device(read(ansible, tag='whole').result)
    emulator.reset()
    run = read(ansible, page_size=97)
    assert run.rc == 0, run
    assert per_device(run.result) == whole
    records = emulator.export_summary()['records']
    paths = api_paths(emulator, 'software_vulnerabilities_by_machine')
    assert len(paths) == int(math.ceil(records / 97.0)) > 2
    assert paths[0].endswith('?pageSize=97') and all('$skiptoken=' in p for p in paths[1:])
    assert not any('$top' in p for p in paths)  # $top would drop the nextLink
    assert run.result['records_read'] == records


def test_links_that_expire_mid_read_are_renewed_once_and_no_file_is_read_twice(ansible, emulator):
    files = len(emulator.export_summary()['files'])
    emulator.configure(sas_expire_after_downloads=files - 1)
    run = read(ansible, source='files')
    assert run.rc == 0, run
    assert per_device(run.result) == emulator.export_truth()
    assert run.result['records_read'] == emulator.export_summary()['records']
    stats = emulator.stats()
    # the first list's links expire before the last file: one fresh list for it
    assert stats['api_by_route']['software_vulnerabilities_export'] == 2, run
    assert stats['file_downloads'] == files


def test_links_that_expire_again_fail_clearly(ansible, emulator):
    # every list's links expire after one download; a read renews them once, so it fails on file 3
    emulator.configure(sas_expire_after_downloads=1)
    files = len(emulator.export_summary()['files'])
    if files < 3:
        pytest.fail('the emulator serves %d export files; this test needs 3 or more' % files)
    run = read(ansible, source='files')
    assert run.result['failed'] is True
    assert 'Downloading vulnerability export file 3 of %d was refused (HTTP 403)' % files in run.result['msg']


def test_a_download_that_breaks_off_is_read_again(ansible, emulator):
    emulator.configure(file_truncate_next=1)
    run = read(ansible, source='files')
    assert run.rc == 0, run
    assert per_device(run.result) == emulator.export_truth()
    assert run.result['records_read'] == emulator.export_summary()['records']
    stats = emulator.stats()
    assert stats['file_downloads'] == len(emulator.export_summary()['files']) + 1


def test_devices_by_id_or_name_in_any_case_and_the_unknown_listed(ansible, emulator):
    truth = emulator.export_truth()
    machines = emulator.data['machines']
    first, second, third = sorted(truth)[:3]
    asked = [first.upper(), machines[second]['computerDnsName'].upper(),
             machines[third]['computerDnsName'].split('.')[0], 'nosuchhost', '0' * 40]
    run = read(ansible, devices=asked)
    assert run.rc == 0, run
    answer = run.result
    assert [d['device_id'] for d in answer['devices']] == [first, second, third]
    assert per_device(answer) == dict((mid, truth[mid]) for mid in (first, second, third))
    assert answer['not_found'] == ['nosuchhost', '0' * 40]


def test_the_permission_error_names_vulnerability_read_all(ansible, emulator):
    run = read(ansible, env=ansible.credentials('softwareonly'))
    assert run.result['failed'] is True
    assert emulator.stats()['api_by_route']['software_vulnerabilities_by_machine'] == 1  # refused, not retried
    assert 'Vulnerability.Read.All' in run.result['msg'] and '403' in run.result['msg'], run.result['msg']


def test_since_with_the_files_route_is_refused_before_any_call(ansible, emulator):
    run = read(ansible, since='2024-02-19T00:00:00Z', source='files')
    assert run.result['failed'] is True and 'only a JSON route' in run.result['msg']
    assert emulator.stats()['api_requests'] == 0


@pytest.mark.parametrize('days', [1, 13])
def test_the_delta_gives_new_and_fixed_kbs_with_rbac_moves_cancelled(ansible, emulator, days):
    since = (SNAPSHOT - datetime.timedelta(days=days)).strftime('%Y-%m-%dT%H:%M:%SZ')
    run = read(ansible, since=since)
    assert run.rc == 0, run
    answer = run.result
    truth = emulator.delta_truth(since)
    got = dict((c['device_id'], (sorted(k['id'] for k in c['new_kbs']), sorted(k['id'] for k in c['fixed_kbs'])))
               for c in answer['changes'])
    assert got == dict((mid, (sorted(t['new']), sorted(t['fixed'])))
                       for mid, t in truth.items() if t['new'] or t['fixed'])
    assert got and any(new for new, fixed in got.values()) and any(fixed for new, fixed in got.values())
    assert answer['since'] == since and 'devices' not in answer
    paths = api_paths(emulator, 'software_vulnerability_changes_by_machine')
    assert len(paths) == 1 and 'sinceTime=%s' % since.replace(':', '%3A') in paths[0]
    if days == 13:
        # the emulator's data has devices that moved between device groups in this range: their
        # findings are in the delta twice (Fixed in the old group, New in the new one) and cancel out
        moved = [mid for mid in emulator.data['machines'] if emulator.export_history(mid).move is not None]
        assert moved, 'the emulator must move a device between groups in the last 13 days'


def test_no_secret_token_or_sas_signature_in_verbose_output(ansible, emulator):
    secret = emulator.clients['secret']['client_secret']
    emulator.configure(sas_expire_after_downloads=1)  # the failure path too: its message names no link
    run = ansible.run('device_missing_kbs_info', extra_vars={'source': 'files'}, verbosity=4, tag='verbose')
    assert run.result['failed'] is True, run
    text = run.output + json.dumps(run.result)
    assert secret not in text and not JWT.search(text)
    assert 'sig=' not in text and 'blob' not in text.lower() and emulator.files_url not in text


@pytest.mark.parametrize('source,target,path', [
    ('json', 'api', 'SoftwareVulnerabilitiesByMachine'),  # a page: 429 as everywhere else
    ('files', 'api', 'SoftwareVulnerabilitiesExport'),    # the file list
    ('files', 'files', 'part-00001'),                     # blob storage's ServerBusy on a download
])
def test_throttling_and_busy_answers_are_retried_on_every_export_route(ansible, emulator, source, target, path):
    emulator.configure(fail_next=[{'path_regex': path, 'status': 429 if target == 'api' else 503, 'count': 2,
                                   'retry_after': 1, 'target': target}])
    run = read(ansible, source=source, page_size=400)
    assert not run.result.get('failed'), run.result
    assert per_device(run.result) == emulator.export_truth()
    assert run.result['records_read'] == emulator.export_summary()['records']
    assert emulator.stats()['faults_injected'], 'the fault must have been injected'
    if target == 'api':
        assert 'throttled' in run.output  # the one warning at the end of a throttled run


def test_a_garbled_json_page_is_read_again(ansible, emulator):
    emulator.configure(malformed_next=1)
    run = read(ansible, page_size=400)
    assert not run.result.get('failed'), run.result
    assert per_device(run.result) == emulator.export_truth()
    assert run.result['records_read'] == emulator.export_summary()['records']

# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The vulnerability export reader: parsing, aggregation, routes, SAS refresh, the delta."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import io
import json

import pytest

from ansible_collections.defender.tvm.plugins.module_utils._errors import (
    ConfigurationError,
    DownloadBrokenError,
    ResponseError,
    SasExpiredError,
)
from ansible_collections.defender.tvm.plugins.module_utils._export import (
    DeviceFindings,
    camel_key,
    device_filter,
    kb_of,
    read_changes,
    read_export,
)

A, B, C = 'a' * 40, 'b' * 40, 'c' * 40


def finding(device, name, kb=None, software='windows_11', cve='CVE-2024-0001', pascal=False, **extra):
    record = {'id': '%s_%s_%s' % (device, software, cve), 'deviceId': device, 'deviceName': name,
              'osPlatform': 'Windows11', 'rbacGroupName': 'Workstations', 'softwareVendor': 'microsoft',
              'softwareName': software, 'softwareVersion': '10.0', 'cveId': cve}
    if kb is not None:
        record.update(recommendedSecurityUpdateId=kb, recommendedSecurityUpdate='Update %s' % kb,
                      recommendedSecurityUpdateUrl='https://catalog.example/KB%s' % str(kb).upper().replace('KB', ''))
    record.update(extra)
    if pascal:
        record = dict((k[0].upper() + k[1:], v) for k, v in record.items())
        record['OSPlatform'] = record.pop('OsPlatform')
        record['ID'] = record.pop('Id')
    return record


FLEET = [
    finding(A, 'web01.contoso.local', '5034122', cve='CVE-1'),
    finding(A, 'web01.contoso.local', 5034122, cve='CVE-2'),                # a number
    finding(A, 'web01.contoso.local', 'KB5034441', software='.net_framework', cve='CVE-3'),
    finding(A, 'web01.contoso.local', None, software='chrome', cve='CVE-4', recommendedSecurityUpdate='ADV 200002'),
    finding(B, 'db01.contoso.local', '5034122', cve='CVE-1', pascal=True),  # the files' casing
    finding(B, 'db01.contoso.local', 'RHSA-2024:9315', software='openssl', cve='CVE-5'),
    finding(C, 'web01.fabrikam.local', '5034763', cve='CVE-6'),
]


def gzipped(lines):
    data = io.BytesIO()
    with gzip.GzipFile(fileobj=data, mode='wb') as handle:
        handle.write(''.join(json.dumps(line) + '\n' for line in lines).encode('utf-8'))
    return data.getvalue()


class Body(io.BytesIO):
    """A download's body (the transport's file body): its bytes, ``broken`` cut off halfway."""

    def __init__(self, lines, broken=False):
        data = gzipped(lines)
        super(Body, self).__init__(data[:len(data) // 2] if broken else data)


class PageResponse:
    """A streamed JSON page as requests gives it, in small chunks that split values anywhere."""

    encoding = 'utf-8'

    def __init__(self, body, chunk=7):
        self.data, self.chunk = json.dumps(body).encode('utf-8'), chunk

    def iter_content(self, size):
        for start in range(0, len(self.data), self.chunk):
            yield self.data[start:start + self.chunk]

    def json(self):
        return json.loads(self.data)


class ExportApi:
    """The client calls the reader makes, answered from records; files expire as told."""

    settings = type('Settings', (), {'max_retries': 2})

    def __init__(self, records, page=3, files=3, expire_after=None, newer_export=None, broken=0):
        self.records, self.page, self.calls, self.downloads = records, page, [], []
        self.broken = broken  # the next N downloads break off halfway
        self.parts = [records[i::files] for i in range(files)]
        self.generation, self.expire_after = 0, expire_after
        self.newer_export = newer_export  # the records of a newer export, given with the second list

    def url(self, *segments, **params):
        return '/'.join(segments) + '?' + '&'.join('%s=%s' % kv for kv in sorted(params.items()))

    def pages(self, url, what, permission, resource_id=None, budget=None, parse=None):
        self.calls.append((url, permission, budget))
        for start in range(0, len(self.records), self.page):
            page = self.records[start:start + self.page]
            yield parse(PageResponse({'@odata.context': 'x', 'value': page}))['value'] if parse else page

    def get(self, url, what, permission, resource_id=None, budget=None):
        self.calls.append((url, permission, budget))
        self.generation += 1
        generated = '2024-02-20T06:00:00Z'
        if self.generation == 2 and self.newer_export is not None:
            self.parts = [self.newer_export[i::len(self.parts)] for i in range(len(self.parts))]
            generated = '2024-02-20T12:00:00Z'
        return {'exportFiles': ['https://blob.example/%s/part-%d.json.gz?sig=%d' % (generated[:13], i, self.generation)
                                for i in range(len(self.parts))], 'generatedTime': generated}

    def open_file(self, url, what):
        generation = int(url.rsplit('=', 1)[1])
        if self.expire_after is not None and len(self.downloads) >= self.expire_after and generation == 1:
            raise SasExpiredError('expired')
        self.downloads.append(url.split('?')[0])
        broken, self.broken = self.broken > 0, max(0, self.broken - 1)
        return Body(self.parts[int(url.split('part-')[1].split('.')[0])], broken)


def part_names(*numbers, hour='2024-02-20T06'):
    return ['https://blob.example/%s/part-%d.json.gz' % (hour, i) for i in numbers]


@pytest.mark.parametrize('key,expected', [
    ('DeviceId', 'deviceId'), ('OSPlatform', 'osPlatform'), ('ID', 'id'), ('CveId', 'cveId'),
    ('RecommendedSecurityUpdateId', 'recommendedSecurityUpdateId'), ('deviceId', 'deviceId'), ('', '')])
def test_pascal_case_keys_become_camel_case(key, expected):
    assert camel_key(key) == expected


@pytest.mark.parametrize('value,expected', [
    ('5034122', '5034122'), (5034122, '5034122'), ('KB5034122', '5034122'), (' kb5034122 ', '5034122'),
    (None, None), ('', None), ('RHSA-2024:9315', None), ('USN-7663-1', None), ('ADV 200002', None),
    (True, None), (0, None)])
def test_only_digits_are_a_kb(value, expected):
    assert kb_of(value) == expected


def test_findings_aggregate_per_device_in_either_casing():
    findings = DeviceFindings()
    for record in FLEET:
        findings.add(record)
    assert findings.records == len(FLEET)
    web = findings.device(A)
    assert [(k['kb'], k['cve_addressed'], k['software']) for k in web['missing_kbs']] == [
        ('KB5034122', 2, ['windows_11']), ('KB5034441', 1, ['.net_framework'])]
    assert web['findings_without_kb'] == 1 and web['device_name'] == 'web01.contoso.local'
    assert web['missing_kbs'][0]['name'] == 'Update 5034122' and web['missing_kbs'][0]['url'].endswith('KB5034122')
    db = findings.device(B)
    assert [k['kb'] for k in db['missing_kbs']] == ['KB5034122'] and db['findings_without_kb'] == 1
    assert db['os_platform'] == 'Windows11'  # OSPlatform of the files


def test_a_record_without_a_device_is_an_error():
    with pytest.raises(ResponseError, match='without a deviceId'):
        DeviceFindings().add({'cveId': 'CVE-1'})


def test_json_route_pages_to_the_end_and_aggregates():
    api = ExportApi(FLEET)
    answer = read_export(api, 'json', page_size=3)
    assert api.calls == [('machines/SoftwareVulnerabilitiesByMachine?pageSize=3', 'Vulnerability.Read.All',
                          'vulnerability-export-json')]
    assert answer['records_read'] == len(FLEET) and answer['generated_time'] is None and answer['read_started']
    assert [d['device_id'] for d in answer['devices']] == [B, A, C]  # by name
    assert [(k['kb'], k['machine_missed_on']) for k in answer['missing_kbs']] == [
        ('KB5034122', 2), ('KB5034441', 1), ('KB5034763', 1)]
    assert answer['accept_list'][0] == r'KB5034122(?:\s+KB\d+)*$'


def test_files_route_reads_every_file_once_and_gives_the_snapshot_time():
    api = ExportApi(FLEET, files=3)
    answer = read_export(api, 'files', sas_valid_hours=2)
    assert api.calls == [('machines/SoftwareVulnerabilitiesExport?sasValidHours=2', 'Vulnerability.Read.All',
                          'vulnerability-export-files')]
    assert sorted(api.downloads) == part_names(0, 1, 2)
    assert answer['generated_time'] == '2024-02-20T06:00:00Z' and answer['records_read'] == len(FLEET)
    assert answer['devices'] == read_export(ExportApi(FLEET), 'json')['devices']


def test_an_expired_sas_gets_one_fresh_list_and_reads_no_file_twice():
    api = ExportApi(FLEET, files=3, expire_after=1)
    answer = read_export(api, 'files')
    assert len(api.calls) == 2  # the list, and one fresh list
    assert sorted(api.downloads) == sorted(set(api.downloads)) and len(api.downloads) == 3
    assert answer['records_read'] == len(FLEET)
    assert answer['devices'] == read_export(ExportApi(FLEET), 'json')['devices']


def test_a_newer_export_behind_the_fresh_list_is_read_from_its_start():
    newer = FLEET[:2]  # web01's first two findings: everything else was fixed meanwhile
    api = ExportApi(FLEET, files=3, expire_after=1, newer_export=newer)
    answer = read_export(api, 'files')
    assert api.downloads == part_names(0) + part_names(0, 1, 2, hour='2024-02-20T12')
    assert answer['generated_time'] == '2024-02-20T12:00:00Z' and answer['records_read'] == len(newer)
    assert answer['devices'] == read_export(ExportApi(newer), 'json')['devices']


def test_a_download_that_breaks_off_is_read_again_and_counted_once():
    api = ExportApi(FLEET, files=3, broken=2)
    answer = read_export(api, 'files')
    assert api.downloads == part_names(0, 0, 0, 1, 2) and answer['records_read'] == len(FLEET)
    assert answer['devices'] == read_export(ExportApi(FLEET), 'json')['devices']


def test_a_download_that_keeps_breaking_off_fails_clearly():
    with pytest.raises(DownloadBrokenError, match='file 1 of 3 broke off before its end 3 times in a row'):
        read_export(ExportApi(FLEET, files=3, broken=3), 'files')


def test_a_file_that_is_not_gzip_fails_clearly():
    api = ExportApi(FLEET, files=3)
    api.open_file = lambda url, what: io.BytesIO(b'{"DeviceId": "not gzip"}\n')
    with pytest.raises(ResponseError, match='file 1 of 3: not a valid gzip file'):
        read_export(api, 'files')


def test_links_that_expire_again_fail():
    api = ExportApi(FLEET, files=3, expire_after=1)
    api.get = lambda url, what, permission, resource_id=None, budget=None: {
        'exportFiles': ['https://blob.example/part-%d.json.gz?sig=1' % i for i in range(3)]}
    with pytest.raises(SasExpiredError):
        read_export(api, 'files')


def test_devices_are_kept_by_id_or_name_and_the_unknown_listed():
    answer = read_export(ExportApi(FLEET), 'json', devices=['WEB01.contoso.local', 'db01', C.upper(), 'ghost'])
    assert [d['device_id'] for d in answer['devices']] == [A, B, C]
    assert answer['not_found'] == ['ghost']
    assert answer['resolved'] == {'WEB01.contoso.local': A, 'db01': B, C.upper(): C, 'ghost': None}
    assert [(k['kb'], k['machine_missed_on']) for k in answer['missing_kbs']][0] == ('KB5034122', 2)


def test_a_short_name_of_two_devices_is_an_error_naming_both():
    with pytest.raises(ResponseError, match=r'2 devices answer to the name web01: web01.contoso.local \(a+\), '
                                            r'web01.fabrikam.local \(c+\); give the FQDN, or the device ID'):
        read_export(ExportApi(FLEET), 'json', devices=['web01'])


def test_an_fqdn_that_two_devices_share_is_an_error_naming_both_ids():
    # a device onboarded again: a new ID, the same name; guessing could patch or pass the wrong one
    records = [finding(A, 'ws-dup01.contoso.local', '5034122'), finding(B, 'ws-dup01.contoso.local', '5034441')]
    with pytest.raises(ResponseError, match=r'2 devices answer to the name WS-DUP01.contoso.local: .*\(a+\).*\(b+\); '
                                            r'give the device ID of the one you mean\.'):
        read_export(ExportApi(records), 'json', devices=['WS-DUP01.contoso.local'])
    answer = read_export(ExportApi(records), 'json', devices=[B])  # by its ID: no doubt
    assert [k['kb'] for k in answer['devices'][0]['missing_kbs']] == ['KB5034441']
    assert answer['resolved'] == {B: B}


def test_a_filtered_read_keeps_only_the_devices_it_may_need():
    findings = DeviceFindings(device_filter(['db01']))
    for record in FLEET:
        findings.add(record)
    assert list(findings.devices) == [B] and findings.records == len(FLEET)


@pytest.mark.parametrize('options,message', [
    ({'source': 'csv'}, 'source must be json or files'),
    ({'page_size': 0}, 'page_size must be between 1 and 200000'),
    ({'page_size': 200001}, 'page_size must be between 1 and 200000'),
    ({'sas_valid_hours': 7}, 'sas_valid_hours must be between 1 and 6'),
    ({'devices': ['ok', ' ']}, 'devices'),
])
def test_bad_options_are_refused_before_any_call(options, message):
    api = ExportApi(FLEET)
    with pytest.raises(ConfigurationError, match=message):
        read_export(api, **options)
    assert api.calls == []


def change(device, name, kb, status, when, group, cve='CVE-1'):
    return finding(device, name, kb, cve=cve, status=status, eventTimestamp=when, rbacGroupId=group)


def test_the_delta_gives_new_and_fixed_kbs_with_rbac_moves_cancelled():
    records = [
        change(A, 'web01.contoso.local', '5034765', 'New', '2024-02-19 06:00:00', 1),
        change(A, 'web01.contoso.local', '5034122', 'Fixed', '2024-02-18 06:00:00', 1),
        # web01 moved from group 1 to 2: the same finding Fixed in the old group and New in the new one
        change(A, 'web01.contoso.local', '5034441', 'Fixed', '2024-02-17 00:00:00', 1, cve='CVE-9'),
        change(A, 'web01.contoso.local', '5034441', 'New', '2024-02-17 00:00:00', 2, cve='CVE-9'),
        change(B, 'db01.contoso.local', '5034770', 'Updated', '2024-02-19 12:00:00', 1),
        change(B, 'db01.contoso.local', None, 'New', '2024-02-19 12:00:00', 1),
    ]
    api = ExportApi(records)
    answer = read_changes(api, '2024-02-13T06:00:00Z')
    assert api.calls[0][0] == 'machines/SoftwareVulnerabilityChangesByMachine?pageSize=50000&sinceTime=2024-02-13T06:00:00Z'
    assert answer['records_read'] == len(records) and answer['since'] == '2024-02-13T06:00:00Z'
    assert [(c['device_id'], [k['kb'] for k in c['new_kbs']], [k['kb'] for k in c['fixed_kbs']])
            for c in answer['changes']] == [(A, ['KB5034765'], ['KB5034122'])]
    (web,) = answer['changes']
    assert [(k['cve_addressed'], k['event_time']) for k in web['new_kbs'] + web['fixed_kbs']] == [
        (1, '2024-02-19T06:00:00Z'), (1, '2024-02-18T06:00:00Z')]
    assert web['event_time'] == '2024-02-19T06:00:00Z'
    # the latest KB change seen, of any device (db01's later records change no KB)
    assert answer['latest_event_time'] == '2024-02-19T06:00:00Z'


@pytest.mark.parametrize('first,then', [('Fixed', 'New'), ('New', 'Fixed')])
def test_a_finding_that_changes_back_within_the_range_is_no_change(first, then):
    # fixed and missing again: missing before and now; missing and fixed again: missing neither time
    records = [change(A, 'web01.contoso.local', '5034765', first, '2024-02-18 06:00:00', 1),
               change(A, 'web01.contoso.local', '5034765', then, '2024-02-19 06:00:00', 1),
               change(A, 'web01.contoso.local', '5034122', first, '2024-02-18 06:00:00', 1)]
    answer = read_changes(ExportApi(records), '2024-02-13T06:00:00+00:00')
    (device,) = answer['changes']
    moved = [k['kb'] for k in device['new_kbs' if first == 'New' else 'fixed_kbs']]
    assert moved == ['KB5034122'] and device['new_kbs' if first == 'Fixed' else 'fixed_kbs'] == []


def test_the_delta_refuses_a_time_it_cannot_read():
    with pytest.raises(ConfigurationError, match='since must be an ISO 8601 time'):
        read_changes(ExportApi([]), 'last tuesday')


@pytest.mark.parametrize('source', ['json', 'files'])
def test_a_kept_device_stays_kept_when_a_later_page_or_file_names_it_otherwise(source):
    records = [finding(A, 'web01.contoso.local', '5034122', cve='CVE-1'),
               finding(A, 'web01-renamed.contoso.local', '5034122', cve='CVE-2')]
    answer = read_export(ExportApi(records, page=1, files=2), source, devices=['web01.contoso.local'])
    (device,) = answer['devices']
    assert device['device_id'] == A and device['missing_kbs'][0]['cve_addressed'] == 2

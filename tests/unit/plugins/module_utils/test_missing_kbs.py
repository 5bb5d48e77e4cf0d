# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

import pytest

from ansible_collections.defender.tvm.plugins.module_utils._errors import NotFoundError, ResponseError
from ansible_collections.defender.tvm.plugins.module_utils._missing_kbs import accept_pattern, normalize_kb, query_missing_kbs
from ansible_collections.defender.tvm.tests.unit.helpers import FakeClient

DEVICE_A = 'a' * 40
DEVICE_B = 'b' * 40


def fix(kb, cves, missed=1, products=('windows_11',), name=None):
    return {'id': kb, 'name': name or 'Update %s' % kb, 'productsNames': list(products),
            'url': 'https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB%s' % kb,
            'machineMissedOn': missed, 'cveAddressed': cves}


def test_normalize_adds_the_kb_form_and_snake_case():
    assert normalize_kb(fix('4540673', 14, 240, ['edge'], 'March 2020 Security Updates')) == {
        'id': '4540673', 'kb': 'KB4540673', 'name': 'March 2020 Security Updates', 'products_names': ['edge'],
        'url': 'https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB4540673', 'machine_missed_on': 240,
        'cve_addressed': 14}


def test_normalize_tolerates_prefixes_and_string_numbers():
    record = normalize_kb({'id': 'kb5001', 'machineMissedOn': '3', 'cveAddressed': None})
    assert (record['id'], record['kb'], record['machine_missed_on'], record['cve_addressed']) == ('5001', 'KB5001', 3, 0)
    with pytest.raises(ResponseError, match='without an id'):
        normalize_kb({'name': 'x'})


@pytest.mark.parametrize('match_list,selected', [
    # what win_updates matches against: the title followed by the KB IDs, joined by spaces
    ('2020-03 Security Update for Edge (KB4540673)KB4540673', True),
    ('Security Update (KB4540673)kb4540673', True),                  # case-insensitive, like -imatch
    ('Rollup (KB4540673, KB4540674)KB4540674 KB4540673', True),      # one of several KBs
    ('KB4540673', True),                                             # if matched per KB one day
    ('Update (KB45406730)KB45406730', False),                        # a longer KB
    ('Update without KB4540673 (KB4540700)KB4540700', False),        # a title that mentions it
    ('Update (KB4540673)', False),                                   # the title alone
])
def test_accept_patterns_select_exactly_the_kb(match_list, selected):
    pattern = accept_pattern({'kb': 'KB4540673'})
    assert bool(re.search(pattern, match_list, re.IGNORECASE)) is selected
    assert not re.search(accept_pattern({'kb': 'KB45406'}), 'Update (KB4540673)KB4540673', re.IGNORECASE)


def test_software_answers_are_merged_each_kb_once():
    api = FakeClient(software={
        'microsoft-_-windows_11': [fix('5001', 10, 4), fix('5003', 30, 2)],
        'microsoft-_-.net_framework': [fix('5001', 12, 6, ['.net_framework']), fix('5002', 5, 1, ['.net_framework'])],
        'google-_-chrome': [],
    })
    ids = ['microsoft-_-windows_11', 'microsoft-_-.net_framework', 'google-_-chrome']
    answer = query_missing_kbs(api, software_ids=ids)
    assert [r['software_id'] for r in answer['results']] == ids
    assert [kb['id'] for kb in answer['results'][0]['missing_kbs']] == ['5003', '5001']  # most CVEs first
    merged = dict((kb['id'], kb) for kb in answer['missing_kbs'])
    assert [kb['id'] for kb in answer['missing_kbs']] == ['5003', '5001', '5002']
    assert merged['5001']['software_ids'] == ['microsoft-_-windows_11', 'microsoft-_-.net_framework']
    assert merged['5001']['products_names'] == ['windows_11', '.net_framework']
    assert (merged['5001']['cve_addressed'], merged['5001']['machine_missed_on']) == (12, 6)
    assert answer['accept_list'] == [accept_pattern({'kb': 'KB%s' % n}) for n in ('5003', '5001', '5002')]
    assert answer['not_found'] == []
    for entry in answer['results']:
        assert 'failed' not in entry and 'skipped' not in entry  # Ansible's loop-result keys


def test_unknown_ids_are_all_named_or_listed():
    api = FakeClient(software={'a-_-b': [fix('1', 1)]})
    with pytest.raises(NotFoundError) as err:
        query_missing_kbs(api, software_ids=['x-_-y', 'a-_-b', 'z-_-w'])
    assert 'x-_-y, z-_-w' in str(err.value) and 'ignore_unknown' in str(err.value)
    answer = query_missing_kbs(api, software_ids=['x-_-y', 'a-_-b', 'z-_-w'], ignore_unknown=True)
    assert answer['not_found'] == ['x-_-y', 'z-_-w']
    assert [r['software_id'] for r in answer['results']] == ['a-_-b']


def test_devices_by_id_and_by_name():
    api = FakeClient(machines={DEVICE_A: [fix('7', 3)], DEVICE_B: [fix('7', 3), fix('8', 9)]},
                     listing=[{'id': DEVICE_B, 'computerDnsName': 'srv01.contoso.local'}])
    answer = query_missing_kbs(api, machine_ids=[DEVICE_A, 'SRV01.contoso.local'])
    assert [(r['machine_id'], r['requested'], r['computer_dns_name']) for r in answer['results']] == [
        (DEVICE_A, DEVICE_A, None), (DEVICE_B, 'SRV01.contoso.local', 'srv01.contoso.local')]
    merged = dict((kb['id'], kb) for kb in answer['missing_kbs'])
    assert merged['7']['machine_ids'] == [DEVICE_A, DEVICE_B] and merged['7']['machine_missed_on'] == 2
    assert merged['8']['machine_ids'] == [DEVICE_B] and merged['8']['machine_missed_on'] == 1
    assert 'software_ids' not in merged['7']
    # the names are resolved first, in one listing; a device ID is used as is
    assert [u.split('/api/')[1] for u in api.requested] == [
        "machines?$filter=(computerDnsName%20eq%20'srv01.contoso.local'%20or%20computerDnsName%20eq%20'srv01')",
        'machines/%s/getmissingkbs' % DEVICE_A, 'machines/%s/getmissingkbs' % DEVICE_B]


def test_unknown_device_names_are_not_found():
    api = FakeClient(machines={DEVICE_A: []})
    answer = query_missing_kbs(api, machine_ids=['ghost.contoso.local', DEVICE_A], ignore_unknown=True)
    assert answer['not_found'] == ['ghost.contoso.local']


def test_short_device_names_are_found_through_the_listing():
    api = FakeClient(machines={DEVICE_A: [fix('7', 3)]},
                     listing=[{'id': DEVICE_A, 'computerDnsName': 'web01.contoso.local'},
                              {'id': DEVICE_B, 'computerDnsName': 'web011.contoso.local'}])
    answer = query_missing_kbs(api, machine_ids=['WEB01'])
    assert answer['results'][0]['machine_id'] == DEVICE_A
    assert answer['results'][0]['computer_dns_name'] == 'web01.contoso.local'
    assert "startswith(computerDnsName,'web01.')" in api.requested[0]


@pytest.mark.parametrize('name,way_out', [
    ('web01', 'give the FQDN, or the device ID where devices share the FQDN'),
    ('web01.contoso.local', 'give the device ID of the one you mean')])
def test_a_name_several_devices_answer_to_is_an_error_before_any_kb_is_asked(name, way_out):
    api = FakeClient(machines={DEVICE_A: [fix('7', 3)], DEVICE_B: [fix('8', 3)], 'c' * 40: []},
                     listing=[{'id': DEVICE_A, 'computerDnsName': 'web01.contoso.local'},
                              {'id': DEVICE_B, 'computerDnsName': 'web01.contoso.local'},
                              {'id': 'c' * 40, 'computerDnsName': 'web01.fabrikam.local'}])
    with pytest.raises(ResponseError, match='devices answer to the name %s: .*; %s' % (name, way_out)):
        query_missing_kbs(api, machine_ids=[name, DEVICE_A])
    assert not [url for url in api.requested if 'getmissingkbs' in url]

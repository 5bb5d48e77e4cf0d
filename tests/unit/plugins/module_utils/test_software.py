# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The software inventory's filters checked on what comes back, and the Windows devices' calls.

The ``defender_api`` table (tests/unit/plugins/conftest.py) answers ``GET /api/Software`` by its
path alone: it is a server that ignores ``$filter``, so every answer here is the local check's.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.defender.tvm.plugins.module_utils._client import DefenderClient
from ansible_collections.defender.tvm.plugins.module_utils._software import (
    WINDOWS, inventory_filter, inventory_match, list_inventory, query_software, windows_devices)
from ansible_collections.defender.tvm.plugins.plugin_utils._kb_patching import ask_defender
from ansible_collections.defender.tvm.tests.unit.helpers import make_settings

WIN10, WIN11, SERVER = 'microsoft-_-windows_10', 'microsoft-_-windows_11', 'microsoft-_-windows_server_2022'
OTHERS = ['contoso-_-app_%03d' % i for i in range(40)] + ['microsoft-_-office', 'microsoft-_-edge']


def entity(software_id, vendor=None, name=None):
    own_vendor, own_name = software_id.split('-_-')
    return {'id': software_id, 'name': name or own_name, 'vendor': vendor or own_vendor, 'weaknesses': 1}


def reference(device_id, name):
    return {'id': device_id, 'computerDnsName': name, 'osPlatform': 'Windows11', 'rbacGroupName': 'Workstations'}


@pytest.fixture
def client():
    return DefenderClient(make_settings(max_concurrency=1))


@pytest.fixture
def tenant(defender_api):
    """A tenant with three Windows products among many other software, and a server that ignores $filter
    (it also repeats an ID, as List Software can)."""
    listing = [entity(i) for i in OTHERS[:20]] + [entity(WIN10), entity(SERVER, vendor='Microsoft', name='Windows_Server_2022')]
    listing += [entity(i) for i in OTHERS[20:]] + [entity(WIN11), entity(WIN10)]
    listing.append(entity('contoso-_-windows_tools'))  # starts with "windows", not from microsoft
    defender_api.routes['Software'] = listing
    for index, sid in enumerate((WIN10, WIN11, SERVER)):
        defender_api.routes['Software/%s/machineReferences' % sid] = [reference('%d' % index * 40, 'ws-%d.contoso.local' % index)]
    return defender_api


@pytest.mark.parametrize('clauses, raw, expected', [
    (dict(vendor='microsoft'), {'vendor': 'Microsoft'}, True),  # compared ignoring case, as Defender compares
    (dict(vendor='MICROSOFT', name='Windows_11'), {'vendor': 'microsoft', 'name': 'windows_11'}, True),
    (dict(vendor='microsoft'), {'vendor': 'microsoftx'}, False),  # equality, not a prefix
    (dict(vendor='microsoft'), {'vendor': None}, False),
    (dict(vendor='microsoft'), {}, False),
    (dict(name='edge'), {'name': 'edge_chromium-based'}, False),
    (WINDOWS, {'vendor': 'microsoft', 'name': 'Windows_Server_2022'}, True),
    (WINDOWS, {'vendor': 'microsoft', 'name': 'office'}, False),
    (WINDOWS, {'vendor': 'contoso', 'name': 'windows_tools'}, False),
    (WINDOWS, {'vendor': 'microsoft', 'name': None}, False),
    ({}, {}, True),  # no clause, nothing to check
    (dict(vendor='', name=''), {'vendor': 'contoso'}, True),  # empty values build no clause either
])
def test_inventory_match_checks_the_clauses_the_collection_builds(clauses, raw, expected):
    assert inventory_match(raw, **clauses) is expected


def test_the_filter_sent_is_the_one_checked():
    assert inventory_filter(**WINDOWS) == "vendor eq 'microsoft' and startswith(name,'windows')"
    assert inventory_filter(vendor="o'neil", name='x', odata_filter="contains(name,'y')") == \
        "vendor eq 'o''neil' and name eq 'x' and (contains(name,'y'))"
    assert inventory_filter() is None


def test_a_server_that_ignores_the_filter_gives_the_same_inventory(tenant, client):
    listed = list_inventory(client, vendor='Microsoft', name='WINDOWS_10')
    assert [raw['id'] for raw in listed] == [WIN10]  # once, though listed twice
    assert tenant.paths() == ['Software']
    assert "$filter=vendor eq 'Microsoft' and name eq 'WINDOWS_10'" in tenant.query(tenant.requests[0])
    answer = query_software(client, vendor='microsoft')
    assert [entry['id'] for entry in answer['software']] == [WIN10, SERVER, 'microsoft-_-office', 'microsoft-_-edge', WIN11]


def test_a_users_own_odata_filter_is_left_to_the_server(tenant, client):
    answer = query_software(client, odata_filter="startswith(name,'windows')")
    assert len(answer['software']) == len(OTHERS) + 4  # nothing to check it with: what the server sent, once each
    assert "$filter=(startswith(name,'windows'))" in tenant.query(tenant.requests[0])
    answer = query_software(client, vendor='contoso', odata_filter="startswith(name,'windows')")
    assert len(answer['software']) == 41  # the vendor is still checked


def test_windows_devices_ask_only_the_windows_products(tenant, client):
    devices = windows_devices(client)
    assert sorted(tenant.paths()) == sorted(['Software'] + ['Software/%s/machineReferences' % s for s in (WIN10, WIN11, SERVER)])
    assert [d['computer_dns_name'] for d in devices] == ['ws-0.contoso.local', 'ws-2.contoso.local', 'ws-1.contoso.local']
    assert "$filter=vendor eq 'microsoft' and startswith(name,'windows')" in tenant.query(tenant.requests[0])


def test_windows_devices_reuse_the_references_already_read(tenant, client):
    known = [{'id': 'f' * 40, 'computer_dns_name': 'ws-known.contoso.local', 'os_platform': 'Windows11',
              'rbac_group_name': None}]
    devices = windows_devices(client, {WIN11: known, 'microsoft-_-office': []})
    assert sorted(tenant.paths()) == sorted(['Software'] + ['Software/%s/machineReferences' % s for s in (WIN10, SERVER)])
    assert [d['computer_dns_name'] for d in devices] == ['ws-0.contoso.local', 'ws-2.contoso.local', 'ws-known.contoso.local']


def test_windows_devices_of_a_tenant_without_windows_is_one_call(defender_api, client):
    defender_api.routes['Software'] = [entity(i) for i in OTHERS]
    assert windows_devices(client, {WIN11: []}) == []
    assert defender_api.paths() == ['Software']


def test_the_software_strategy_reads_a_queried_windows_devices_once(tenant, client):
    """kb_patching_software_ids: [microsoft-_-windows_11] and a host no reference names: the Windows
    devices are looked up, without reading Windows 11's devices a second time."""
    tenant.routes['Software/%s/getmissingkbs' % WIN11] = []
    plan = ask_defender(client, 'software', {'ws': 'ws-1', 'other': 'ws-0.contoso.local', 'new': 'brand-new-host'},
                        software_ids=[WIN11])
    assert sorted(tenant.paths()) == sorted(['Software/%s/getmissingkbs' % WIN11, 'Software'] + [
        'Software/%s/machineReferences' % s for s in (WIN11, WIN10, SERVER)])
    assert plan['hosts']['ws']['in_defender'] and plan['hosts']['other']['in_defender']  # a Windows 10 device
    assert not plan['hosts']['new']['in_defender']

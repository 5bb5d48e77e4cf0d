# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

import pytest

from ansible_collections.defender.tvm.plugins.module_utils._devices import (
    DeviceIndex,
    SharedNameError,
    find_named_devices,
    host_names,
    machine_index,
)
from ansible_collections.defender.tvm.plugins.module_utils._errors import ResponseError
from ansible_collections.defender.tvm.tests.unit.helpers import FakeClient

A, B, C, D, E = ('a' * 40, 'b' * 40, 'c' * 40, 'd' * 40, 'e' * 40)
MACHINES = [
    {'id': A, 'computerDnsName': 'web01.contoso.local', 'lastSeen': '2024-02-20T05:00:00Z'},
    {'id': B, 'computerDnsName': 'web01.fabrikam.local', 'lastSeen': '2024-02-19T05:00:00Z'},
    {'id': C, 'computerDnsName': 'db01', 'lastSeen': '2024-02-19T05:00:00Z'},
    # onboarded again: the old device (D) keeps the name beside the new one (E)
    {'id': D, 'computerDnsName': 'ws-dup01.contoso.local', 'lastSeen': '2024-01-30T05:00:00Z'},
    {'id': E, 'computerDnsName': 'ws-dup01.contoso.local', 'lastSeen': '2024-02-20T04:00:00Z'},
]


@pytest.mark.parametrize('name,expected', [
    ('WEB01.contoso.local', A), ('web01.fabrikam.local', B), ('db01.contoso.local', C), ('DB01', C),
    (A.upper(), A), ('ghost', None), ('web01.example.org', None), ('f' * 40, None)])
def test_a_name_or_id_resolves_to_its_one_device(name, expected):
    found = machine_index(MACHINES).resolve(name)
    assert (found and found['id']) == expected


def test_a_short_name_of_devices_in_two_domains_says_give_the_fqdn():
    with pytest.raises(SharedNameError) as caught:
        machine_index(MACHINES).resolve('web01')
    assert isinstance(caught.value, ResponseError)
    assert str(caught.value).startswith(
        '2 devices answer to the name web01: web01.contoso.local (%s, last seen 2024-02-20T05:00:00Z), '
        'web01.fabrikam.local (%s, last seen 2024-02-19T05:00:00Z); give the FQDN, or the device ID where devices '
        'share the FQDN' % (A, B))


@pytest.mark.parametrize('name', ['ws-dup01.contoso.local', 'WS-DUP01'])
def test_a_name_two_devices_share_says_give_the_device_id_not_the_fqdn(name):
    with pytest.raises(SharedNameError) as caught:
        machine_index(MACHINES).resolve(name, id_hint="the device ID as the host's kb_patching_device_name")
    text = str(caught.value)
    assert '2 devices answer to the name %s' % name in text
    assert D in text and E in text
    assert "give the device ID as the host's kb_patching_device_name of the one you mean" in text
    assert 'FQDN' not in text


def test_every_shared_name_is_named_at_once_before_any_is_used():
    with pytest.raises(SharedNameError) as caught:
        machine_index(MACHINES).resolve_all(['db01', 'web01', 'ws-dup01.contoso.local', 'ghost'])
    assert sorted(caught.value.conflicts) == ['web01', 'ws-dup01.contoso.local']
    assert sorted(d[0] for d in caught.value.conflicts['ws-dup01.contoso.local']) == [D, E]


def test_many_shared_names_are_counted_past_the_first_ten():
    index = DeviceIndex((('%040x' % i), 'h%02d.x.local' % (i // 2), None, i) for i in range(30))
    with pytest.raises(SharedNameError) as caught:
        index.resolve_all(['h%02d' % i for i in range(15)])
    assert str(caught.value).count('devices answer to the name') == 10
    assert '(and 5 more names)' in str(caught.value)


def test_resolve_all_answers_each_name_and_counts_an_id_listed_twice_once():
    index = DeviceIndex([(A, 'web01.contoso.local', None, 'first'), (A.upper(), 'web01.contoso.local', None, 'again')])
    assert len(index) == 1
    assert index.resolve_all(['web01', A, 'nope']) == {'web01': 'first', A: 'first', 'nope': None}


def test_find_named_devices_checks_what_defender_lists():
    # a server that ignores the $filter lists every device: the index still matches exactly
    client = FakeClient(listing=MACHINES)
    index = find_named_devices(client, ['web01.contoso.local', C, 'db01'])
    assert index.resolve('web01.contoso.local')['id'] == A
    assert index.resolve('db01')['id'] == C
    listing = [url for url in client.requested if '/api/machines' in url]
    assert len(listing) == 1  # two names (the ID needs no listing) in one filtered listing
    assert re.search(r"computerDnsName%20eq%20'web01.contoso.local'%20or%20computerDnsName%20eq%20'web01'", listing[0])
    assert "startswith(computerDnsName,'db01.')" in listing[0]


def test_find_named_devices_lists_twelve_names_per_call_and_none_for_ids_only():
    client = FakeClient(listing=MACHINES)
    find_named_devices(client, ['host%02d' % i for i in range(25)])
    assert len([url for url in client.requested if '/api/machines' in url]) == 3
    client = FakeClient(listing=MACHINES)
    assert len(find_named_devices(client, [A, B])) == 0
    assert client.requested == []


def test_host_names_give_a_shared_name_to_the_device_seen_last():
    entries = [([m['computerDnsName'], m['id']], m['id'], m['lastSeen'], m['id']) for m in MACHINES]
    entries.append(([None, 'f' * 40], 'f' * 40, None, 'f' * 40))   # no computer name: named by its ID
    named, warnings = host_names(entries)
    assert dict(named) == {'web01.contoso.local': A, 'web01.fabrikam.local': B, 'db01': C,
                           'ws-dup01.contoso.local': E, 'ws-dup01.contoso.local_%s' % D: D, 'f' * 40: 'f' * 40}
    assert warnings == ['2 devices are named ws-dup01.contoso.local; the one seen last (%s) keeps the name, the others '
                        'are ws-dup01.contoso.local_%s. Name hosts by device ID (hostnames: [id]) with compose: '
                        '{ansible_host: mde_computer_dns_name} to avoid this.' % (E, D)]

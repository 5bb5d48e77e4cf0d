# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.defender.tvm.plugins.module_utils.client import DefenderClient
from ansible_collections.defender.tvm.plugins.module_utils.errors import ConfigurationError, NotFoundError, ResponseError
from ansible_collections.defender.tvm.plugins.module_utils.devices import list_devices
from ansible_collections.defender.tvm.tests.unit.conftest import make_settings


def machine(index, name):
    return {'id': '%040x' % index, 'computerDnsName': name, 'osPlatform': 'Windows11', 'healthStatus': 'Active',
            'rbacGroupName': 'Workstations', 'machineTags': ['t%d' % index]}


class Listing(DefenderClient):
    """The real client with the machine listing served from a list, paged with $top/$skip."""

    def __init__(self, machines, status=None):
        super(Listing, self).__init__(make_settings(max_concurrency=1))
        self.machines = machines
        self.status = status
        self.urls = []

    def get(self, url, what, permission, resource_id=None):
        self.urls.append(url)
        if self.status == 404:
            raise NotFoundError('no machines', None)
        query = dict(part.split('=', 1) for part in url.split('?', 1)[1].split('&'))
        top, skip = int(query['$top']), int(query.get('$skip', 0))
        assert permission == 'Machine.Read.All'
        return {'value': self.machines[skip:skip + top]}


FLEET = [machine(1, 'ws-0001.contoso.local'), machine(2, 'ws-0002.contoso.local'), machine(3, 'web01.contoso.local'),
         machine(4, 'web01.fabrikam.local'), machine(5, 'SRV-SQL01.contoso.local')]


def test_every_device_paged_with_top_and_skip():
    api = Listing(FLEET)
    result = list_devices(api, page_size=2)
    assert [d['computer_dns_name'] for d in result['devices']] == [m['computerDnsName'] for m in FLEET]
    assert result['not_found'] == []
    assert [u.split('?', 1)[1] for u in api.urls] == ['$top=2', '$skip=2&$top=2', '$skip=4&$top=2']
    assert result['devices'][0] == {
        'id': '%040x' % 1, 'computer_dns_name': 'ws-0001.contoso.local', 'os_platform': 'Windows11',
        'os_version': None, 'health_status': 'Active', 'onboarding_status': None, 'last_seen': None,
        'rbac_group_id': None, 'rbac_group_name': 'Workstations', 'machine_tags': ['t1']}


def test_names_keep_their_devices_in_any_form_and_list_the_unknown():
    result = list_devices(Listing(FLEET), names=['WS-0001', 'ws-0002.contoso.local', 'srv-sql01', '%040X' % 3,
                                                 'ws-0001.contoso.local', 'ghost', 'f' * 40])
    assert [d['id'] for d in result['devices']] == ['%040x' % i for i in (1, 2, 3, 5)]
    assert result['not_found'] == ['ghost', 'f' * 40]


def test_one_listing_whatever_the_number_of_names():
    api = Listing(FLEET)
    list_devices(api, names=['ws-%04d' % i for i in range(500)])
    assert len(api.urls) == 1


def test_an_ambiguous_short_name_names_both_devices():
    with pytest.raises(ResponseError, match=r'web01 matches several devices \(web01.contoso.local, web01.fabrikam.local\)'):
        list_devices(Listing(FLEET), names=['web01'])
    assert list_devices(Listing(FLEET), names=['web01.fabrikam.local'])['devices'][0]['id'] == '%040x' % 4


def test_no_device_at_all_is_an_empty_listing():
    assert list_devices(Listing([], status=404), names=['ws-0001']) == {'devices': [], 'not_found': ['ws-0001']}


def test_bad_names_are_refused_before_any_call():
    api = Listing(FLEET)
    with pytest.raises(ConfigurationError):
        list_devices(api, names=['ok', ' '])
    assert api.urls == []

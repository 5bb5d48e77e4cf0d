# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.defender.tvm.plugins.module_utils._devices import DeviceNames, name_candidates, only_device
from ansible_collections.defender.tvm.plugins.module_utils._errors import ResponseError

DEVICES = {'web01.contoso.local': {'id': 'a', 'computerDnsName': 'web01.contoso.local'},
           'web01.fabrikam.local': {'id': 'b', 'computerDnsName': 'web01.fabrikam.local'},
           'db01': {'id': 'c', 'computerDnsName': 'db01'}}


@pytest.mark.parametrize('name,expected', [
    ('WEB01.contoso.local', ['a']), ('web01', ['a', 'b']), ('db01.contoso.local', ['c']), ('DB01', ['c']),
    ('ghost', []), ('web01.example.org', [])])
def test_names_find_their_devices_as_fqdn_or_short_name(name, expected):
    assert sorted(d['id'] for d in name_candidates(name, DEVICES)) == expected
    # an index built once for many names answers the same
    assert sorted(d['id'] for d in name_candidates(name, DeviceNames(DEVICES))) == expected


def test_an_ambiguous_short_name_names_both_devices():
    with pytest.raises(ResponseError, match=r'The name web01 matches 2 devices \(web01.contoso.local \(a\), '
                                            r'web01.fabrikam.local \(b\)\); give the FQDN or the device ID'):
        only_device('web01', name_candidates('web01', DEVICES))
    assert only_device('ghost', []) is None
    assert only_device('db01', name_candidates('db01', DEVICES))['id'] == 'c'

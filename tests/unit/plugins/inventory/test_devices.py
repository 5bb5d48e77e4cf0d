# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The defender.tvm.devices inventory plugin, loaded by Ansible's plugin loader, parsing a real
inventory file into a real InventoryData, with the API stubbed (``defender_api``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
import yaml

from ansible.errors import AnsibleError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from ansible.template import Templar
from ansible.utils.display import Display

from ansible_collections.defender.tvm.plugins.inventory import devices as plugin_module
from ansible_collections.defender.tvm.plugins.module_utils._errors import PermissionDeniedError

pytestmark = pytest.mark.usefixtures('clean_environment')

CREDENTIALS = dict(tenant_id='11111111-2222-3333-4444-555555555555', client_id='aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
                   client_secret='unit-client-secret-value')
A, B, C, D = 'a' * 40, 'b' * 40, 'c' * 40, 'd' * 40


def machine(mid, name, os_platform='Windows11', tags=(), last_seen='2024-02-20T01:00:00Z', **extra):
    entity = {'id': mid, 'computerDnsName': name, 'osPlatform': os_platform, 'version': '23H2',
              'healthStatus': 'Active', 'exposureLevel': 'High', 'riskScore': 'Medium', 'machineTags': list(tags),
              'rbacGroupName': 'Workstations', 'lastSeen': last_seen, 'lastIpAddress': '10.0.0.%d' % (ord(mid[0]) % 50)}
    entity.update(extra)
    return entity


MACHINES = [
    machine(A, 'web01.contoso.local', tags=['Prod', '{{ 7 * 6 }}']),
    machine(B, 'ws-dup01.contoso.local', last_seen='2024-02-19T01:00:00Z'),
    machine(C, 'ws-dup01.contoso.local', last_seen='2024-02-20T05:00:00Z', os_platform='Windows10'),
    machine(D, None, machineTags=None),
]
EXPORT = {'devices': [
    {'device_id': A, 'missing_kbs': [{'kb': 'KB5034765', 'cve_addressed': 9}, {'kb': 'KB5034441', 'cve_addressed': 2}]},
    {'device_id': C, 'missing_kbs': [{'kb': 'KB5034441', 'cve_addressed': 1}]},
]}


@pytest.fixture
def exports(monkeypatch):
    """The export reads the plugin makes (source), answered with EXPORT."""
    calls = []

    def read_export(client, source='json', **kwargs):
        calls.append(source)
        return EXPORT
    monkeypatch.setattr(plugin_module, 'read_export', read_export)
    return calls


@pytest.fixture
def parse(defender_api, tmp_path):
    """``parse(config, name=..., cache=True)``: a fresh plugin parses ``config`` written to a file."""
    defender_api.routes['machines'] = MACHINES

    def run(config, name='fleet.defender_devices.yml', cache=True):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(dict({'plugin': 'defender.tvm.devices'}, **config)))
        inventory, plugin = InventoryData(), inventory_loader.get('defender.tvm.devices')
        assert plugin.verify_file(str(path))
        plugin.parse(inventory, DataLoader(), str(path), cache=cache)
        if getattr(plugin, '_cache', None):  # as Ansible's InventoryManager does after parse
            plugin.update_cache_if_changed()
        return inventory, plugin
    return run


def hostvars(inventory, name):
    return inventory.get_host(name).get_vars()


@pytest.mark.parametrize('name,accepted', [
    ('fleet.defender_devices.yml', True), ('fleet.defender_devices.yaml', True), ('defender_devices.yml', True),
    ('fleet.yml', False), ('fleet.defender_devices.json', False), ('defender_devices.yml.bak', False)])
def test_verify_file_accepts_only_its_suffix_and_never_raises(tmp_path, name, accepted):
    path = tmp_path / name
    path.write_text('plugin: defender.tvm.devices\n')
    plugin = inventory_loader.get('defender.tvm.devices')
    assert plugin.verify_file(str(path)) is accepted
    assert plugin.verify_file(str(tmp_path / 'missing.defender_devices.yml')) is False


def test_devices_become_hosts_with_their_facts_groups_and_device_id(parse, exports, defender_api):
    inventory, dummy = parse(dict(CREDENTIALS, missing_kbs=True, keyed_groups=[
        {'key': "mde_missing_kbs | map('lower') | list", 'prefix': 'missing'}, {'key': 'mde_os_platform', 'prefix': 'os'}],
        groups={'needs_patching': 'mde_missing_kb_count > 0'}, compose={'ansible_host': 'mde_last_ip_address'}))
    assert sorted(inventory.hosts) == sorted(['web01.contoso.local', 'ws-dup01.contoso.local',
                                              'ws-dup01.contoso.local_' + B, D])
    web = hostvars(inventory, 'web01.contoso.local')
    assert web['mde_device_id'] == A and web['kb_patching_device_name'] == A
    assert web['mde_missing_kbs'] == ['KB5034765', 'KB5034441'] and web['mde_missing_kb_count'] == 2
    assert (web['mde_os_platform'], web['mde_os_version'], web['mde_exposure_level'], web['mde_risk_score']) == (
        'Windows11', '23H2', 'High', 'Medium')
    assert web['ansible_host'] == web['mde_last_ip_address'] == '10.0.0.47'
    assert hostvars(inventory, D)['mde_machine_tags'] == [] and hostvars(inventory, D)['mde_missing_kbs'] == []
    groups = inventory.groups
    assert sorted(h.name for h in groups['missing_kb5034441'].get_hosts()) == ['web01.contoso.local', 'ws-dup01.contoso.local']
    assert [h.name for h in groups['missing_kb5034765'].get_hosts()] == ['web01.contoso.local']
    assert sorted(h.name for h in groups['needs_patching'].get_hosts()) == ['web01.contoso.local', 'ws-dup01.contoso.local']
    assert sorted(h.name for h in groups['os_Windows11'].get_hosts()) == sorted(['web01.contoso.local', 'ws-dup01.contoso.local_' + B, D])
    assert exports == ['json'] and defender_api.paths() == ['machines']


def test_the_device_seen_last_keeps_a_shared_name_and_a_warning_says_so(parse, exports, monkeypatch):
    warnings = []
    monkeypatch.setattr(Display, 'warning', lambda self, message, *args, **kwargs: warnings.append(message))
    inventory, dummy = parse(CREDENTIALS)
    assert hostvars(inventory, 'ws-dup01.contoso.local')['mde_device_id'] == C  # seen last
    assert hostvars(inventory, 'ws-dup01.contoso.local_' + B)['mde_device_id'] == B
    assert len(warnings) == 1 and '2 devices are named ws-dup01.contoso.local' in warnings[0]
    assert 'mde_missing_kbs' not in hostvars(inventory, 'web01.contoso.local') and exports == []


def test_hostnames_are_tried_in_order(parse, exports):
    inventory, dummy = parse(dict(CREDENTIALS, hostnames=['aadDeviceId', 'lastIpAddress', 'id']))
    assert sorted(inventory.hosts) == sorted(m['lastIpAddress'] for m in MACHINES)  # no device has an aadDeviceId
    inventory, dummy = parse(dict(CREDENTIALS, hostnames=['id']))
    assert sorted(inventory.hosts) == [A, B, C, D]


def test_values_from_defender_are_never_rendered(parse, exports):
    inventory, dummy = parse(CREDENTIALS)
    tags = hostvars(inventory, 'web01.contoso.local')['mde_machine_tags']
    templar = Templar(loader=DataLoader(), variables={'tags': tags})
    assert templar.template(tags[1]) == '{{ 7 * 6 }}'


def test_the_filter_goes_to_the_api_as_given(parse, exports, defender_api):
    parse(dict(CREDENTIALS, filter="machineTags/any(tag: tag eq 'Prod')"))
    assert defender_api.query(defender_api.requests[0]) == "$filter=machineTags/any(tag: tag eq 'Prod')"


def test_no_device_is_an_empty_inventory(parse, exports, defender_api):
    del defender_api.routes['machines']  # the API's 404 for "no device"
    inventory, dummy = parse(CREDENTIALS)
    assert list(inventory.hosts) == []


def test_a_templated_secret_is_rendered_before_any_call(parse, exports, client_settings):
    parse(dict(CREDENTIALS, client_secret="{{ 'unit-' ~ 'rendered-secret' }}"))
    assert client_settings[0].client_secret == 'unit-rendered-secret'


def test_errors_name_the_permission(parse, exports, defender_api):
    defender_api.routes['machines'] = PermissionDeniedError('Listing devices was denied (HTTP 403): needs Machine.Read.All')
    with pytest.raises(AnsibleError, match='Machine.Read.All'):
        parse(CREDENTIALS)


def test_the_cache_is_read_when_asked_and_written_only_after_a_fetch(parse, exports, defender_api, tmp_path):
    config = dict(CREDENTIALS, missing_kbs=True, cache=True, cache_plugin='ansible.builtin.jsonfile',
                  cache_connection=str(tmp_path / 'cache'))
    first, dummy = parse(config)
    defender_api.routes['machines'] = AssertionError('the cache must answer')
    second, dummy = parse(config)
    assert sorted(second.hosts) == sorted(first.hosts) and exports == ['json']
    assert hostvars(second, 'web01.contoso.local')['mde_missing_kbs'] == ['KB5034765', 'KB5034441']
    with pytest.raises(AssertionError, match='the cache must answer'):
        parse(config, cache=False)  # a refresh (--flush-cache) asks Defender again

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
    tags = hostvars(second, 'web01.contoso.local')['mde_machine_tags']  # read back from the cache file
    assert Templar(loader=DataLoader(), variables={'tags': tags}).template(tags[1]) == '{{ 7 * 6 }}'  # still never rendered
    with pytest.raises(AssertionError, match='the cache must answer'):
        parse(config, cache=False)  # a refresh (--flush-cache) asks Defender again


# -- grouping without templates: the same inventory as Constructable's templates --------------------
# These parse through ansible-core's InventoryManager, as ansible-inventory and ansible-playbook do:
# on ansible-core 2.19 and later it tags every variable an inventory plugin sets with where it came
# from (its Origin), and a value so tagged is what a template returns as it is.

try:  # ansible-core >= 2.19: the inventory file's expressions are trusted templates; values carry tags
    from ansible.template import trust_as_template
    from ansible._internal._datatag._tags import Origin
    from ansible.module_utils._internal._datatag import AnsibleTagHelper
except ImportError:  # ansible-core 2.16 to 2.18: every string may be a template
    trust_as_template = Origin = AnsibleTagHelper = None

from ansible.inventory.manager import InventoryManager
from ansible.plugins.inventory import Constructable
from ansible.utils.unsafe_proxy import wrap_var

WITHOUT_TEMPLATES = plugin_module.ORIGIN_ONLY is not None  # ansible-core 2.19 and later

# Devices whose values a group name has to be made of: names to sanitise, templates (unsafe),
# strings an older Jinja would turn into lists, empty and missing values, lists of them.
# (Not 'True' as a key: ansible-core 2.16's template makes it a boolean, and keyed_groups fails on it.)
ODD_MACHINES = [
    machine(A, 'odd01.contoso.local', os_platform='Windows 11 / Pro-ü', tags=['Prod', '{{ 7 * 6 }}', '', 'a b']),
    machine(B, 'odd02.contoso.local', os_platform='{{ lookup("pipe", "id") }}', tags=[], exposureLevel='',
            riskScore=None),
    machine(C, 'odd03.contoso.local', os_platform='Windows 10', tags=['[1, 2]', '{"a": 1}', 'True'], exposureLevel='[1, 2]',
            riskScore='None', rbacGroupName='{{ x }}'),
    machine(D, 'odd04.contoso.local', os_platform='', machineTags=None, exposureLevel='Low', riskScore='',
            rbacGroupName=None, lastIpAddress=None),
    machine('e' * 40, 'odd05.contoso.local', os_platform=None, tags=['Prod'], version='10.0.1'),
]
ODD_EXPORT = {'devices': [
    {'device_id': A, 'missing_kbs': [{'kb': 'KB5034765'}, {'kb': 'KB5034441'}]},
    {'device_id': B, 'missing_kbs': [{'kb': 'KB50-34 441'}, {'kb': 'KB{{ 7 * 6 }}'}]},
    {'device_id': C, 'missing_kbs': [{'kb': 'KB5034441'}, {'kb': 'kbÄ1'}]},
]}
# Every keyed_groups option: prefix, separator, default_value, trailing_separator, parent_group
# (plain and templated), lists, empty values, a key with spaces around it, keys that need a template.
KEYED_GROUPS = [
    {'key': 'mde_os_platform', 'prefix': 'os'},
    {'key': 'mde_os_platform'},
    {'key': ' mde_exposure_level ', 'prefix': 'exposure', 'separator': '-', 'default_value': 'unknown'},
    {'key': 'mde_risk_score', 'prefix': 'risk', 'trailing_separator': False},
    {'key': 'mde_machine_tags', 'prefix': 'tag', 'default_value': 'untagged', 'parent_group': 'tags'},
    {'key': 'mde_machine_tags', 'prefix': 'tag2', 'separator': '', 'parent_group': "{{ mde_os_version }}-parent"},
    {'key': 'mde_rbac_group_name', 'prefix': 'rbac', 'parent_group': 'rbac groups'},
    {'key': 'platform_and_risk', 'prefix': 'pr'},  # a dict (composed): a template
    {'key': 'platform_and_risk', 'prefix': 'pr2', 'default_value': 'none'},
    {'key': 'copied_tags', 'prefix': 'copy'},      # a list composed from a variable's name
    {'key': 'mde_os_platform | lower', 'prefix': 'lower'},
    {'key': 'mde_computer_dns_name.split(".")[0]', 'prefix': 'short'},
    {'key': 'no_such_variable', 'prefix': 'nothing'},
]
COMPOSE = {'ansible_host': 'mde_last_ip_address', 'copied_tags': 'mde_machine_tags', 'no_ip': 'mde_rbac_group_name',
           'platform_and_risk': "{'platform': mde_os_platform, 'risk': mde_risk_score or ''}",
           'true_text': "'True'", 'literal_none': 'none', 'from_missing': 'no_such_variable',
           'count_copy': 'mde_missing_kb_count'}
# the constructed expressions that are a variable's name (read without a template on ansible-core 2.19+)
VARIABLE_NAMES = ('mde_os_platform', ' mde_exposure_level ', 'mde_risk_score', 'mde_machine_tags', 'mde_rbac_group_name',
                  'copied_tags', 'mde_last_ip_address', 'mde_missing_kb_count')


def described(value):
    """A value with its type and, on ansible-core 2.19+, its tags (a template's result may carry its own)."""
    if isinstance(value, list):
        value = [described(item) for item in value]
    return (type(value).__name__, value, AnsibleTagHelper.tags(value) if AnsibleTagHelper else None)


def snapshot(manager):
    """Hosts with their variables (described; group_names as names, which carry the Origin of the option that
    named them) and groups with their hosts and children."""
    return {
        'hosts': dict((name, dict((key, sorted(str(g) for g in value) if key == 'group_names' else described(value))
                                  for key, value in host.get_vars().items()))
                      for name, host in manager.hosts.items()),
        'groups': dict((name, (sorted(h.name for h in group.hosts), sorted(g.name for g in group.child_groups)))
                       for name, group in manager.groups.items()),
    }


def assert_same(fast, templated):
    """The two ways' outcomes are equal; the first difference is named if not."""
    if isinstance(fast['outcome'], dict) and isinstance(templated['outcome'], dict):
        for kind in ('hosts', 'groups'):
            for name in set(fast['outcome'][kind]) | set(templated['outcome'][kind]):
                assert fast['outcome'][kind].get(name) == templated['outcome'][kind].get(name), (kind, name)
    assert fast['outcome'] == templated['outcome'] and fast['warnings'] == templated['warnings']


@pytest.fixture
def both_ways(defender_api, monkeypatch, tmp_path):
    """``both_ways(config)``: parse ``config`` through an InventoryManager twice, reading a variable's name
    without a template where the plugin can, then with Constructable's templates for every entry; for each,
    the inventory (or the plugin's error), the warnings and the expressions given to Constructable._compose."""
    defender_api.routes['machines'] = ODD_MACHINES
    monkeypatch.setattr(plugin_module, 'read_export', lambda client, source='json', **kwargs: ODD_EXPORT)
    composed, errors = [], []
    original_compose, original_parse = Constructable._compose, plugin_module.InventoryModule.parse

    def counted(self, template, variables, *args, **kwargs):
        composed.append(str(template))
        return original_compose(self, template, variables, *args, **kwargs)

    def parse(self, *args, **kwargs):
        try:
            return original_parse(self, *args, **kwargs)
        except AnsibleError as exc:  # InventoryManager makes a warning of it
            errors.append((type(exc).__name__, str(exc)))
            raise
    monkeypatch.setattr(Constructable, '_compose', counted)
    monkeypatch.setattr(plugin_module.InventoryModule, 'parse', parse)

    def run(config):
        path = tmp_path / 'fleet.defender_devices.yml'
        path.write_text(yaml.safe_dump(dict({'plugin': 'defender.tvm.devices'}, **dict(CREDENTIALS, **config))))
        results = []
        for templates_only in (False, True):
            warnings = []
            with monkeypatch.context() as patch:
                patch.setattr(Display, 'warning', lambda self, message, *a, **k: warnings.append(message))
                if templates_only:
                    patch.setattr(plugin_module, 'ORIGIN_ONLY', None)
                del composed[:], errors[:]
                manager = InventoryManager(loader=DataLoader(), sources=[str(path)])
                outcome = errors[0] if errors else snapshot(manager)
            results.append({'outcome': outcome, 'warnings': warnings, 'templated': list(composed)})
        return results
    return run


@pytest.mark.parametrize('options', [
    {},
    {'leading_separator': False},
    {'use_extra_vars': True},
], ids=['default', 'no-leading-separator', 'use-extra-vars'])
def test_keyed_groups_and_compose_without_templates_give_what_the_templates_give(both_ways, options):
    config = dict(options, missing_kbs=True, keyed_groups=KEYED_GROUPS, compose=COMPOSE,
                  groups={'windows': True, 'high': "mde_exposure_level == 'High'"})
    fast, templated = both_ways(config)
    assert_same(fast, templated)
    assert isinstance(fast['outcome'], dict), fast['outcome']
    groups = fast['outcome']['groups']
    assert groups['os_Windows_11___Pro_ü'][0] == ['odd01.contoso.local']  # sanitised as constructed does
    assert groups['tag_untagged'][0] == ['odd01.contoso.local']  # its empty tag; an empty list makes no group
    assert 'tag_42' not in groups and 'tag____7___6___' in groups  # never rendered
    assert groups['tags'][1] and groups['_3H2_parent'][1] and groups['_0_0_1_parent'][1]  # parent groups, plain and templated
    odd01 = fast['outcome']['hosts']['odd01.contoso.local']
    assert [item[1] for item in odd01['copied_tags'][1]] == ['Prod', '{{ 7 * 6 }}', '', 'a b'] == [
        item[1] for item in odd01['mde_machine_tags'][1]]
    if WITHOUT_TEMPLATES and not options.get('use_extra_vars'):
        assert not set(fast['templated']) & set(VARIABLE_NAMES)  # none of them was a template
        assert set(templated['templated']) >= set(VARIABLE_NAMES)
    else:  # before ansible-core 2.19, or with use_extra_vars: every entry is a template
        assert fast['templated'] == templated['templated']


@pytest.mark.parametrize('config', [
    {'strict': True, 'keyed_groups': [{'key': 'mde_os_platform', 'prefix': 'os'}, {'key': 'no_such_variable'}]},
    {'strict': True, 'compose': {'x': 'no_such_variable'}},
    {'strict': True, 'keyed_groups': [{'key': 'mde_risk_score', 'prefix': 'risk'}]},      # None for one device
    {'strict': False, 'keyed_groups': [{'key': 'mde_missing_kb_count'}]},                 # a number is no group name
    {'strict': True, 'keyed_groups': [{'key': 'mde_os_platform', 'default_value': 'x', 'trailing_separator': False}]},
], ids=['strict-undefined', 'strict-compose-undefined', 'strict-empty', 'int-key', 'exclusive-options'])
def test_errors_without_templates_are_the_errors_of_the_templates(both_ways, config):
    fast, templated = both_ways(dict(config, missing_kbs=True))
    assert_same(fast, templated)
    assert isinstance(fast['outcome'], tuple), fast['outcome']  # an error, the same


VALUES = ['Windows11', '', '{{ 7 * 6 }}', 'True', '[1, 2]', '{"a": 1}', 'ü', None, 0, 3, 2.5, True, False,
          ['a', '{{ x }}', ''], [], [1, None, 'b', True], [['nested']], {'a': 1}, ('a',), wrap_var(['{{ 1 }}'])]


@pytest.mark.parametrize('value', VALUES, ids=repr)
@pytest.mark.parametrize('expression', ['value', ' value ', 'value|string', 'true', 'None', 'omit', 'range', 'no_value'])
@pytest.mark.parametrize('tagged', [True, False], ids=['with-origin', 'untagged'])
def test_a_variable_name_is_read_as_a_template_reads_it(parse, exports, value, expression, tagged):
    """_compose against Constructable's, one expression and value at a time: with the Origin ansible-core 2.19+
    gives every inventory variable (then the plugin reads names without a template), and without one."""
    dummy, plugin = parse(CREDENTIALS)
    if tagged and Origin is not None:
        value = Origin(description='<inventory plugin>').try_tag(
            [Origin(description='<inventory plugin>').try_tag(item) for item in value] if isinstance(value, list) else value)
    variables = {'value': value, 'omit': value, 'range': value, 'other': 'x'}
    if trust_as_template is not None:
        expression = Origin(path='/inventory.defender_devices.yml', line_num=3).tag(trust_as_template(expression))

    def compose(function):
        try:
            result = function(plugin, expression, variables)
        except Exception as exc:  # pylint: disable=broad-except
            return ('error', type(exc).__name__, str(exc))
        return described(result)
    templated = compose(Constructable._compose)
    plugin._variables_without_template = WITHOUT_TEMPLATES
    assert compose(plugin_module.InventoryModule._compose) == templated
    read = plugin_module._variable_as_it_is(expression, variables) if WITHOUT_TEMPLATES else plugin_module._NEEDS_TEMPLATE
    if read is not plugin_module._NEEDS_TEMPLATE and isinstance(value, list):
        assert read is not value  # a copy, as the template's
    if WITHOUT_TEMPLATES and tagged and expression.strip() in ('value', 'omit', 'range') and not isinstance(value, (dict, tuple)) \
            and value != [['nested']]:
        assert read is not plugin_module._NEEDS_TEMPLATE  # read without a template


def test_a_trusted_template_in_a_variable_is_rendered_as_before(parse, exports):
    if trust_as_template is None:
        pytest.skip('ansible-core 2.19 and later trust templates or not')
    dummy, plugin = parse(CREDENTIALS)
    origin = Origin(description='<inventory plugin>')
    variables = {'value': origin.tag(trust_as_template('{{ 6 * 7 }}')), 'items': origin.tag([origin.tag(trust_as_template('{{ 6 * 7 }}'))])}
    plugin._variables_without_template = True
    assert plugin._compose(trust_as_template('value'), variables) == 42
    assert plugin._compose(trust_as_template('items'), variables) == [42]
    with pytest.raises(AnsibleError, match='untrusted'):
        plugin._compose(origin.tag('value'), variables)  # an untrusted expression is an error either way


@pytest.mark.parametrize('parent', ['needs_patching', 'all kbs', ''])
def test_missing_kb_groups_are_the_groups_of_the_documented_keyed_group(both_ways, parent):
    native = {'missing_kbs': True, 'missing_kb_groups': True, 'missing_kb_parent_group': parent}
    keyed = {'missing_kbs': True, 'keyed_groups': [dict({'key': "mde_missing_kbs | map('lower') | list", 'prefix': 'missing'},
                                                        **({'parent_group': parent} if parent else {}))]}
    by_option = both_ways(native)[0]
    by_template = both_ways(keyed)[1]
    assert_same(by_option, by_template)
    assert by_option['templated'] == []  # no template at all
    groups = by_option['outcome']['groups']
    assert groups['missing_kb5034441'][0] == ['odd01.contoso.local', 'odd03.contoso.local']
    assert 'missing_kb50_34_441' in groups and 'missing_kb___7___6___' in groups and 'missing_kbä1' in groups
    if parent:
        assert sorted(groups[parent.replace(' ', '_')][1]) == sorted(g for g in groups if g.startswith('missing_kb'))


def test_missing_kb_groups_need_missing_kbs_before_any_call(parse, exports, defender_api):
    with pytest.raises(AnsibleError, match='missing_kb_groups needs missing_kbs'):
        parse(dict(CREDENTIALS, missing_kb_groups=True))
    assert defender_api.requests == [] and exports == []


def test_the_documented_example_needs_no_template(both_ways):
    import ast
    with open(plugin_module.__file__) as handle:
        tree = ast.parse(handle.read())
    examples = next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                    and getattr(node.targets[0], 'id', None) == 'EXAMPLES')
    config = yaml.safe_load(examples.split('\n# ---', 1)[0])
    del config['filter'], config['plugin']
    fast, templated = both_ways(config)
    assert_same(fast, templated)
    groups = fast['outcome']['groups']
    assert sorted(groups['windows'][0]) == sorted(fast['outcome']['hosts'])
    assert groups['missing_kb5034441'][0] == ['odd01.contoso.local', 'odd03.contoso.local']
    assert 'missing_kb5034441' in groups['needs_patching'][1] and 'os_Windows_10' in groups and 'tag_Prod' in groups
    if WITHOUT_TEMPLATES:
        assert fast['templated'] == []  # every key and compose value is a variable's name, and missing_kb_groups needs none
    else:
        assert fast['templated']  # before ansible-core 2.19 they are templates

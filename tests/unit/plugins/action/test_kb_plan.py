# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The defender.tvm.kb_plan action plugin, built by Ansible's action loader around a fake task
(``run_action`` in conftest.py).

``kb_patching.ask_defender`` is replaced by a recorder, so these tests are about what the action
does around it: its arguments, the device names, reusing a previous plan, and the connection
options the client gets (``client_settings`` in tests/unit/plugins/conftest.py records them).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleActionFail, AnsibleError

from ansible_collections.defender.tvm.plugins.module_utils._client import DefenderClient
from ansible_collections.defender.tvm.plugins.module_utils._errors import PermissionDeniedError
from ansible_collections.defender.tvm.plugins.plugin_utils import _kb_patching as kb_patching

try:  # ansible-core >= 2.19 templates only trusted strings, as variables from the inventory are
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19 templates every string
    def trust_as_template(value):
        return value

pytestmark = pytest.mark.usefixtures('clean_environment', 'defender_api')

TENANT = '11111111-2222-3333-4444-555555555555'
CLIENT = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee'
CREDENTIALS = dict(tenant_id=TENANT, client_id=CLIENT, client_secret='unit-client-secret-value')
WINDOWS = 'microsoft-_-windows_11'
HOSTS = ['web01', 'db01']  # the play's hosts run_action gives


def test_it_asks_defender_once_and_keys_the_plan_on_its_inputs(asked, client_settings, closed, run_action):
    result = run_action(dict(CREDENTIALS, software_ids=[WINDOWS], min_cve_addressed='5', include_kbs=['5034122']))

    assert result['changed'] is False and result['reused'] is False and 'failed' not in result
    (client, query), = asked
    assert isinstance(client, DefenderClient) and client.settings is client_settings[0]
    assert closed == [client]
    assert query == dict(strategy='software', hosts={'web01': 'web01', 'db01': 'db01'}, software_ids=[WINDOWS],
                         discover=None, min_cve_addressed=5, include_kbs=['5034122'], exclude_kbs=[], export_source='json')
    assert result['plan']['key'] == kb_patching.plan_key(**query)
    assert result['plan']['hosts'] == {'web01': {'kbs': []}, 'db01': {'kbs': []}}


def test_a_previous_plan_with_the_same_key_is_returned_without_asking(asked, client_settings, run_action):
    first = run_action(dict(CREDENTIALS, software_ids=[WINDOWS]))['plan']
    # no credentials this time: the plan is reused before any option is resolved
    again = run_action(dict(software_ids=[WINDOWS], previous=first))

    assert again['reused'] is True and again['changed'] is False
    assert again['plan'] == first
    assert len(asked) == 1 and len(client_settings) == 1


@pytest.mark.parametrize('changed', [
    dict(software_ids=['microsoft-_-office']),
    dict(strategy='device'),
    dict(min_cve_addressed=1),
    dict(include_kbs=['KB1']),
    dict(exclude_kbs=['KB1']),
    dict(hosts=['web01']),
    dict(device_names={'web01': 'web01.contoso.local'}),
    dict(discover=True),
])
def test_a_previous_plan_for_other_inputs_is_not_reused(asked, run_action, changed):
    first = run_action(dict(CREDENTIALS, software_ids=[WINDOWS]))['plan']
    again = run_action(dict(dict(CREDENTIALS, software_ids=[WINDOWS], previous=first), **changed))

    assert again['reused'] is False
    assert len(asked) == 2
    assert again['plan']['key'] != first['key']


@pytest.mark.parametrize('previous', [{}, {'key': 'not the key'}, {'hosts': {}}])
def test_a_previous_plan_without_the_key_is_not_reused(asked, run_action, previous):
    result = run_action(dict(CREDENTIALS, software_ids=[WINDOWS], previous=previous))
    assert result['reused'] is False and len(asked) == 1


def test_device_names_come_from_the_option_then_the_host_variable_then_the_hostname(asked, run_action):
    task_vars = {
        'ansible_play_hosts_all': ['web01', 'db01', 'app01', 'new01'],
        'hostvars': {
            'web01': {'kb_patching_device_name': 'ignored.contoso.local'},
            'db01': {'kb_patching_device_name': 'DB01.contoso.local'},
            'app01': {'kb_patching_device_name': None},
        },
    }
    run_action(dict(CREDENTIALS, software_ids=[WINDOWS], device_names={'web01': 'web01.contoso.local'}), task_vars)

    assert asked[0][1]['hosts'] == {'web01': 'web01.contoso.local', 'db01': 'DB01.contoso.local', 'app01': 'app01',
                                    'new01': 'new01'}


def test_the_hosts_option_replaces_the_play_hosts(asked, run_action):
    run_action(dict(CREDENTIALS, software_ids=[WINDOWS], hosts=['db01']),
               {'ansible_play_hosts_all': HOSTS, 'hostvars': {'db01': {'kb_patching_device_name': 'db01.contoso.local'}}})
    assert asked[0][1]['hosts'] == {'db01': 'db01.contoso.local'}


@pytest.mark.parametrize('args,hostvars,where', [
    (dict(), {'web01': {'kb_patching_device_name': 42}}, 'kb_patching_device_name of web01'),
    (dict(), {'web01': {'kb_patching_device_name': ['web01.contoso.local']}}, 'kb_patching_device_name of web01'),
    (dict(device_names={'web01': {'name': 'web01'}}), {}, 'device_names[web01]'),
])
def test_a_device_name_that_is_not_a_string_is_refused(asked, client_settings, run_action, args, hostvars, where):
    with pytest.raises(AnsibleActionFail) as exc_info:
        run_action(dict(CREDENTIALS, software_ids=[WINDOWS], **args),
                   {'ansible_play_hosts_all': HOSTS, 'hostvars': hostvars})
    assert '%s must be a string, got ' % where in str(exc_info.value)
    assert asked == [] and client_settings == []


@pytest.mark.parametrize('args,message', [
    (dict(), 'The software strategy needs software_ids or discover: true'),
    (dict(software_ids=[]), 'The software strategy needs software_ids or discover: true'),
    (dict(strategy='software', discover=False), 'The software strategy needs software_ids or discover: true'),
    (dict(software_ids=[WINDOWS], min_cve_addressed=-1), 'min_cve_addressed must be >= 0, got -1'),
    (dict(software_ids=[WINDOWS], strategy='fleet'), 'value of strategy must be one of: software, device, export, got: fleet'),
    (dict(software_ids=[WINDOWS], discover='perhaps'), "argument 'discover' is of type"),
    (dict(software_ids=[WINDOWS], min_cve_addressed='many'), "argument 'min_cve_addressed' is of type"),
    (dict(software_ids=[WINDOWS], cloud='moon'), 'value of cloud must be one of: dod, gcc, gcc_high, public, got: moon'),
    (dict(software_ids=[WINDOWS], software_id=[WINDOWS]), 'Unsupported parameters'),
])
def test_bad_arguments_are_refused_before_any_call(asked, client_settings, run_action, args, message):
    with pytest.raises(AnsibleActionFail) as exc_info:
        run_action(dict(CREDENTIALS, **args))
    assert message in str(exc_info.value)
    assert asked == [] and client_settings == []


def test_discover_and_the_device_strategy_need_no_software_ids(asked, run_action):
    run_action(dict(CREDENTIALS, discover=True, discover_vendor='microsoft'))
    run_action(dict(CREDENTIALS, strategy='device'))

    assert [(q['strategy'], q['software_ids'], q['discover']) for dummy, q in asked] == [
        ('software', None, {'vendor': 'microsoft', 'name': None}), ('device', [], None)]


@pytest.mark.parametrize('arg,var,env,attribute,values,expected', [
    ('tenant_id', 'ansible_mde_tenant_id', 'MDE_TENANT_ID', 'tenant_id', ('tenant-args', 'tenant-var', 'tenant-env'),
     ('tenant-args', 'tenant-var', 'tenant-env')),
    ('client_id', 'ansible_mde_client_id', 'AZURE_CLIENT_ID', 'client_id', ('client-args', 'client-var', 'client-env'),
     ('client-args', 'client-var', 'client-env')),
    ('api_url', 'ansible_mde_api_url', 'MDE_API_URL', 'api_url',
     ('https://args.example.test', 'https://vars.example.test/api', 'env.example.test'),
     ('https://args.example.test', 'https://vars.example.test', 'https://env.example.test')),
    ('timeout', 'ansible_mde_timeout', 'MDE_TIMEOUT', 'timeout', (11, '22', '33'), (11.0, 22.0, 33.0)),
    ('max_concurrency', 'ansible_mde_max_concurrency', 'MDE_MAX_CONCURRENCY', 'max_concurrency', (2, 3, '4'), (2, 3, 4)),
    ('client_secret', 'ansible_mde_client_secret', 'MDE_CLIENT_SECRET', 'client_secret',
     ('secret-args', 'secret-var', 'secret-env'), ('secret-args', 'secret-var', 'secret-env')),
])
@pytest.mark.parametrize('given', ['args', 'vars', 'env'])
def test_task_args_beat_ansible_mde_variables_which_beat_the_environment(asked, client_settings, monkeypatch, run_action,
                                                                         arg, var, env, attribute, values, expected,
                                                                         given):
    args = dict(CREDENTIALS, software_ids=[WINDOWS])
    args.pop(arg, None)
    task_vars = {'ansible_play_hosts_all': HOSTS}
    levels = ['args', 'vars', 'env']
    # the chosen source and every less explicit one are set; the more explicit ones are not
    for level in levels[levels.index(given):]:
        value = values[levels.index(level)]
        if level == 'args':
            args[arg] = value
        elif level == 'vars':
            task_vars[var] = value
        else:
            monkeypatch.setenv(env, str(value))
    run_action(args, task_vars)

    assert [getattr(s, attribute) for s in client_settings] == [expected[levels.index(given)]]


def test_without_any_source_the_defaults_apply(asked, client_settings, run_action):
    run_action(dict(CREDENTIALS, software_ids=[WINDOWS]))
    settings, = client_settings
    assert (settings.timeout, settings.max_concurrency, settings.max_retries, settings.cloud, settings.validate_certs) == (
        30.0, 8, 5, 'public', True)
    assert settings.api_url == 'https://api.security.microsoft.com'


def test_mde_environment_beats_azure_environment(asked, client_settings, monkeypatch, run_action):
    monkeypatch.setenv('AZURE_TENANT_ID', 'tenant-azure')
    monkeypatch.setenv('MDE_TENANT_ID', 'tenant-mde')
    run_action(dict(client_id=CLIENT, client_secret='s', software_ids=[WINDOWS]))
    assert [s.tenant_id for s in client_settings] == ['tenant-mde']


def test_the_credential_comes_as_a_whole_from_the_most_explicit_source(asked, client_settings, monkeypatch, run_action):
    monkeypatch.setenv('MDE_TENANT_ID', TENANT)
    monkeypatch.setenv('MDE_CLIENT_ID', CLIENT)
    monkeypatch.setenv('MDE_CLIENT_SECRET', 'secret-env')
    task_vars = {'ansible_play_hosts_all': HOSTS, 'ansible_mde_access_token': trust_as_template('{{ vaulted }}'),
                 'vaulted': 'token-from-a-vault'}
    run_action(dict(software_ids=[WINDOWS]), task_vars)

    settings, = client_settings
    assert settings.credential_type == 'access_token'
    assert settings.access_token == 'token-from-a-vault'  # the variable was templated
    assert settings.client_secret is None  # the exported secret is not mixed in


def test_an_invalid_variable_fails_before_any_call(asked, client_settings, run_action):
    with pytest.raises(AnsibleError) as exc_info:
        run_action(dict(CREDENTIALS, software_ids=[WINDOWS]), {'ansible_play_hosts_all': HOSTS, 'ansible_mde_cloud': 'moon'})
    assert "cloud must be one of dod, gcc, gcc_high, public, got 'moon'" in str(exc_info.value)
    assert exc_info.value.__cause__ is None
    assert asked == [] and client_settings == []


def test_a_defender_error_becomes_an_ansible_error_without_its_cause(monkeypatch, closed, run_action):
    error = PermissionDeniedError('Listing the devices failed with HTTP 403: the app needs Software.Read.All')

    def ask_defender(client, **query):
        raise error

    monkeypatch.setattr(kb_patching, 'ask_defender', ask_defender)
    with pytest.raises(AnsibleError) as exc_info:
        run_action(dict(CREDENTIALS, software_ids=[WINDOWS]))

    raised = exc_info.value
    assert str(error) in str(raised)
    assert raised.__cause__ is None and raised.__suppress_context__ is True
    assert len(closed) == 1  # the client is closed on failure too


def test_a_value_error_from_the_plan_fails_the_task_with_its_message(monkeypatch, run_action):
    def ask_defender(client, **query):
        raise ValueError('include_kbs must be a list of KB numbers')

    monkeypatch.setattr(kb_patching, 'ask_defender', ask_defender)
    with pytest.raises(AnsibleActionFail) as exc_info:
        run_action(dict(CREDENTIALS, software_ids=[WINDOWS]))
    assert 'include_kbs must be a list of KB numbers' in str(exc_info.value)


def test_check_mode_plans_as_usual(asked, run_action):
    result = run_action(dict(CREDENTIALS, software_ids=[WINDOWS]), check_mode=True)
    assert result['reused'] is False and 'skipped' not in result
    assert len(asked) == 1


def test_a_host_pattern_plans_for_its_hosts_within_the_limit(asked, run_action):
    groups = {'all': ['ws-01', 'ws-02', 'srv-01'], 'ungrouped': [], 'windows': ['ws-01', 'ws-02', 'srv-01'],
              'prod': ['srv-01']}
    task_vars = {'groups': groups, 'ansible_play_hosts_all': ['localhost'],
                 'hostvars': {'srv-01': {'kb_patching_device_name': 'SRV-01.contoso.local'}}}
    run_action(dict(CREDENTIALS, strategy='export', host_pattern='windows'), task_vars)
    assert asked[-1][1]['hosts'] == {'ws-01': 'ws-01', 'ws-02': 'ws-02', 'srv-01': 'SRV-01.contoso.local'}
    run_action(dict(CREDENTIALS, strategy='export', host_pattern='windows'), dict(task_vars, ansible_limit='prod'))
    assert list(asked[-1][1]['hosts']) == ['srv-01']


@pytest.mark.parametrize('limit,said', [(None, 'windows matches no host in the inventory:'),
                                        ('prod', 'windows matches no host in the inventory within --limit prod:')])
def test_a_host_pattern_of_no_host_fails_before_any_call(asked, run_action, limit, said):
    task_vars = {'groups': {'all': ['srv-01'], 'ungrouped': ['srv-01']}, 'ansible_play_hosts_all': ['localhost']}
    if limit:
        task_vars['ansible_limit'] = limit
    with pytest.raises(AnsibleActionFail, match='The host pattern %s a report or a gate over no host would pass' % said):
        run_action(dict(CREDENTIALS, strategy='export', host_pattern='windows'), task_vars)
    assert asked == []

# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

import pytest
import yaml

from ansible_collections.defender.tvm.plugins.doc_fragments.connection import ModuleDocFragment
from ansible_collections.defender.tvm.plugins.module_utils._errors import ConfigurationError
from ansible_collections.defender.tvm.plugins.module_utils._options import (
    CLOUDS,
    CREDENTIAL_GROUP,
    OPTIONS,
    OptionAdapter,
    Settings,
    argument_spec,
)
from ansible_collections.defender.tvm.tests.unit.helpers import CLIENT, TENANT, make_settings

DOC = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)['options']
PLUGIN_DOC = yaml.safe_load(ModuleDocFragment.PLUGINS)['options']


def test_issue_option_names_are_all_defined():
    assert set(OPTIONS) == {
        'tenant_id', 'client_id', 'client_secret', 'client_certificate_path', 'client_certificate_password',
        'federated_token_file', 'access_token', 'cloud', 'api_url', 'authority_url', 'scope', 'validate_certs',
        'ca_path', 'timeout', 'max_concurrency', 'requests_per_minute', 'max_retries'}


@pytest.mark.parametrize('name', sorted(OPTIONS))
def test_doc_fragment_matches_the_code(name):
    definition, doc = OPTIONS[name], DOC[name]
    assert doc['type'] == definition['type']
    assert doc.get('default') == definition.get('default')
    assert doc.get('choices') == definition.get('choices')
    for env in definition['env']:
        assert 'E(%s)' % env in ' '.join(doc['description']), 'the description must name %s' % env


@pytest.mark.parametrize('name', sorted(OPTIONS))
def test_plugin_sources_give_mde_names_precedence(name):
    # For plugins the last env var found wins: the code's order (first wins) reversed.
    plugin = PLUGIN_DOC[name]
    assert [e['name'] for e in plugin['env']] == list(reversed(OPTIONS[name]['env']))
    assert plugin['vars'] == [{'name': 'ansible_mde_%s' % name}]
    assert plugin['ini'] == [{'section': 'defender_tvm', 'key': name}]


def test_every_option_has_an_mde_env_var_and_azure_names_as_the_issue_lists():
    for name, definition in OPTIONS.items():
        assert definition['env'][0] == 'MDE_%s' % name.upper()
    azure = dict((name, d['env'][1]) for name, d in OPTIONS.items() if len(d['env']) > 1)
    assert azure == {
        'tenant_id': 'AZURE_TENANT_ID', 'client_id': 'AZURE_CLIENT_ID', 'client_secret': 'AZURE_CLIENT_SECRET',
        'client_certificate_path': 'AZURE_CLIENT_CERTIFICATE_PATH',
        'client_certificate_password': 'AZURE_CLIENT_CERTIFICATE_PASSWORD',
        'federated_token_file': 'AZURE_FEDERATED_TOKEN_FILE', 'authority_url': 'AZURE_AUTHORITY_HOST'}


def test_argument_spec_marks_secrets_no_log_and_falls_back_to_env_in_order():
    spec = argument_spec()
    assert {n for n, s in spec.items() if s.get('no_log')} == {
        'client_secret', 'client_certificate_password', 'access_token'}
    assert spec['tenant_id']['fallback'][1] == ['MDE_TENANT_ID', 'AZURE_TENANT_ID']
    assert 'env' not in spec['tenant_id']
    # the credential is read from the environment late, as a whole (OptionAdapter)
    assert not [n for n in CREDENTIAL_GROUP if 'fallback' in spec[n]]


def test_module_env_fallback_prefers_mde_over_azure(monkeypatch):
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    monkeypatch.setenv('AZURE_TENANT_ID', 'from-azure')
    monkeypatch.setenv('MDE_TENANT_ID', 'from-mde')
    monkeypatch.setenv('MDE_TIMEOUT', '7.5')
    result = ArgumentSpecValidator(argument_spec()).validate({})
    assert result.validated_parameters['tenant_id'] == 'from-mde'
    assert result.validated_parameters['timeout'] == 7.5
    monkeypatch.delenv('MDE_TENANT_ID')
    assert ArgumentSpecValidator(argument_spec()).validate({}).validated_parameters['tenant_id'] == 'from-azure'


@pytest.mark.parametrize('cloud', sorted(CLOUDS))
def test_cloud_defaults(cloud):
    settings = make_settings(cloud=cloud)
    assert (settings.authority_url, settings.api_url, settings.scope) == CLOUDS[cloud]
    assert settings.instance_discovery is True


def test_cloud_hosts_are_the_documented_ones():
    assert CLOUDS['gcc'][:2] == ('https://login.microsoftonline.com', 'https://api-gcc.securitycenter.microsoft.us')
    assert CLOUDS['gcc_high'][:2] == ('https://login.microsoftonline.us', 'https://api-gov.securitycenter.microsoft.us')
    assert CLOUDS['dod'] == CLOUDS['gcc_high']
    assert CLOUDS['public'][2] == 'https://api.securitycenter.microsoft.com/.default'


def test_overrides_win_over_cloud_defaults():
    settings = make_settings(cloud='gcc_high', api_url='https://eu.api.security.microsoft.com/api/',
                             authority_url='login.example.test', scope='api://x/.default')
    assert settings.api_url == 'https://eu.api.security.microsoft.com'
    assert settings.authority_url == 'https://login.example.test'  # AZURE_AUTHORITY_HOST is often a bare host
    assert settings.scope == 'api://x/.default'
    assert settings.instance_discovery is False  # a private authority: no discovery call to Microsoft


@pytest.mark.parametrize('name', ['api_url', 'authority_url'])
def test_plain_http_is_refused(name):
    with pytest.raises(ConfigurationError, match='%s must be an https:// URL' % name):
        make_settings(**{name: 'http://127.0.0.1:8080'})


def test_no_credentials_says_which_options_and_env_vars_to_set():
    with pytest.raises(ConfigurationError) as err:
        Settings.from_adapter(OptionAdapter.from_dict({}))
    message = str(err.value)
    for word in ('tenant_id', 'client_id', 'client_secret', 'client_certificate_path', 'federated_token_file',
                 'access_token', 'MDE_TENANT_ID', 'MDE_CLIENT_SECRET', 'MDE_ACCESS_TOKEN', 'AZURE_'):
        assert word in message


def test_empty_strings_count_as_unset():
    with pytest.raises(ConfigurationError, match='No Defender credentials'):
        Settings.from_adapter(OptionAdapter.from_dict({'tenant_id': TENANT, 'client_id': CLIENT, 'client_secret': '  '}))


def test_two_credentials_are_refused_without_echoing_them():
    with pytest.raises(ConfigurationError) as err:
        make_settings(federated_token_file=__file__)
    assert 'client_secret and federated_token_file' in str(err.value)
    assert 's3cret-value' not in str(err.value)


def test_access_token_alone_is_enough_and_wins():
    settings = Settings.from_adapter(OptionAdapter.from_dict({'access_token': 'eyJ.abc'}))
    assert settings.credential_type == 'access_token'
    assert make_settings(access_token='eyJ.abc').credential_type == 'access_token'


@pytest.mark.parametrize('missing', ['tenant_id', 'client_id'])
def test_app_credentials_need_tenant_and_client(missing):
    with pytest.raises(ConfigurationError, match='%s is required with client_secret' % missing):
        make_settings(**{missing: None})


def test_tenant_id_cannot_smuggle_a_path():
    with pytest.raises(ConfigurationError, match='tenant_id must be'):
        make_settings(tenant_id='x/../evil')


@pytest.mark.parametrize('name,value,message', [
    ('timeout', 0, 'timeout must be >= 0.001'),
    ('max_concurrency', 0, 'max_concurrency must be between 1 and 64'),
    ('max_concurrency', 65, 'max_concurrency must be between 1 and 64'),
    ('requests_per_minute', -1, 'requests_per_minute must be >= 0'),
    ('max_retries', -1, 'max_retries must be between 0 and 50'),
    ('max_retries', 'many', 'max_retries must be a number'),
    ('validate_certs', 'perhaps', 'validate_certs must be a boolean'),
])
def test_numbers_are_range_checked(name, value, message):
    with pytest.raises(ConfigurationError, match=message):
        make_settings(**{name: value})


def test_strings_from_env_are_converted():
    settings = make_settings(timeout='2.5', max_concurrency='3', requests_per_minute='0', validate_certs='no')
    assert (settings.timeout, settings.max_concurrency, settings.requests_per_minute) == (2.5, 3, 0)
    assert settings.verify is False


def test_verify_follows_validate_certs_and_ca_path(tmp_path):
    ca = tmp_path / 'ca.pem'
    ca.write_text(u'x')
    assert make_settings().verify is True
    assert make_settings(ca_path=str(ca)).verify == str(ca)
    assert make_settings(ca_path=str(ca), validate_certs=False).verify is False
    with pytest.raises(ConfigurationError, match='ca_path .* is not a readable file'):
        make_settings(ca_path=str(tmp_path / 'missing.pem'))


def test_credential_files_must_exist(tmp_path):
    with pytest.raises(ConfigurationError, match='federated_token_file .* does not exist'):
        make_settings(client_secret=None, federated_token_file=str(tmp_path / 'nope'))


# -- where the credential comes from: explicit options win over the environment as a whole ------

APP = {'tenant_id': TENANT, 'client_id': CLIENT}


def from_sources(explicit, environ):
    return Settings.from_adapter(OptionAdapter.from_dict(dict(APP, **explicit), environ))


def test_explicit_certificate_wins_over_an_exported_secret():
    settings = from_sources({'client_certificate_path': __file__},
                            {'MDE_CLIENT_SECRET': 'exported', 'MDE_CLIENT_CERTIFICATE_PASSWORD': 'stale'})
    assert settings.credential_type == 'client_certificate_path'
    assert settings.client_secret is None
    assert settings.client_certificate_password is None  # a password goes with its own certificate


def test_explicit_secret_wins_over_an_exported_token_and_an_azure_certificate():
    settings = from_sources({'client_secret': 'given'},
                            {'MDE_ACCESS_TOKEN': 'eyJ.exported', 'AZURE_CLIENT_CERTIFICATE_PATH': __file__})
    assert (settings.credential_type, settings.client_secret, settings.access_token) == ('client_secret', 'given', None)


def test_mde_environment_wins_over_azure_environment_as_a_whole():
    settings = from_sources({}, {'MDE_FEDERATED_TOKEN_FILE': __file__, 'AZURE_CLIENT_SECRET': 'for-azcollection'})
    assert (settings.credential_type, settings.client_secret) == ('federated_token_file', None)


def test_the_certificate_password_comes_with_the_certificate():
    settings = from_sources({}, {'MDE_CLIENT_CERTIFICATE_PATH': __file__, 'MDE_CLIENT_CERTIFICATE_PASSWORD': 'pw',
                                 'AZURE_CLIENT_CERTIFICATE_PASSWORD': 'other'})
    assert settings.client_certificate_password == 'pw'
    # a password alone is no credential: the source that has one is used
    settings = from_sources({'client_certificate_password': 'lonely'}, {'MDE_CLIENT_SECRET': 'exported'})
    assert (settings.credential_type, settings.client_certificate_password) == ('client_secret', None)
    # the certificate exported, its password from a (vault) variable: more explicit, so it goes with it
    settings = from_sources({'client_certificate_password': 'from-vault'},
                            {'MDE_CLIENT_CERTIFICATE_PATH': __file__, 'AZURE_CLIENT_CERTIFICATE_PASSWORD': 'stale'})
    assert (settings.credential_type, settings.client_certificate_password) == ('client_certificate_path', 'from-vault')


@pytest.mark.parametrize('explicit,environ,source', [
    ({'client_secret': 'a', 'federated_token_file': __file__}, {}, "task's options"),
    ({}, {'MDE_CLIENT_SECRET': 'a', 'MDE_FEDERATED_TOKEN_FILE': __file__}, 'MDE_* environment'),
    ({}, {'AZURE_CLIENT_SECRET': 'a', 'AZURE_FEDERATED_TOKEN_FILE': __file__}, 'AZURE_* environment'),
])
def test_exactly_one_credential_within_one_source(explicit, environ, source):
    with pytest.raises(ConfigurationError, match='not client_secret and federated_token_file .*%s' % re.escape(source)):
        from_sources(explicit, environ)


def test_an_access_token_wins_over_app_credentials_of_its_own_source():
    assert from_sources({}, {'MDE_ACCESS_TOKEN': 'eyJ.x', 'MDE_CLIENT_SECRET': 'a'}).credential_type == 'access_token'


def test_module_adapter_reads_credentials_from_the_environment_late(monkeypatch):
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    class Module:
        def __init__(self, params):
            self.params = ArgumentSpecValidator(argument_spec()).validate(params).validated_parameters
    monkeypatch.setenv('MDE_TENANT_ID', TENANT)
    monkeypatch.setenv('MDE_CLIENT_ID', CLIENT)
    monkeypatch.setenv('MDE_CLIENT_SECRET', 'exported')
    assert Settings.from_adapter(OptionAdapter.from_module(Module({}))).client_secret == 'exported'
    settings = Settings.from_adapter(OptionAdapter.from_module(Module({'client_certificate_path': __file__})))
    assert (settings.credential_type, settings.client_secret, settings.tenant_id) == (
        'client_certificate_path', None, TENANT)


class _Plugin:
    """The two calls OptionAdapter.from_plugin makes, with Ansible's origin strings."""

    def __init__(self, values):
        self.values = values  # name -> (value, origin)

    def get_option(self, name):
        return self.values.get(name, (None, 'default'))[0]

    def get_option_and_origin(self, name):
        return self.values.get(name, (None, 'default'))


def test_plugin_adapter_classifies_ansible_config_origins():
    plugin = _Plugin({'tenant_id': (TENANT, 'env: MDE_TENANT_ID'), 'client_id': (CLIENT, 'Direct'),
                      'client_secret': ('from-cfg', '/etc/ansible/ansible.cfg'),
                      'federated_token_file': (__file__, 'env: AZURE_FEDERATED_TOKEN_FILE'),
                      'client_certificate_path': (__file__, 'var: ansible_mde_client_certificate_path')})
    settings = Settings.from_adapter(OptionAdapter.from_plugin(plugin, {'client_id'}, {'client_certificate_path'}))
    assert settings.credential_type == 'client_certificate_path'
    assert (settings.client_secret, settings.federated_token_file) == (None, None)
    del plugin.values['client_certificate_path']
    settings = Settings.from_adapter(OptionAdapter.from_plugin(plugin, {'client_id'}, set()))
    assert settings.credential_type == 'federated_token_file'  # the environment beats ansible.cfg
    del plugin.values['federated_token_file']
    assert Settings.from_adapter(OptionAdapter.from_plugin(plugin, set(), set())).client_secret == 'from-cfg'


# -- URLs are checked before any network call ---------------------------------------------------

@pytest.mark.parametrize('name', ['api_url', 'authority_url'])
@pytest.mark.parametrize('value,message', [
    ('not a url', 'must be an https:// URL such as https://.* got \'not a url\': it contains whitespace'),
    ('api security microsoft com', 'whitespace'),
    ('host/with/path', 'must be an https:// URL such as'),
    ('//host.example', 'must be an https:// URL such as'),
    ('https://host.example/api?x=1', 'must not have a query or a fragment'),
    ('https://host.example#frag', 'must not have a query or a fragment'),
    ('https://host.example:99999', 'invalid port'),
    ('https://host.example:abc', 'invalid port'),
    ('https://user:pw@host.example', 'must not contain a user name or password'),
    ('https://', 'must be an https:// URL such as'),
    ('https://-bad-.example', 'must be an https:// URL such as'),
    ('ftp://host.example', 'must be an https:// URL, got'),
])
def test_malformed_urls_are_refused_with_what_is_wrong(name, value, message):
    with pytest.raises(ConfigurationError, match=message) as err:
        make_settings(**{name: value})
    assert str(err.value).startswith(name)
    assert 'https://https://' not in str(err.value)


@pytest.mark.parametrize('value,expected', [
    ('eu.api.security.microsoft.com', 'https://eu.api.security.microsoft.com'),
    ('127.0.0.1:8443', 'https://127.0.0.1:8443'),
    ('https://[::1]:8443/', 'https://[::1]:8443'),
    ('https://proxy.example/defender/api', 'https://proxy.example/defender'),
])
def test_well_formed_api_urls(value, expected):
    assert make_settings(api_url=value).api_url == expected


def test_authority_url_takes_no_path():
    with pytest.raises(ConfigurationError, match='authority_url must be the host only, without a path'):
        make_settings(authority_url='https://login.microsoftonline.com/contoso.onmicrosoft.com')


def test_task_options_win_over_ansible_mde_variables_as_a_whole():
    # a task-level client_secret beats a play-level ansible_mde_access_token
    settings = Settings.from_adapter(OptionAdapter.from_action(
        dict(APP, client_secret='from-the-task'), {'ansible_mde_access_token': 'eyJ.from-a-variable'}, environ={}))
    assert (settings.credential_type, settings.access_token) == ('client_secret', None)
    settings = Settings.from_adapter(OptionAdapter.from_action(
        dict(APP), {'ansible_mde_access_token': 'eyJ.from-a-variable'}, environ={'MDE_CLIENT_SECRET': 'exported'}))
    assert (settings.credential_type, settings.client_secret) == ('access_token', None)

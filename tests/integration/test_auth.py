# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every credential type, the Azure SDK variable names, clouds, and the errors that say what to fix."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

pytestmark = pytest.mark.representative

ID = ['microsoft-_-windows_11']


def assert_ok(run):
    assert run.rc == 0, run
    assert not run.result.get('failed'), run.result
    assert run.result['results'][0]['software_id'] == ID[0]


@pytest.mark.parametrize('playbook', ['module', 'lookup'])
def test_client_secret(ansible, emulator, playbook):
    run = ansible.run(playbook, extra_vars={'software_ids': ID, 'terms': ID})
    assert run.rc == 0 and not run.result.get('failed'), run
    stats = emulator.stats()
    assert stats['token_requests_by_client'] == {'secret': 1}


@pytest.mark.parametrize('file_key,password', [
    ('certificate_path', False), ('encrypted_key_path', True), ('pfx_path', True)])
def test_client_certificate(ansible, emulator, file_key, password):
    app = emulator.clients['cert']
    env = ansible.credentials('cert')
    env['MDE_CLIENT_CERTIFICATE_PATH'] = app[file_key]
    if password:
        env['MDE_CLIENT_CERTIFICATE_PASSWORD'] = app['password']
    assert_ok(ansible.run('module', env=env, extra_vars={'software_ids': ID}))
    assert emulator.stats()['token_requests_by_client'] == {'cert': 1}


def test_client_certificate_wrong_password_is_caught_before_the_network(ansible, emulator):
    app = emulator.clients['cert']
    env = ansible.credentials('cert')
    env.update(MDE_CLIENT_CERTIFICATE_PATH=app['pfx_path'], MDE_CLIENT_CERTIFICATE_PASSWORD='not-the-password')
    run = ansible.run('module', env=env, extra_vars={'software_ids': ID})
    assert 'wrong or missing client_certificate_password' in run.result['msg']
    assert emulator.stats()['oidc_requests'] == 0 and emulator.stats()['token_requests'] == 0


def test_federated_token_file(ansible, emulator):
    assert_ok(ansible.run('module', env=ansible.credentials('federated'), extra_vars={'software_ids': ID}))
    assert emulator.stats()['token_requests_by_client'] == {'federated': 1}


def test_expired_federated_token_names_the_fix(ansible, emulator, tmp_path):
    expired = tmp_path / 'expired.jwt'
    expired.write_text(emulator.mint_federated_token(expires_in=-600))
    env = ansible.credentials('federated')
    env['AZURE_FEDERATED_TOKEN_FILE'] = str(expired)
    del env['MDE_FEDERATED_TOKEN_FILE']
    run = ansible.run('module', env=env, extra_vars={'software_ids': ID})
    assert 'AADSTS700024' in run.result['msg'] and 'refresh federated_token_file' in run.result['msg']


def test_federated_token_with_another_subject_is_refused(ansible, emulator, tmp_path):
    other = tmp_path / 'other.jwt'
    other.write_text(emulator.mint_federated_token(subject='repo:someone/else:ref:refs/heads/main'))
    env = ansible.credentials('federated')
    env['MDE_FEDERATED_TOKEN_FILE'] = str(other)
    run = ansible.run('module', env=env, extra_vars={'software_ids': ID})
    assert run.result['failed'] is True and 'AADSTS7002' in run.result['msg']
    assert 'federated credential' in run.result['msg']


@pytest.mark.parametrize('playbook', ['module', 'lookup'])
def test_pre_acquired_access_token_skips_entra(ansible, emulator, playbook):
    token = emulator.issue_token('secret')['access_token']
    env = {'MDE_ACCESS_TOKEN': token, 'MDE_API_URL': emulator.url, 'MDE_CA_PATH': emulator.ca_path}
    run = ansible.run(playbook, env=env, extra_vars={'software_ids': ID, 'terms': ID})
    assert run.rc == 0 and not run.result.get('failed'), run
    stats = emulator.stats()
    assert stats['token_requests'] == 0 and stats['oidc_requests'] == 0


def test_expired_access_token_says_to_get_a_new_one(ansible, emulator):
    token = emulator.issue_token('secret', lifetime_s=-60)['access_token']
    env = {'MDE_ACCESS_TOKEN': token, 'MDE_API_URL': emulator.url, 'MDE_CA_PATH': emulator.ca_path}
    run = ansible.run('module', env=env, extra_vars={'software_ids': ID})
    assert 'rejected the given access_token (HTTP 401)' in run.result['msg']


def test_azure_sdk_variable_names_with_a_bare_authority_host(ansible, emulator):
    env = ansible.credentials(prefix='AZURE_')
    del env['MDE_AUTHORITY_URL']
    env['AZURE_AUTHORITY_HOST'] = emulator.url.split('://', 1)[1]  # as the Azure SDKs document it
    assert_ok(ansible.run('module', env=env, extra_vars={'software_ids': ID}))


def test_us_government_cloud_requests_its_own_scope(ansible, emulator):
    # cloud picks the gov scope; the emulator stands in for the gov hosts via the overrides
    env = ansible.credentials()
    env['MDE_CLOUD'] = 'gcc_high'
    assert_ok(ansible.run('module', env=env, extra_vars={'software_ids': ID}))
    token_posts = [r for r in emulator.stats()['requests'] if r['route'] == 'token']
    assert len(token_posts) == 1


@pytest.mark.parametrize('change,code,hint', [
    ({'MDE_CLIENT_SECRET': 'wrong'}, 'AADSTS7000215', 'check client_secret'),
    ({'MDE_TENANT_ID': '00000000-0000-0000-0000-000000000000'}, 'AADSTS90002', 'check tenant_id'),
    ({'MDE_CLIENT_ID': '99999999-0000-0000-0000-000000000000'}, 'AADSTS700016', 'check client_id'),
    ({'MDE_SCOPE': 'https://graph.microsoft.com/.default'}, 'AADSTS', 'scope'),
])
@pytest.mark.parametrize('playbook', ['module', 'lookup'])
def test_entra_errors_carry_the_aadsts_code_and_the_fix(ansible, playbook, change, code, hint):
    env = ansible.credentials()
    env.update(change)
    run = ansible.run(playbook, env=env, extra_vars={'software_ids': ID, 'terms': ID})
    assert run.result['failed'] is True
    assert code in run.result['msg'] and hint in run.result['msg']
    assert 'Traceback' not in run.result['msg'] and '..' not in run.result['msg']


def test_no_credentials_says_what_to_set_and_calls_nothing(ansible, emulator):
    run = ansible.run('module', env={'MDE_API_URL': emulator.url}, extra_vars={'software_ids': ID})
    assert 'No Defender credentials' in run.result['msg'] and 'MDE_CLIENT_SECRET' in run.result['msg']
    assert emulator.stats()['api_requests'] == 0 and emulator.stats()['oidc_requests'] == 0


def test_missing_permission_names_it(ansible, emulator):
    run = ansible.run('module', env=ansible.credentials('noperm'), extra_vars={'software_ids': ID})
    assert 'HTTP 403' in run.result['msg'] and 'Software.Read.All' in run.result['msg']
    run = ansible.run('module', env=ansible.credentials('softwareonly'),
                      extra_vars={'machine_ids': ['ws-0001.contoso.local']})
    assert 'HTTP 403' in run.result['msg'] and 'Machine.Read.All' in run.result['msg']


@pytest.mark.parametrize('playbook', ['module', 'lookup', 'module_defaults'])
def test_explicit_certificate_wins_over_an_exported_secret(ansible, emulator, playbook):
    # A CI job exports MDE_CLIENT_SECRET (and a stale password) for another tool; the task names a certificate.
    app = emulator.clients['cert']
    env = ansible.credentials('cert')
    certificate = env.pop('MDE_CLIENT_CERTIFICATE_PATH')
    env.update({'MDE_CLIENT_SECRET': emulator.clients['secret']['client_secret'],
                'AZURE_CLIENT_CERTIFICATE_PASSWORD': 'stale-password'})
    explicit = {'mde_client_certificate_path': certificate, 'ansible_mde_client_certificate_path': certificate,
                'emu_client_certificate_path': certificate}
    run = ansible.run(playbook, env=env, extra_vars=dict(explicit, software_ids=ID, terms=ID))
    assert run.rc == 0 and not run.result.get('failed'), run
    assert emulator.stats()['token_requests_by_client'] == {'cert': 1}
    assert app['client_id'] == env['MDE_CLIENT_ID']


@pytest.mark.parametrize('playbook', ['module', 'lookup'])
@pytest.mark.parametrize('name,value,message', [
    ('api_url', 'not a url', "api_url must be an https:// URL such as https://api.security.microsoft.com"),
    ('api_url', 'https://api.example.test/api?tenant=x', 'api_url must not have a query'),
    ('authority_url', 'login example', 'authority_url must be an https:// URL'),
    ('authority_url', 'https://login.example.test/common', 'authority_url must be the host only'),
])
def test_malformed_urls_fail_before_any_network_call(ansible, emulator, playbook, name, value, message):
    env = ansible.credentials()
    env['MDE_' + name.upper()] = value
    run = ansible.run(playbook, env=env, extra_vars={'software_ids': ID, 'terms': ID})
    assert run.result['failed'] is True and message in run.result['msg'], run.result
    assert 'https://https://' not in run.result['msg'] and 'https://not a url' not in run.result['msg']
    stats = emulator.stats()
    assert stats['api_requests'] == 0 and stats['oidc_requests'] == 0 and stats['token_requests'] == 0


@pytest.mark.parametrize('playbook', ['module', 'lookup'])
def test_a_bad_cloud_lists_the_choices(ansible, emulator, playbook):
    run = ansible.run(playbook, extra_vars={'software_ids': ID, 'terms': ID, 'mde_cloud': 'moon',
                                            'lookup_kwargs': {'cloud': 'moon'}})
    assert run.result['failed'] is True and 'moon' in run.result['msg']
    assert 'dod, gcc, gcc_high, public' in run.result['msg'], run.result['msg']
    assert emulator.stats()['api_requests'] == 0

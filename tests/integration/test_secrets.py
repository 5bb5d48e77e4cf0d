# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""No secret or token in -vvvv output, in results or in error messages."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

import pytest

pytestmark = pytest.mark.representative

ID = ['microsoft-_-windows_11']
JWT = re.compile(r'eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}')


def assert_clean(run, secrets):
    text = run.output + json.dumps(run.result or {})
    for secret in secrets:
        assert secret not in text, 'a secret leaked into the output'
    assert not JWT.search(text), 'a token leaked into the output: %s' % JWT.search(text).group(0)[:12]


@pytest.mark.parametrize('playbook', ['module', 'lookup'])
def test_client_secret_and_token_never_shown(ansible, emulator, playbook):
    secret = emulator.clients['secret']['client_secret']
    env = ansible.credentials()
    extra = {'software_ids': ID, 'terms': ID}
    if playbook == 'module':
        # as a module argument (masked by no_log), not from the environment
        del env['MDE_CLIENT_SECRET']
        extra['mde_client_secret'] = secret
    run = ansible.run(playbook, env=env, extra_vars=extra, verbosity=4)
    assert run.rc == 0 and not run.result.get('failed'), run
    assert emulator.stats()['token_requests_by_client'] == {'secret': 1}
    assert_clean(run, [secret])


def test_certificate_password_never_shown(ansible, emulator):
    app = emulator.clients['cert']
    env = ansible.credentials('cert')
    env['MDE_CLIENT_CERTIFICATE_PATH'] = app['pfx_path']
    run = ansible.run('module', env=env, extra_vars={'software_ids': ID, 'mde_client_certificate_password':
                                                     app['password']}, verbosity=4)
    assert run.rc == 0 and not run.result.get('failed'), run
    assert_clean(run, [app['password']])


@pytest.mark.parametrize('playbook', ['module', 'lookup'])
def test_access_token_never_shown(ansible, emulator, playbook):
    token = emulator.issue_token('secret')['access_token']
    env = {'MDE_ACCESS_TOKEN': token, 'MDE_API_URL': emulator.url, 'MDE_CA_PATH': emulator.ca_path}
    run = ansible.run(playbook, env=env, extra_vars={'software_ids': ID, 'terms': ID}, verbosity=4)
    assert run.rc == 0 and not run.result.get('failed'), run
    assert_clean(run, [token])


@pytest.mark.parametrize('playbook', ['module', 'lookup'])
def test_failures_do_not_leak_secrets_either(ansible, emulator, playbook):
    secret = emulator.clients['noperm']['client_secret']
    run = ansible.run(playbook, env=ansible.credentials('noperm'),
                      extra_vars={'software_ids': ID, 'terms': ID}, verbosity=4)
    assert run.result['failed'] is True and 'Software.Read.All' in run.result['msg']
    assert_clean(run, [secret])
    env = ansible.credentials()
    env['MDE_CLIENT_SECRET'] = 'wrong-but-still-secret'
    run = ansible.run(playbook, env=env, extra_vars={'software_ids': ID, 'terms': ID}, verbosity=4)
    assert 'AADSTS7000215' in run.result['msg']
    assert_clean(run, ['wrong-but-still-secret'])
